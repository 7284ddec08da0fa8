"""Immediate mode: run queued jobs to the end in the calling process (no worker, no child process).

For tests and single-user scripts, like huey's immediate mode or rq's ``is_async=False``::

    job_id = store.submit(spec)
    done = run_inline(store, job_id)      # claim -> compute -> record, here and now
    assert done.status is JobStatus.DONE

The job goes through the same queue verbs and the same compute/record code as on a worker
(:func:`lwdash.jobs.compute.run_claimed`), so its result is stored exactly as a worker stores it.
What a worker adds is not here: no process of its own (a crash takes the caller down), no
heartbeat, no time or memory limit, no cancel while it runs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from lwdash.jobs.compute import run_claimed
from lwdash.jobs.spec import JobRecord, JobStatus

if TYPE_CHECKING:
    from lwdash.workspace import Store

__all__ = ["INLINE_WORKER", "run_inline", "run_queued"]

#: The worker name inline jobs are claimed under (shown as the job's worker).
INLINE_WORKER = "inline"


def _next_queued(store: Store) -> JobRecord | None:
    """The job :meth:`~lwdash.workspace.Store.claim` would take next (oldest ``queued_at``, then oldest row)."""
    queued = store.list_jobs(status=[JobStatus.QUEUED], limit=1_000_000)[::-1]  # oldest first
    return min(queued, key=lambda j: float(j.extra.get("queued_at", j.created_at)), default=None)


def run_inline(store: Store, job_id: str | None = None, *, worker_id: str = INLINE_WORKER) -> JobRecord | None:
    """Claim the next queued job and run it to the end in this process; returns the job as it ended.

    Args:
        store: the store to take the job from and record its outcome in.
        job_id: the job the caller expects to run; it must be the next in the queue (checked
            before anything is claimed).
        worker_id: the worker name the job is claimed under.

    Returns:
        The job's record after it ran (``done``, or ``failed`` with the error and its
        traceback), or ``None`` when nothing is queued.

    Raises:
        ValueError: ``job_id`` is not queued, or another job is ahead of it in the queue.
    """
    if job_id is not None:
        status = store.get_job(job_id).status
        if status is not JobStatus.QUEUED:
            raise ValueError(f"job {job_id} is {status.value}, not queued: only a queued job can be run inline")
        ahead = _next_queued(store)
        if ahead is not None and ahead.id != job_id:
            raise ValueError(f"job {job_id} is not next in the queue (job {ahead.id} is): run that one first")
    job = store.claim(worker_id)
    if job is None:
        return None
    if job_id is not None and job.id != job_id:  # a worker took it between the check and the claim
        store.requeue(job.id, "claimed by an inline run that expected another job")
        raise ValueError(f"job {job_id} was taken by another worker")
    run_claimed(store, job)
    return store.get_job(job.id)


def run_queued(store: Store, *, worker_id: str = INLINE_WORKER) -> list[JobRecord]:
    """Run every queued job (and any queued meanwhile) inline, oldest first; returns them as they ended."""
    done: list[JobRecord] = []
    while (job := run_inline(store, worker_id=worker_id)) is not None:
        done.append(job)
    return done
