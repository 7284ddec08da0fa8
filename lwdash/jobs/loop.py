"""The job loop every executor shares: claim -> start -> poll -> record, with heartbeats, limits and recovery.

A worker is this loop plus an :class:`Executor`, the part that knows *where* a job runs: its
own local process (:mod:`lwdash.jobs.local`) or a Ray task (:mod:`lwdash.jobs.ray_executor`).
Each pass of :func:`serve`:

1. heartbeats (every ``LWDASH_HEARTBEAT_S``): the worker's row and its running jobs; jobs of
   dead workers (no heartbeat for ``LWDASH_STALE_TIMEOUT_S``) are failed, their temp files removed;
2. lets the executor relay what its running jobs reported (progress), then polls each one; a
   job that ended without recording its outcome gets one: done (its result was saved after all),
   cancelled (the user asked), or failed with the reason the executor gives (a signal, a crash);
3. enforces cancel requests, the time limit (``LWDASH_JOB_TIMEOUT_S``) and, where the executor
   measures it, the memory limit (``LWDASH_JOB_MEMORY_MB``), by killing the job;
4. advances running searches (:func:`lwdash.search.advance_searches`), then claims queued jobs
   (atomically: several workers may share a store) and starts them, up to the concurrency.

On SIGTERM / SIGINT (or ``stop_event``) the running jobs are killed and put back in the queue
(:func:`requeue_or_fail`). A store that stays busy past its timeout (:class:`~lwdash.store.StoreBusy`)
costs one pass, not the worker.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from lwdash.jobs.compute import memory_limit_message, time_limit_message
from lwdash.jobs.spec import JobRecord, JobStatus
from lwdash.search import advance_searches
from lwdash.store.records import NotFoundError, StoreBusy

if TYPE_CHECKING:
    from lwdash.config import Settings
    from lwdash.jobs.lifecycle import IdleExit
    from lwdash.workspace import Store

__all__ = [
    "Beat",
    "Executor",
    "JobStartError",
    "remove_job_tmp",
    "requeue_or_fail",
    "serve",
    "settle_if_saved",
    "stop_on_signals",
]

log = logging.getLogger("lwdash.worker")

#: How often the memory of a running job is measured (where the executor measures it).
MEMORY_CHECK_S = 0.25
#: On shutdown, how long a job's processes get to exit after SIGTERM before SIGKILL.
KILL_GRACE_S = 5.0


class JobStartError(Exception):
    """An executor could not start a claimed job; the message is recorded as the job's failure."""


@runtime_checkable
class Executor(Protocol):
    """Where claimed jobs run. The loop owns the queue, the limits and the outcome; the executor runs.

    A *handle* is whatever the executor returns from :meth:`start`; the loop hands it back to the
    other methods and never looks inside.
    """

    #: ``"local"`` or ``"ray"`` (shown in logs).
    name: str

    def start(self, job: JobRecord) -> Any:
        """Start a claimed job; returns its handle.

        Raises:
            JobStartError: it could not be started (the loop fails the job with the message).
        """
        ...

    def poll(self, handle: Any) -> str | None:
        """``None`` while the job runs. Once it has ended: why, for the loop to record as its failure
        if the job recorded no outcome of its own (its result, or the error it raised)."""
        ...

    def kill(self, handle: Any, *, grace_s: float = 0.0) -> None:
        """Stop the job now (``grace_s`` to exit cleanly first, where the executor can); its outcome is the loop's."""
        ...

    def memory_mb(self, handle: Any) -> float | None:
        """The memory the job holds now, or ``None`` where the executor enforces the limit itself."""
        ...

    def relay_progress(self) -> None:
        """Once per pass, before polling: copy what the running jobs reported into the store (if they cannot)."""
        ...


@dataclass
class Beat:
    """Due once every ``interval_s`` (the first call is due)."""

    interval_s: float
    last_s: float = -1e18

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last_s >= self.interval_s:
            self.last_s = now
            return True
        return False


@dataclass
class _Running:
    job: JobRecord
    handle: Any
    started_s: float  # time.monotonic() at start
    memory_checked_s: float = 0.0


# ---------------------------------------------------------------------- outcomes the loop records


def settle_if_saved(store: Store, job: JobRecord) -> bool:
    """A running job whose result is already stored is done, whatever happened to its process after.

    Closes the window between the job saving its result and marking the job done: a job killed
    in that window is not failed (and so never retried into a second result).
    """
    if job.status is JobStatus.RUNNING and job.result_id:
        return store.finish(job.id, job.result_id)
    return False


def requeue_or_fail(store: Store, settings: Settings, job_id: str) -> None:
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


def _record_end(store: Store, job_id: str, reason: str) -> None:
    """A job ended: unless it recorded its outcome itself, record done (saved), cancelled or failed."""
    job = store.get_job(job_id)
    if job.status is not JobStatus.RUNNING:
        log.info("job %s: %s", job_id, job.status.value)
    elif settle_if_saved(store, job):
        log.info("job %s: done (it ended after saving the result)", job_id)
    elif job.cancel_requested:
        store.mark_cancelled(job_id)
        log.info("job %s: cancelled", job_id)
    else:
        store.fail(job_id, reason)
        log.warning("job %s: failed: %s", job_id, reason.splitlines()[0] if reason else "")


def remove_job_tmp(store: Store, job_id: str) -> None:
    """Delete what a job left in the store's ``tmp/`` (it cleans up itself unless it was killed)."""
    for p in store.scratch_paths(f"job-{job_id}-*"):
        shutil.rmtree(p, ignore_errors=True)


def remove_orphan_tmp(store: Store) -> None:
    """At start-up: delete temp dirs of jobs that are no longer running (their process died)."""
    for p in store.scratch_paths("job-*-*"):
        job_id = p.name.split("-")[1]
        try:
            running = store.get_job(job_id).status is JobStatus.RUNNING
        except NotFoundError:
            running = False
        if not running:
            shutil.rmtree(p, ignore_errors=True)


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


# ---------------------------------------------------------------------- the loop


class _Loop:
    def __init__(self, store: Store, executor: Executor, settings: Settings, worker_id: str,
                 concurrency: int, idle: IdleExit | None) -> None:
        self.store = store
        self.executor = executor
        self.settings = settings
        self.worker_id = worker_id
        self.concurrency = concurrency
        self.idle = idle
        self.running: dict[str, _Running] = {}
        self.beat = Beat(settings.heartbeat_interval_s)

    def _stop(self, job_id: str) -> None:
        run = self.running.pop(job_id)
        try:
            self.executor.kill(run.handle)
        finally:
            remove_job_tmp(self.store, job_id)

    def heartbeat(self) -> None:
        store = self.store
        store.worker_heartbeat(self.worker_id)
        for job_id in self.running:
            store.heartbeat_job(job_id)
        for job_id in store.recover_stale(self.settings.stale_timeout_s):
            remove_job_tmp(store, job_id)
            log.warning("job %s: failed: its worker stopped responding", job_id)

    def collect(self) -> None:
        self.executor.relay_progress()
        for job_id, run in list(self.running.items()):
            reason = self.executor.poll(run.handle)
            if reason is not None:
                del self.running[job_id]
                remove_job_tmp(self.store, job_id)
                _record_end(self.store, job_id, reason)

    def check_limits(self) -> None:
        """Cancel requests, the time limit and the memory limit of the running jobs."""
        store, settings = self.store, self.settings
        now = time.monotonic()
        for job_id, run in list(self.running.items()):
            job = store.get_job(job_id)
            if job.cancel_requested and job.status is JobStatus.RUNNING:
                self._stop(job_id)
                if settle_if_saved(store, store.get_job(job_id)):
                    log.info("job %s: finished before it could be cancelled", job_id)
                elif store.mark_cancelled(job_id):
                    log.info("job %s: cancelled (%s job stopped)", job_id, self.executor.name)
                continue
            if now - run.started_s > settings.job_timeout_s:
                self._stop(job_id)
                if not settle_if_saved(store, store.get_job(job_id)):
                    store.fail(job_id, time_limit_message(settings.job_timeout_s))
                    log.warning("job %s: failed: time limit", job_id)
                continue
            if settings.job_memory_mb > 0 and now - run.memory_checked_s >= MEMORY_CHECK_S:
                run.memory_checked_s = now
                used_mb = self.executor.memory_mb(run.handle)
                if used_mb is not None and used_mb > settings.job_memory_mb:
                    self._stop(job_id)
                    if not settle_if_saved(store, store.get_job(job_id)):
                        store.fail(job_id, memory_limit_message(
                            settings.job_memory_mb, f"its processes held {used_mb:.0f} MB"))
                        log.warning("job %s: failed: memory limit (%.0f MB)", job_id, used_mb)

    def claim(self) -> bool:
        claimed = False
        while len(self.running) < self.concurrency:
            job = self.store.claim(self.worker_id)
            if job is None:
                break
            claimed = True
            try:
                handle = self.executor.start(job)
            except JobStartError as e:
                self.store.fail(job.id, str(e))
                log.warning("job %s: failed: %s", job.id, e)
                continue
            self.running[job.id] = _Running(job=job, handle=handle, started_s=time.monotonic())
        return claimed

    def tick(self, stop: threading.Event, *, once: bool) -> bool:
        """One pass; returns False when the worker should stop."""
        if self.beat.due():
            self.heartbeat()
        self.collect()
        self.check_limits()
        if stop.is_set():
            return False
        advance_searches(self.store)  # queue the next trials of running searches before claiming
        claimed = self.claim()
        if self.idle is not None and self.idle.should_exit(bool(self.running) or claimed):
            log.info("worker %s: idle for %g s and no app is alive: exiting", self.worker_id, self.idle.idle_s)
            return False
        return not (once and not self.running and not claimed)

    def shutdown(self) -> None:
        for job_id, run in list(self.running.items()):
            try:
                self.executor.kill(run.handle, grace_s=KILL_GRACE_S)
            finally:
                remove_job_tmp(self.store, job_id)
            requeue_or_fail(self.store, self.settings, job_id)
        self.running.clear()


def serve(
    store: Store,
    executor: Executor,
    settings: Settings,
    *,
    worker_id: str,
    concurrency: int,
    once: bool = False,
    poll_s: float = 0.5,
    idle: IdleExit | None = None,
    stop_event: threading.Event | None = None,
) -> int:
    """Serve the store's queue with ``executor`` until stopped (see the module docstring).

    Args:
        store: the store whose queue is served.
        executor: where the jobs run.
        settings: limits, heartbeat and stale timeouts.
        worker_id: the id the worker registers under (and claims jobs as).
        concurrency: how many jobs run at the same time (>= 1).
        once: burst mode: run the jobs queued now (and any queued meanwhile), return when none is left.
        poll_s: the pause between passes.
        idle: when set, return once it says the worker has been idle long enough.
        stop_event: stops the loop when set (for a loop run on a thread; on the main thread
            SIGTERM/SIGINT stop it too).

    Returns:
        The process exit code (0).

    Raises:
        ValueError: ``concurrency`` < 1.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    store.register_worker(worker_id, os.getpid())
    remove_orphan_tmp(store)
    loop = _Loop(store, executor, settings, worker_id, concurrency, idle)
    with stop_on_signals() as stop:
        if stop_event is not None:

            def relay() -> None:
                stop_event.wait()
                stop.set()

            threading.Thread(target=relay, name="lwdash-worker-stop", daemon=True).start()
        try:
            while True:
                try:
                    if not loop.tick(stop, once=once):
                        break
                except StoreBusy as e:  # the database stayed locked past the busy timeout
                    log.warning("store busy (%s); trying again", e)
                stop.wait(poll_s)
        finally:
            loop.shutdown()
            store.unregister_worker(worker_id)
            log.info("worker %s stopped", worker_id)
    return 0
