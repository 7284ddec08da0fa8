"""The local executor: each job in its own process on this machine, forked from a warm "zygote".

Job processes are forked from a zygote (``multiprocessing``'s forkserver) that has already
imported torch, ONNX Runtime and lwdash, so a job starts in milliseconds instead of seconds, and
each job still gets a process (and a process session) of its own: a crash of the job (segfault,
out-of-memory kill, SIGKILL) cannot take the worker down. The job's process computes the job and
records its outcome in the store itself (:func:`run_job`); when it exits without one, the loop
records why it ended (the signal, the exit code, the tail of its log).

Like any ``multiprocessing`` child started by spawn or forkserver, a job's process first imports
the worker's main module again (as ``__mp_main__``): a script that registers its own techniques
or job kinds and then calls :func:`lwdash.jobs.worker.main` has them in its job processes too.

Memory limit: the loop sums the resident memory (RSS) of the job's processes every
``MEMORY_CHECK_S`` (:meth:`LocalExecutor.memory_mb`) and kills them past the limit. As a
backstop against one sudden huge allocation (faster than the check), the job's process also caps
its own address space (``RLIMIT_AS``) at its size after the imports plus the limit, so such an
allocation fails at once with an error that names the limit instead of waking the OOM killer.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lwdash.config import Settings, get_settings
from lwdash.isolate import limit_address_space
from lwdash.jobs.compute import failure_text, run_claimed
from lwdash.jobs.lifecycle import IdleExit
from lwdash.jobs.loop import JobStartError, serve
from lwdash.workspace import SqliteStore, Store

if TYPE_CHECKING:
    from lwdash.jobs.spec import JobRecord

__all__ = ["LocalExecutor", "run_job", "run_local_worker", "session_rss_mb"]

log = logging.getLogger("lwdash.worker")

_LOG_TAIL_CHARS = 2000
#: Exit code of a job's process that stopped because its worker was gone.
EXIT_WORKER_GONE = 70
#: Imported once by the zygote that local job processes are forked from (a failed import is skipped).
_ZYGOTE_PRELOAD = [
    "lwdash.jobs.local",
    "lwdash.jobs.compute",
    "lwdash.jobs.runner",
    "lwdash.techniques",
    # lwdash.models / lwdash.data load their names on first use: name the modules a job imports
    "lwdash.models.loading",
    "lwdash.models.samples",
    "lwdash.data.bundled",
    "lwdash.data.npz",
    "lwdash.data.fit",
    "lwdash.data.imagefolder",
    "lwdash.measure",
    "lwdash.analysis.sensitivity",
    "lwdash.analysis.baseline",
    "onnxruntime",
    "sklearn.datasets",  # the digits loader's (lazy) imports: ~3 s a job otherwise
    "sklearn.model_selection",
]
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


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


def _exit_reason(rc: int) -> str:
    if rc < 0:
        return _signal_reason(-rc)
    if rc == 0:
        return "the job's process exited without saving a result"
    if rc == EXIT_WORKER_GONE:
        return "the job's process stopped because its worker was gone"
    return f"the job's process exited with code {rc}"


def _log_tail(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - _LOG_TAIL_CHARS))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


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


# ---------------------------------------------------------------------- the supervising side


@dataclass
class _Child:
    job_id: str
    proc: Any  # multiprocessing.Process (forked from the zygote)
    log_path: Path

    @property
    def pid(self) -> int:
        return int(self.proc.pid)


def _send(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the job's session (it called setsid first thing)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.kill(pid, sig)  # in case it was stopped before its setsid
    except ProcessLookupError:
        pass


class LocalExecutor:
    """Runs each job in its own process (and session), forked from the zygote; see the module docstring.

    Args:
        store: the store the jobs come from (their processes open it themselves).
        warm: start the zygote now, so the first job does not wait for its imports.
    """

    name = "local"

    def __init__(self, store: Store, *, warm: bool = False) -> None:
        self.store = store
        _zygote(warm=warm)

    def start(self, job: JobRecord) -> _Child:
        """Fork the job's process from the zygote."""
        log_path = self.store.log_path(f"job-{job.id}.log")
        proc = _zygote().Process(target=_job_process_main, args=(str(self.store.data_dir), job.id, str(log_path)),
                                 name=f"lwdash-job-{job.id}")
        try:
            proc.start()
        except OSError as e:
            raise JobStartError(f"could not start the job's process: {e}") from e
        log.info("job %s (%s): started in process %d", job.id, job.spec.label or job.spec.technique.get("type"),
                 proc.pid)
        return _Child(job_id=job.id, proc=proc, log_path=log_path)

    def poll(self, handle: _Child) -> str | None:
        """``None`` while the process lives; then why it ended (with the tail of its log)."""
        rc = handle.proc.exitcode
        if rc is None:
            return None
        handle.proc.close()
        reason = _exit_reason(rc)
        tail = _log_tail(handle.log_path)
        return reason + (f"\n\nlast output of the job's process:\n{tail}" if tail else "")

    def kill(self, handle: _Child, *, grace_s: float = 0.0) -> None:
        """Stop the job's process session: SIGTERM with ``grace_s`` to exit, then SIGKILL."""
        if grace_s > 0:
            _send(handle.pid, signal.SIGTERM)
            handle.proc.join(grace_s)
        if grace_s <= 0 or handle.proc.exitcode is None:
            _send(handle.pid, signal.SIGKILL)  # the whole session: whatever the job started goes too
            handle.proc.join()
        handle.proc.close()

    def memory_mb(self, handle: _Child) -> float:
        """The resident memory of the job's processes (its session)."""
        return session_rss_mb(handle.pid)

    def relay_progress(self) -> None:
        """Nothing to relay: a job's process writes its progress to the store itself."""


def run_local_worker(
    settings: Settings,
    *,
    once: bool = False,
    concurrency: int | None = None,
    poll_s: float = 0.5,
    worker_id: str | None = None,
    exit_when_orphaned: bool = False,
    stop_event: threading.Event | None = None,
) -> int:
    """Serve the store's queue with local job processes (the arguments are :func:`lwdash.jobs.worker.run_worker`'s)."""
    concurrency = concurrency or settings.concurrency or 1
    store = SqliteStore(settings.data_dir)
    worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    executor = LocalExecutor(store, warm=True)
    idle = IdleExit(settings.data_dir, settings.worker_idle_exit_s, enabled=exit_when_orphaned)
    log.info("worker %s serving %s (local executor, concurrency %d, memory limit %s)", worker_id,
             settings.data_dir, concurrency, f"{settings.job_memory_mb} MB" if settings.job_memory_mb else "none")
    return serve(store, executor, settings, worker_id=worker_id, concurrency=concurrency, once=once, poll_s=poll_s,
                 idle=idle, stop_event=stop_event)


# ---------------------------------------------------------------------- the job's own process


def _watch_parent(parent_pid: int) -> None:
    """Exit if the process that started us is gone (its job will be failed as stale)."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(EXIT_WORKER_GONE)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def configure_logging() -> None:
    """lwdash's own messages at INFO; the engines' chatter (onnxscript logs every pass) only from WARNING."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr, force=True)
    logging.getLogger("lwdash").setLevel(logging.INFO)


def _job_process_main(data_dir: str, job_id: str, log_path: str) -> None:
    """Entry point of a job's process (forked from the zygote)."""
    os.setsid()  # its own session: the worker stops the job and everything it started as one group
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    configure_logging()
    sys.exit(run_job(data_dir, job_id))


def run_job(data_dir: Path | str, job_id: str) -> int:
    """Run one claimed job in this process and record its outcome (a job process's entry point).

    Watches its parent (exits when the worker is gone) and caps its address space at the memory limit.

    Returns:
        0 when the result was saved, 1 when the job failed (its error is recorded in the store).
    """
    store = SqliteStore(data_dir)
    _watch_parent(os.getppid())
    settings = get_settings(data_dir)
    job = store.get_job(job_id)
    try:
        limit_address_space(settings.job_memory_mb)
    except Exception as e:
        store.fail(job_id, failure_text(e, settings.job_memory_mb))
        return 1
    return 0 if run_claimed(store, job, memory_mb=settings.job_memory_mb) else 1
