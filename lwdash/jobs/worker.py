"""The job worker: claims queued jobs and runs each in its own process.

``python -m lwdash worker [--data-dir D] [--once] [--concurrency N] [--executor local|ray]``
starts one. It registers itself in the store and loops: fail jobs whose worker died (no
heartbeat), claim the oldest queued jobs (atomically, so several workers can share one store),
and run each in its own process. With the ``ray`` executor (``LWDASH_EXECUTOR=ray``) the same
loop submits each job as a Ray task instead (:mod:`lwdash.jobs.ray_executor`).

Local job processes are forked from a "zygote" (``multiprocessing``'s forkserver) that has
already imported torch, ONNX Runtime and lwdash, so a job starts in milliseconds instead of
seconds, and each job still gets a process of its own: a crash of the job (segfault,
out-of-memory kill, SIGKILL) cannot take the worker down. While a job's process lives the
worker heartbeats its job, and stops it (its whole process session) when the user cancels it,
when it passes the per-job time limit (``LWDASH_JOB_TIMEOUT_S``) or when its processes hold more
memory than ``LWDASH_JOB_MEMORY_MB``. When a job's process exits without recording an outcome the
worker marks the job failed with the reason (the signal, the exit code, or the limit it hit).

Memory limit: the worker sums the resident memory (RSS) of the job's processes every
``_MEMORY_CHECK_S``; over the limit, it kills them and fails the job. As a backstop against one
sudden huge allocation (faster than the check), the job's process also caps its own address
space (``RLIMIT_AS``) at its size after the imports plus the limit, so such an allocation fails
at once with an error that names the limit instead of waking the system's OOM killer.

Shutdown: on SIGTERM or SIGINT the worker kills its running jobs' processes and puts those
jobs back in the queue (their attempt count kept), so another worker, or this one restarted,
runs them again from the start; a job already claimed ``LWDASH_MAX_ATTEMPTS`` times is failed
instead, so a job that keeps coinciding with shutdowns cannot loop forever.

A worker the app started (:func:`ensure_worker`) exits by itself once it has been idle for
``LWDASH_WORKER_IDLE_EXIT_S`` and no app process that asked for it is alive; a worker started
by hand keeps serving until it is stopped.

Test-only hook: ``LWDASH_TEST_TECHNIQUES`` (comma-separated module names) is imported by each
job's process before it runs, so tests can register techniques that sleep or crash. It has no
other use; leave it unset.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import lwdash
from lwdash.config import Settings, get_settings
from lwdash.isolate import limit_address_space
from lwdash.jobs.spec import JobRecord, JobSpec, JobStatus
from lwdash.search import advance_searches
from lwdash.store.records import NotFoundError
from lwdash.store.sqlite import SqliteStore, _pid_alive

if TYPE_CHECKING:
    from lwdash.data import Dataset
    from lwdash.jobs.runner import RunOutput
    from lwdash.models.base import LoadedModel

__all__ = [
    "JobInputs",
    "compute_job",
    "ensure_worker",
    "main",
    "memory_limit_message",
    "record_output",
    "run_job",
    "run_worker",
    "time_limit_message",
]

log = logging.getLogger("lwdash.worker")

TEST_TECHNIQUES_ENV = "LWDASH_TEST_TECHNIQUES"
_PROGRESS_MIN_INTERVAL_S = 0.25
_MEMORY_CHECK_S = 0.25
_KILL_GRACE_S = 5.0
_LOG_TAIL_CHARS = 2000
_PACKAGE_ROOT = str(Path(lwdash.__file__).resolve().parents[1])
#: Imported once by the zygote that local job processes are forked from (a failed import is skipped).
_ZYGOTE_PRELOAD = [
    "lwdash.jobs.worker",
    "lwdash.jobs.runner",
    "lwdash.techniques",
    "lwdash.models",
    "lwdash.data",
    "lwdash.measure",
    "lwdash.analysis.sensitivity",
    "lwdash.analysis.baseline",
    "onnxruntime",
    "sklearn.datasets",  # the digits loader's (lazy) imports: ~3 s a job otherwise
    "sklearn.model_selection",
]
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _child_env() -> dict[str, str]:
    """The environment of a process we start: ours, plus lwdash's root on ``PYTHONPATH``."""
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if _PACKAGE_ROOT not in paths:
        paths.append(_PACKAGE_ROOT)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _signal_reason(sig: int) -> str:
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    text = f"the job's process was killed by signal {sig} ({name})"
    if sig == signal.SIGKILL:
        text += " — often out of memory"
    elif sig == signal.SIGSEGV:
        text += " — a crash in native code"
    return text


def memory_limit_message(limit_mb: int, detail: str) -> str:
    """The failure text of a job stopped by the memory limit (the worker's check or the job's own)."""
    return (
        f"the job exceeded the memory limit of {limit_mb} MB (LWDASH_JOB_MEMORY_MB): {detail};"
        " it was stopped (raise LWDASH_JOB_MEMORY_MB for bigger models, 0 turns the limit off)"
    )


def time_limit_message(limit_s: float) -> str:
    """The failure text of a job stopped by the time limit."""
    return (
        f"the job ran past its time limit of {limit_s:g} s (LWDASH_JOB_TIMEOUT_S) and was stopped"
        " (raise LWDASH_JOB_TIMEOUT_S for longer jobs)"
    )


def _log_tail(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - _LOG_TAIL_CHARS))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def session_rss_mb(sid: int) -> float:
    """Resident memory (MiB) of every process in session ``sid`` (a job's process and its children).

    Reads ``/proc``; returns 0 where there is none (not Linux) or the session is gone.
    """
    total_pages = 0
    proc = Path("/proc")
    try:
        entries = os.listdir(proc)
    except OSError:
        return 0.0
    for name in entries:
        if not name.isdigit():
            continue
        try:
            stat = (proc / name / "stat").read_bytes()
        except OSError:
            continue
        # Fields after the ") " that closes the command name: state ppid pgrp session ... rss is the 22nd.
        rest = stat.rsplit(b") ", 1)[-1].split()
        if len(rest) > 21 and int(rest[3]) == sid:
            total_pages += int(rest[21])
    return total_pages * _PAGE_BYTES / 2**20


# ---------------------------------------------------------------------- the supervising worker


def _zygote(*, warm: bool = False) -> Any:
    """The forkserver context job processes start from (its preloads are imported once).

    Args:
        warm: start the zygote now (it imports in the background), so the first job does not wait.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_ZYGOTE_PRELOAD)
    if warm:
        from multiprocessing import forkserver

        forkserver.ensure_running()
    return ctx


@dataclass
class _Child:
    job: JobRecord
    proc: Any  # multiprocessing.Process (forked from the zygote)
    started_s: float  # time.monotonic() at spawn
    log_path: Path
    memory_checked_s: float = 0.0

    @property
    def pid(self) -> int:
        return int(self.proc.pid)


def _job_process_main(data_dir: str, job_id: str, log_path: str) -> None:
    """Entry point of a job's process (forked from the zygote)."""
    os.setsid()  # its own session: the worker stops the job and everything it started as one group
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    _configure_logging()
    sys.exit(run_job(data_dir, job_id))


def _spawn(store: SqliteStore, job: JobRecord) -> _Child:
    log_path = store.logs_dir / f"job-{job.id}.log"
    # By its module's real name, so the zygote can unpickle it even when this file runs as __main__.
    target = importlib.import_module("lwdash.jobs.worker")._job_process_main
    proc = _zygote().Process(
        target=target, args=(str(store.data_dir), job.id, str(log_path)), name=f"lwdash-job-{job.id}"
    )
    proc.start()
    log.info("job %s (%s): started in process %d", job.id, job.spec.label or job.spec.technique.get("type"), proc.pid)
    return _Child(job=job, proc=proc, started_s=time.monotonic(), log_path=log_path)


def _kill(store: SqliteStore, child: _Child, *, grace_s: float = 0.0) -> None:
    """Stop a job's process session (SIGTERM with ``grace_s`` to exit, then SIGKILL) and remove its temp files."""
    try:
        _signal_group(child, grace_s)
    finally:
        _remove_job_tmp(store, child.job.id)


def _send(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the job's session (it called setsid first thing)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.kill(pid, sig)  # in case it was stopped before its setsid
    except ProcessLookupError:
        pass


def _signal_group(child: _Child, grace_s: float) -> None:
    if grace_s > 0:
        _send(child.pid, signal.SIGTERM)
        child.proc.join(grace_s)
        if child.proc.exitcode is not None:
            return
    _send(child.pid, signal.SIGKILL)
    child.proc.join()


def _remove_job_tmp(store: SqliteStore, job_id: str) -> None:
    """Delete what a job's process left in ``tmp/`` (it cleans up itself unless it was killed)."""
    for p in store.tmp_dir.glob(f"job-{job_id}-*"):
        shutil.rmtree(p, ignore_errors=True)


def _remove_orphan_tmp(store: SqliteStore) -> None:
    """At start-up: delete temp dirs of jobs that are no longer running (their process died)."""
    for p in store.tmp_dir.glob("job-*-*"):
        job_id = p.name.split("-")[1]
        try:
            running = store.get_job(job_id).status is JobStatus.RUNNING
        except NotFoundError:
            running = False
        if not running:
            shutil.rmtree(p, ignore_errors=True)


def settle_if_saved(store: SqliteStore, job: JobRecord) -> bool:
    """A running job whose result is already stored is done, whatever happened to its process after.

    Closes the window between the job's process saving its result and marking the job done: a
    job killed in that window is not failed (and so never retried into a second result).
    """
    if job.status is JobStatus.RUNNING and job.result_id:
        return store.finish(job.id, job.result_id)
    return False


def _on_exit(store: SqliteStore, child: _Child, rc: int) -> None:
    """A job's process ended: if it did not record an outcome itself, record why it ended."""
    _remove_job_tmp(store, child.job.id)
    child.proc.close()
    job = store.get_job(child.job.id)
    if job.status is not JobStatus.RUNNING:
        log.info("job %s: %s (exit code %d)", job.id, job.status.value, rc)
        return
    if settle_if_saved(store, job):
        log.info("job %s: done (its process ended after saving the result)", job.id)
        return
    if job.cancel_requested:
        store.mark_cancelled(job.id)
        log.info("job %s: cancelled", job.id)
        return
    if rc < 0:
        reason = _signal_reason(-rc)
    elif rc == 0:
        reason = "the job's process exited without saving a result"
    elif rc == _EXIT_WORKER_GONE:
        reason = "the job's process stopped because its worker was gone"
    else:
        reason = f"the job's process exited with code {rc}"
    tail = _log_tail(child.log_path)
    store.fail(job.id, reason + (f"\n\nlast output of the job's process:\n{tail}" if tail else ""))
    log.warning("job %s: failed: %s", job.id, reason)


@dataclass
class _Beat:
    interval_s: float
    last_s: float = -1e18

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last_s >= self.interval_s:
            self.last_s = now
            return True
        return False


# ---------------------------------------------------------------------- app-started workers exit when orphaned

_APPS_DIR = "apps"


def record_app(data_dir: Path, pid: int | None = None) -> None:
    """Note that app process ``pid`` (default: this one) uses the worker of ``data_dir``."""
    apps = Path(data_dir) / _APPS_DIR
    apps.mkdir(parents=True, exist_ok=True)
    (apps / f"{pid or os.getpid()}@{socket.gethostname()}").touch()


def any_app_alive(data_dir: Path) -> bool:
    """Whether an app process recorded by :func:`record_app` on this host still runs (dead ones are forgotten)."""
    apps = Path(data_dir) / _APPS_DIR
    host = socket.gethostname()
    alive = False
    for p in apps.glob("*@*"):
        pid_text, _, app_host = p.name.partition("@")
        if app_host != host or not pid_text.isdigit():
            continue  # another machine's app: it starts its own worker when it needs one
        if _pid_alive(int(pid_text)):
            alive = True
        else:
            p.unlink(missing_ok=True)
    return alive


class IdleExit:
    """For a worker the app started: time to exit once idle for ``idle_s`` with no app alive."""

    def __init__(self, data_dir: Path, idle_s: float, *, enabled: bool) -> None:
        self.data_dir = data_dir
        self.idle_s = idle_s
        self.enabled = enabled
        self.idle_since = time.monotonic()

    def should_exit(self, busy: bool) -> bool:
        now = time.monotonic()
        if busy or not self.enabled:
            self.idle_since = now
            return False
        if now - self.idle_since < self.idle_s:
            return False
        if any_app_alive(self.data_dir):
            self.idle_since = now  # check again after another idle period
            return False
        return True


def requeue_or_fail(store: SqliteStore, settings: Settings, job_id: str) -> None:
    """The worker is shutting down while ``job_id`` runs: queue it again (or fail it after too many tries)."""
    job = store.get_job(job_id)
    if job.status is not JobStatus.RUNNING or settle_if_saved(store, job):
        return
    if job.attempts >= settings.max_attempts:
        store.fail(
            job_id, f"the worker shut down while this job ran, {job.attempts} times; not requeued again — retry it"
        )
    else:
        store.requeue(job_id, "the worker shut down before the job finished; it will run again from the start")
        log.info("job %s: requeued", job_id)


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM / SIGINT (handlers installed only on the main thread, restored after)."""
    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, lambda _sig, _frame: stop.set())
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _check_limits(store: SqliteStore, settings: Settings, running: dict[str, _Child]) -> None:
    """Cancel requests, the time limit and the memory limit of the running jobs."""
    now = time.monotonic()
    for job_id, child in list(running.items()):
        job = store.get_job(job_id)
        if job.cancel_requested and job.status is JobStatus.RUNNING:
            _kill(store, child)
            del running[job_id]
            child.proc.close()
            if settle_if_saved(store, store.get_job(job_id)):
                log.info("job %s: finished before it could be cancelled", job_id)
            elif store.mark_cancelled(job_id):
                log.info("job %s: cancelled", job_id)
            continue
        if now - child.started_s > settings.job_timeout_s:
            _kill(store, child)
            del running[job_id]
            child.proc.close()
            if not settle_if_saved(store, store.get_job(job_id)):
                store.fail(job_id, time_limit_message(settings.job_timeout_s))
                log.warning("job %s: failed: time limit", job_id)
            continue
        if settings.job_memory_mb > 0 and now - child.memory_checked_s >= _MEMORY_CHECK_S:
            child.memory_checked_s = now
            used_mb = session_rss_mb(child.pid)
            if used_mb > settings.job_memory_mb:
                _kill(store, child)
                del running[job_id]
                child.proc.close()
                if not settle_if_saved(store, store.get_job(job_id)):
                    store.fail(job_id, memory_limit_message(
                        settings.job_memory_mb, f"its processes held {used_mb:.0f} MB"))
                    log.warning("job %s: failed: memory limit (%.0f MB)", job_id, used_mb)


def _tick(
    store: SqliteStore,
    worker_id: str,
    settings: Settings,
    running: dict[str, _Child],
    beat: _Beat,
    stop: threading.Event,
    idle: IdleExit,
    *,
    once: bool,
    concurrency: int,
) -> bool:
    """One pass of the worker loop; returns False when the worker should stop."""
    if beat.due():
        store.worker_heartbeat(worker_id)
        for job_id in running:
            store.heartbeat_job(job_id)
        for job_id in store.recover_stale(settings.stale_timeout_s):
            _remove_job_tmp(store, job_id)
            log.warning("job %s: failed: its worker stopped responding", job_id)

    for job_id, child in list(running.items()):
        rc = child.proc.exitcode
        if rc is not None:
            del running[job_id]
            _on_exit(store, child, rc)
    _check_limits(store, settings, running)

    if stop.is_set():
        return False
    advance_searches(store)  # queue the next trials of running searches before claiming
    claimed = False
    while len(running) < concurrency:
        new_job = store.claim(worker_id)
        if new_job is None:
            break
        claimed = True
        try:
            running[new_job.id] = _spawn(store, new_job)
        except OSError as e:
            store.fail(new_job.id, f"could not start the job's process: {e}")
    if idle.should_exit(bool(running) or claimed):
        log.info("worker %s: idle for %g s and no app is alive: exiting", worker_id, idle.idle_s)
        return False
    return not (once and not running and not claimed)


def run_worker(
    data_dir: Path | str | None = None,
    *,
    once: bool = False,
    concurrency: int | None = None,
    poll_s: float = 0.5,
    worker_id: str | None = None,
    settings: Settings | None = None,
    executor: str | None = None,
    exit_when_orphaned: bool = False,
) -> int:
    """Serve jobs until SIGTERM/SIGINT (or, with ``once``, until the queue is empty).

    Args:
        data_dir: the store's data dir (default: ``LWDASH_DATA_DIR``).
        once: burst mode: run the jobs queued now (and any queued meanwhile), exit when none is left.
        concurrency: how many jobs run at the same time (default: ``LWDASH_CONCURRENCY``, else 1
            for local; for ray, the cluster's CPUs divided by ``LWDASH_RAY_NUM_CPUS``).
        poll_s: how long to sleep when there is nothing to do.
        worker_id: the id to register under (``ensure_worker`` passes the one it recorded).
        settings: settings (default: from the environment).
        executor: ``"local"`` or ``"ray"`` (default: ``LWDASH_EXECUTOR``).
        exit_when_orphaned: exit after ``LWDASH_WORKER_IDLE_EXIT_S`` idle with no app alive
            (set for workers the app starts).

    Returns:
        The process exit code (0).

    Raises:
        ValueError: ``concurrency`` < 1 or an unknown executor.
    """
    if concurrency is not None and concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    settings = settings or get_settings(data_dir)
    executor = executor or settings.executor
    if executor == "ray":
        from lwdash.jobs.ray_executor import run_ray_worker

        return run_ray_worker(settings, once=once, concurrency=concurrency or settings.concurrency,
                              poll_s=poll_s, worker_id=worker_id, exit_when_orphaned=exit_when_orphaned)
    if executor != "local":
        raise ValueError(f"unknown executor {executor!r}; accepted: local, ray")
    concurrency = concurrency or settings.concurrency or 1
    store = SqliteStore(settings.data_dir)
    worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    store.register_worker(worker_id, os.getpid())
    _remove_orphan_tmp(store)
    _zygote(warm=True)
    log.info("worker %s serving %s (local executor, concurrency %d, memory limit %s)", worker_id,
             settings.data_dir, concurrency, f"{settings.job_memory_mb} MB" if settings.job_memory_mb else "none")

    running: dict[str, _Child] = {}
    beat = _Beat(settings.heartbeat_interval_s)
    idle = IdleExit(settings.data_dir, settings.worker_idle_exit_s, enabled=exit_when_orphaned)
    with stop_on_signals() as stop:
        try:
            while True:
                try:
                    if not _tick(store, worker_id, settings, running, beat, stop, idle, once=once,
                                 concurrency=concurrency):
                        break
                except sqlite3.OperationalError as e:  # the database stayed locked past the busy timeout
                    log.warning("store busy (%s); trying again", e)
                stop.wait(poll_s)
        finally:
            for job_id, child in running.items():
                _kill(store, child, grace_s=_KILL_GRACE_S)
                requeue_or_fail(store, settings, job_id)
            store.unregister_worker(worker_id)
            log.info("worker %s stopped", worker_id)
    return 0


# ---------------------------------------------------------------------- the job's own process

_EXIT_WORKER_GONE = 70


def _watch_parent(parent_pid: int) -> None:
    """Exit if the process that started us is gone (its job will be failed as stale)."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(_EXIT_WORKER_GONE)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _import_test_techniques() -> None:
    for name in filter(None, (m.strip() for m in os.environ.get(TEST_TECHNIQUES_ENV, "").split(","))):
        importlib.import_module(name)


def is_allocation_failure(e: BaseException) -> bool:
    """Whether ``e`` is an allocation that failed (Python's, numpy's or torch's)."""
    if isinstance(e, MemoryError):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and ("can't allocate memory" in text or "Cannot allocate memory" in text)


class JobInputs(Protocol):
    """Where a job's model and data come from: the store, or (on a Ray node) bytes shipped with the task."""

    def load_model(self, model_id: str) -> LoadedModel: ...

    def resolve_data(self, ref: str) -> Dataset: ...


ProgressFn = Callable[[float, str], None]


def compute_job(spec: JobSpec, out_dir: Path, progress: ProgressFn, inputs: JobInputs) -> RunOutput | dict[str, Any]:
    """Compute a job's outputs in this process, without touching the job queue.

    The one place that decides what a job computes; both the local job process and the Ray task
    call it. Artifact files go under ``out_dir``.

    Args:
        spec: the job.
        out_dir: an empty directory for the artifacts.
        progress: called with (fraction 0..1, message).
        inputs: loads the spec's model and data.

    Returns:
        A :class:`~lwdash.jobs.runner.RunOutput` (a compression job) or a JSON-safe dict (an analysis).
    """
    progress(0.0, "loading the model and the data")
    model = inputs.load_model(spec.model_id)
    data = inputs.resolve_data(spec.data_ref)
    if spec.kind == "sensitivity":  # a per-layer scan: its JSON is stored as an analysis
        from lwdash.analysis.sensitivity import run_scan

        return run_scan(model.module, data, spec.technique, progress, threads=spec.threads)
    if spec.kind == "baseline":  # the model as it stands: its metrics are stored as an analysis
        from lwdash.analysis.baseline import measure_baseline

        return measure_baseline(model, data, out_dir, progress, threads=spec.threads)
    from lwdash.jobs.runner import execute

    return execute(spec, model, data, out_dir, progress)


def record_output(store: SqliteStore, job_id: str, spec: JobSpec, output: RunOutput | dict[str, Any],
                  out_dir: Path) -> str:
    """Store what :func:`compute_job` returned and mark the job done; returns the result's (or analysis's) id."""
    if isinstance(output, dict):
        result_id = store.save_analysis(job_id, spec, output)
    else:
        result_id = store.save_result(job_id, spec, output, out_dir)
    store.finish(job_id, result_id)
    return result_id


def failure_text(e: BaseException, memory_mb: int) -> str:
    """A job's failure: the error's type and message, then its traceback (the memory limit named when hit)."""
    if is_allocation_failure(e) and memory_mb > 0:
        head = memory_limit_message(memory_mb, f"an allocation failed ({type(e).__name__}: {e})")
    else:
        msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
        head = f"{type(e).__name__}: {msg}"
    return f"{head}\n\n{traceback.format_exc()}"


def run_job(data_dir: Path | str, job_id: str) -> int:
    """Run one claimed job in this process and record its outcome (the worker's child entry point).

    Returns:
        0 when the result was saved, 1 when the job failed (its error is recorded in the store).
    """
    import tempfile

    store = SqliteStore(data_dir)
    _watch_parent(os.getppid())
    settings = get_settings(data_dir)
    job = store.get_job(job_id)
    last = [0.0]

    def progress(fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= _PROGRESS_MIN_INTERVAL_S or fraction >= 1.0:
            last[0] = now
            store.update_progress(job_id, fraction, message)

    out_dir = Path(tempfile.mkdtemp(prefix=f"job-{job_id}-", dir=store.tmp_dir))
    try:
        _import_test_techniques()
        limit_address_space(settings.job_memory_mb)
        output = compute_job(job.spec, out_dir, progress, store)
        record_output(store, job_id, job.spec, output, out_dir)
        return 0
    except Exception as e:
        # Bad input and failures alike: the message says what was wrong; the traceback is kept for debugging.
        store.fail(job_id, failure_text(e, settings.job_memory_mb))
        return 1
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)  # already moved into artifacts/ on success


# ---------------------------------------------------------------------- starting a worker from the app

_STARTED: list[subprocess.Popen[bytes]] = []


def ensure_worker(data_dir: Path | str | None = None, *, concurrency: int | None = None) -> bool:
    """Start a detached ``python -m lwdash worker`` unless a live one serves ``data_dir``.

    Safe to call on every page load: a file lock serialises callers, and the new worker's row
    is recorded before returning, so concurrent callers do not start two. Each call also records
    this process as an app using the worker: a worker started here exits once it has been idle
    for ``LWDASH_WORKER_IDLE_EXIT_S`` with no such app alive. Does nothing when
    ``LWDASH_NO_WORKER=1`` (tests that must not spawn processes).

    Args:
        data_dir: the data directory (default: ``LWDASH_DATA_DIR``).
        concurrency: jobs the worker runs at once (default: ``LWDASH_CONCURRENCY``).

    Returns:
        True if a worker was started.
    """
    if os.environ.get("LWDASH_NO_WORKER", "") not in ("", "0"):
        return False
    for p in list(_STARTED):  # reap workers we started that have exited (no zombies)
        if p.poll() is not None:
            _STARTED.remove(p)
    settings = get_settings(data_dir)
    store = SqliteStore(settings.data_dir)
    lock_path = settings.data_dir / "worker-start.lock"
    with lock_path.open("a") as lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - not POSIX
            pass
        record_app(settings.data_dir)
        if store.live_workers(settings.worker_max_age_s):
            return False
        worker_id = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        cmd = [sys.executable, "-m", "lwdash", "worker", "--data-dir", str(settings.data_dir),
               "--worker-id", worker_id, "--exit-when-orphaned"]
        if concurrency is not None:
            cmd += ["--concurrency", str(concurrency)]
        with (settings.data_dir / "worker.log").open("ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=_child_env(),
                start_new_session=True,
            )
        _STARTED.append(proc)
        store.register_worker(worker_id, proc.pid)
    log.info("started worker %s (process %d) for %s", worker_id, proc.pid, settings.data_dir)
    return True


# ---------------------------------------------------------------------- entry points


def add_worker_arguments(p: argparse.ArgumentParser) -> None:
    """The worker's command-line options (shared with ``python -m lwdash worker``)."""
    p.add_argument("--data-dir", type=Path, default=None, help="data directory (default: $LWDASH_DATA_DIR or ./.lwdash-data)")
    p.add_argument("--once", action="store_true", help="burst mode: run the queued jobs, then exit")
    p.add_argument("--concurrency", type=int, default=None,
                   help="jobs run at the same time (default: $LWDASH_CONCURRENCY, else 1 for local;"
                        " for ray, cluster CPUs / $LWDASH_RAY_NUM_CPUS)")
    p.add_argument("--executor", choices=["local", "ray"], default=None,
                   help="where jobs run (default: $LWDASH_EXECUTOR, else local); see docs/executors.md")
    p.add_argument("--poll", type=float, default=0.5, help="seconds between queue checks when idle (default 0.5)")
    p.add_argument("--worker-id", default=None, help=argparse.SUPPRESS)
    p.add_argument("--exit-when-orphaned", action="store_true", help=argparse.SUPPRESS)


def run_worker_from_args(args: argparse.Namespace) -> int:
    """Run a worker from parsed :func:`add_worker_arguments` options."""
    return run_worker(args.data_dir, once=args.once, concurrency=args.concurrency, poll_s=args.poll,
                      worker_id=args.worker_id, executor=args.executor, exit_when_orphaned=args.exit_when_orphaned)


def _configure_logging() -> None:
    # lwdash's own messages at INFO; the engines' chatter (onnxscript logs every pass) only from WARNING.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr, force=True)
    logging.getLogger("lwdash").setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    """``python -m lwdash.jobs.worker``: a worker, or (``--run-job ID``) one job's process."""
    p = argparse.ArgumentParser(prog="python -m lwdash.jobs.worker", description="lwdash job worker")
    add_worker_arguments(p)
    p.add_argument("--run-job", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    _configure_logging()
    if args.run_job:
        data_dir = args.data_dir or get_settings().data_dir
        return run_job(data_dir, args.run_job)
    return run_worker_from_args(args)


if __name__ == "__main__":
    sys.exit(main())
