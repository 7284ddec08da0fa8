"""The job worker: claims queued jobs and runs each in its own process.

``python -m lwdash worker [--data-dir D] [--once] [--concurrency N] [--poll S]`` starts one.
It registers itself in the store and loops: fail jobs whose worker died (no heartbeat), claim
the oldest queued job (atomically, so several workers can share one store), and run it in a
child process (``python -m lwdash.jobs.worker --run-job ID``). A crash of the job (segfault,
out-of-memory kill, SIGKILL) therefore cannot take the worker down. While a child lives the
worker heartbeats its job, kills it when the user cancels it or when it passes the per-job time
limit (``LWDASH_JOB_TIMEOUT_S``), and when a child exits without a result it marks the job
failed with the reason (the signal, the exit code, or the error the child recorded).

Shutdown: on SIGTERM or SIGINT the worker kills its running jobs' processes and puts those
jobs back in the queue (their attempt count kept), so another worker, or this one restarted,
runs them again from the start; a job already claimed ``LWDASH_MAX_ATTEMPTS`` times is failed
instead, so a job that keeps coinciding with shutdowns cannot loop forever.

Test-only hook: ``LWDASH_TEST_TECHNIQUES`` (comma-separated module names) is imported by each
job's process before it runs, so tests can register techniques that sleep or crash. It has no
other use; leave it unset.
"""
from __future__ import annotations

import argparse
import importlib
import logging
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
from dataclasses import dataclass
from pathlib import Path

import lwdash
from lwdash.config import Settings, get_settings
from lwdash.jobs.spec import JobRecord, JobStatus
from lwdash.store.records import NotFoundError
from lwdash.store.sqlite import SqliteStore

__all__ = ["ensure_worker", "main", "run_job", "run_worker"]

log = logging.getLogger("lwdash.worker")

TEST_TECHNIQUES_ENV = "LWDASH_TEST_TECHNIQUES"
_PROGRESS_MIN_INTERVAL_S = 0.25
_KILL_GRACE_S = 5.0
_LOG_TAIL_CHARS = 2000
_PACKAGE_ROOT = str(Path(lwdash.__file__).resolve().parents[1])


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


def _log_tail(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - _LOG_TAIL_CHARS))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


# ---------------------------------------------------------------------- the supervising worker


@dataclass
class _Child:
    job: JobRecord
    proc: subprocess.Popen[bytes]
    started_s: float  # time.monotonic() at spawn
    log_path: Path


def _spawn(store: SqliteStore, job: JobRecord) -> _Child:
    log_path = store.logs_dir / f"job-{job.id}.log"
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lwdash.jobs.worker", "--run-job", job.id, "--data-dir", str(store.data_dir)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_child_env(),
            start_new_session=True,  # terminal signals go to the worker, which decides what to do
        )
    log.info("job %s (%s): started in process %d", job.id, job.spec.label or job.spec.technique.get("type"), proc.pid)
    return _Child(job=job, proc=proc, started_s=time.monotonic(), log_path=log_path)


def _kill(store: SqliteStore, child: _Child, *, grace_s: float = 0.0) -> None:
    """Stop a job's process group (SIGTERM with ``grace_s`` to exit, then SIGKILL) and remove its temp files."""
    try:
        _signal_group(child, grace_s)
    finally:
        _remove_job_tmp(store, child.job.id)


def _signal_group(child: _Child, grace_s: float) -> None:
    pid = child.proc.pid
    if grace_s > 0:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            child.proc.wait(timeout=grace_s)
            return
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.proc.wait()


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


def _on_exit(store: SqliteStore, child: _Child, rc: int) -> None:
    """A job's process ended: if it did not record an outcome itself, record why it ended."""
    _remove_job_tmp(store, child.job.id)
    job = store.get_job(child.job.id)
    if job.status is not JobStatus.RUNNING:
        log.info("job %s: %s (exit code %d)", job.id, job.status.value, rc)
        return
    if job.cancel_requested:
        store.mark_cancelled(job.id)
        log.info("job %s: cancelled", job.id)
        return
    if rc < 0:
        reason = _signal_reason(-rc)
    elif rc == 0:
        reason = "the job's process exited without saving a result"
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


def _tick(
    store: SqliteStore,
    worker_id: str,
    settings: Settings,
    running: dict[str, _Child],
    beat: _Beat,
    stop: threading.Event,
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
            log.warning("job %s: failed: its worker stopped responding", job_id)

    for job_id, child in list(running.items()):
        rc = child.proc.poll()
        if rc is not None:
            del running[job_id]
            _on_exit(store, child, rc)
            continue
        job = store.get_job(job_id)
        if job.cancel_requested and job.status is JobStatus.RUNNING:
            _kill(store, child)
            del running[job_id]
            if store.mark_cancelled(job_id):
                log.info("job %s: cancelled", job_id)
            else:
                log.info("job %s: finished before it could be cancelled", job_id)
        elif time.monotonic() - child.started_s > settings.job_timeout_s:
            _kill(store, child)
            del running[job_id]
            store.fail(
                job_id,
                f"the job ran past its time limit of {settings.job_timeout_s:g} s and was stopped"
                " (raise LWDASH_JOB_TIMEOUT_S for longer jobs)",
            )
            log.warning("job %s: failed: time limit", job_id)

    if stop.is_set():
        return False
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
    return not (once and not running and not claimed)


def run_worker(
    data_dir: Path | str | None = None,
    *,
    once: bool = False,
    concurrency: int = 1,
    poll_s: float = 0.5,
    worker_id: str | None = None,
    settings: Settings | None = None,
) -> int:
    """Serve jobs until SIGTERM/SIGINT (or, with ``once``, until the queue is empty).

    Args:
        data_dir: the store's data dir (default: ``LWDASH_DATA_DIR``).
        once: burst mode: run the jobs queued now (and any queued meanwhile), exit when none is left.
        concurrency: how many jobs run at the same time (each in its own process).
        poll_s: how long to sleep when there is nothing to do.
        worker_id: the id to register under (``ensure_worker`` passes the one it recorded).
        settings: timing settings (default: from the environment).

    Returns:
        The process exit code (0).
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    settings = settings or get_settings(data_dir)
    store = SqliteStore(settings.data_dir)
    worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    store.register_worker(worker_id, os.getpid())
    _remove_orphan_tmp(store)
    log.info("worker %s serving %s (concurrency %d)", worker_id, settings.data_dir, concurrency)

    stop = threading.Event()
    previous: dict[signal.Signals, object] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, lambda _sig, _frame: stop.set())

    running: dict[str, _Child] = {}
    beat = _Beat(settings.heartbeat_interval_s)
    try:
        while True:
            try:
                if not _tick(store, worker_id, settings, running, beat, stop, once=once, concurrency=concurrency):
                    break
            except sqlite3.OperationalError as e:  # the database stayed locked past the busy timeout
                log.warning("store busy (%s); trying again", e)
            stop.wait(poll_s)
    finally:
        for job_id, child in running.items():
            _kill(store, child, grace_s=_KILL_GRACE_S)
            job = store.get_job(job_id)
            if job.status is not JobStatus.RUNNING:
                continue
            if job.attempts >= settings.max_attempts:
                store.fail(
                    job_id,
                    f"the worker shut down while this job ran, {job.attempts} times; not requeued again — retry it",
                )
            else:
                store.requeue(job_id, "the worker shut down before the job finished; it will run again from the start")
                log.info("job %s: requeued", job_id)
        store.unregister_worker(worker_id)
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        log.info("worker %s stopped", worker_id)
    return 0


# ---------------------------------------------------------------------- the job's own process


def _watch_parent(parent_pid: int) -> None:
    """Exit if the worker that started us is gone (its job will be failed as stale)."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(70)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _import_test_techniques() -> None:
    for name in filter(None, (m.strip() for m in os.environ.get(TEST_TECHNIQUES_ENV, "").split(","))):
        importlib.import_module(name)


def run_job(data_dir: Path | str, job_id: str) -> int:
    """Run one claimed job in this process and record its outcome (the worker's child entry point).

    Returns:
        0 when the result was saved, 1 when the job failed (its error is recorded in the store).
    """
    import tempfile

    from lwdash.data import DataError
    from lwdash.jobs.runner import execute
    from lwdash.models.base import ModelLoadError
    from lwdash.store.records import NotFoundError

    store = SqliteStore(data_dir)
    _watch_parent(os.getppid())
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
        progress(0.0, "loading the model and the data")
        model = store.load_model(job.spec.model_id)
        data = store.resolve_data(job.spec.data_ref)
        output = execute(job.spec, model, data, out_dir, progress)
        result_id = store.save_result(job_id, job.spec, output, out_dir)
        store.finish(job_id, result_id)
        return 0
    except (ValueError, DataError, ModelLoadError, NotFoundError, KeyError) as e:
        # Bad input: the message says what was wrong; the traceback is kept for debugging.
        msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
        store.fail(job_id, f"{type(e).__name__}: {msg}\n\n{traceback.format_exc()}")
        return 1
    except Exception as e:
        store.fail(job_id, f"{type(e).__name__}: {e}\n\n{traceback.format_exc()}")
        return 1
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)  # already moved into artifacts/ on success


# ---------------------------------------------------------------------- starting a worker from the app

_STARTED: list[subprocess.Popen[bytes]] = []


def ensure_worker(data_dir: Path | str | None = None, *, concurrency: int = 1) -> bool:
    """Start a detached ``python -m lwdash worker`` unless a live one serves ``data_dir``.

    Safe to call on every page load: a file lock serialises callers, and the new worker's row
    is recorded before returning, so concurrent callers do not start two. Does nothing when
    ``LWDASH_NO_WORKER=1`` (tests that must not spawn processes).

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
        if store.live_workers(settings.worker_max_age_s):
            return False
        worker_id = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        with (settings.data_dir / "worker.log").open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "lwdash", "worker", "--data-dir", str(settings.data_dir),
                 "--worker-id", worker_id, "--concurrency", str(concurrency)],
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
    p.add_argument("--concurrency", type=int, default=1, help="jobs run at the same time (default 1)")
    p.add_argument("--poll", type=float, default=0.5, help="seconds between queue checks when idle (default 0.5)")
    p.add_argument("--worker-id", default=None, help=argparse.SUPPRESS)


def _configure_logging() -> None:
    # lwdash's own messages at INFO; the engines' chatter (onnxscript logs every pass) only from WARNING.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
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
    return run_worker(args.data_dir, once=args.once, concurrency=args.concurrency, poll_s=args.poll,
                      worker_id=args.worker_id)


if __name__ == "__main__":
    sys.exit(main())
