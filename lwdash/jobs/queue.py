"""The durable job queue: submit, claim, report progress, finish, cancel, retry and recover jobs.

:class:`JobQueue` is the queue part of :class:`lwdash.workspace.Store`, written on the backend's
queue verbs (:meth:`~lwdash.store.backend.Backend.claim`, ``set_state``, ``heartbeat``,
``stale``) and its rows of kind ``"jobs"``. A job's life: ``queued`` -> ``running`` -> ``done``
/ ``failed`` / ``cancelled``; ``requeue`` puts a running job back (its worker is stopping),
``retry`` queues a failed or cancelled one again.
"""
from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, fields

from lwdash.jobs.spec import JobRecord, JobSpec, JobStatus
from lwdash.store.backend import Backend, Row, last_alive
from lwdash.store.codec import dumps, loads
from lwdash.store.records import NotFoundError

__all__ = ["JobQueue", "job_from_row", "job_row"]


def job_row(spec: JobSpec, now: float, job_id: str | None = None) -> Row:
    """A new queued job's row."""
    if not isinstance(spec, JobSpec):
        raise TypeError(f"submit expects JobSpec, got {type(spec).__name__}")
    return {"id": job_id or uuid.uuid4().hex, "spec": dumps(asdict(spec)), "status": JobStatus.QUEUED.value,
            "message": "queued", "created_at": now, "queued_at": now}


def job_from_row(r: Row) -> JobRecord:
    d = loads(r["spec"])
    names = {f.name for f in fields(JobSpec)}
    spec = JobSpec(**{k: v for k, v in d.items() if k in names})
    return JobRecord(
        id=r["id"],
        spec=spec,
        status=JobStatus(r["status"]),
        progress=float(r["progress"]),
        message=r["message"],
        error=r["error"],
        created_at=float(r["created_at"]),
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        heartbeat_at=r["heartbeat_at"],
        worker=r["worker"],
        result_id=r["result_id"],
        extra={"queued_at": float(r["queued_at"])},
        attempts=int(r["attempts"]),
        cancel_requested=bool(r["cancel_requested"]),
    )


def _statuses(status: JobStatus | str | Sequence[JobStatus | str] | None) -> list[str] | None:
    if status is None:
        return None
    wanted = [status] if isinstance(status, (str, JobStatus)) else list(status)
    return [JobStatus(s).value for s in wanted]


class JobQueue:
    """Jobs: the queue every executor claims from."""

    backend: Backend

    def submit(self, spec: JobSpec) -> str:
        """Queue one job; returns its id."""
        return self.submit_many([spec])[0]

    def submit_many(self, specs: Sequence[JobSpec]) -> list[str]:
        """Queue several jobs in one transaction (all or none); returns their ids in order."""
        now = time.time()
        rows = [job_row(spec, now) for spec in specs]
        with self.backend.atomic():
            for row in rows:
                self.backend.put("jobs", row)
        return [r["id"] for r in rows]

    def get_job(self, job_id: str) -> JobRecord:
        """The job's current record.

        Raises:
            NotFoundError: no such job.
        """
        row = self.backend.get("jobs", job_id)
        if row is None:
            raise NotFoundError(f"no job {job_id!r}")
        return job_from_row(row)

    def list_jobs(self, limit: int = 200, status: JobStatus | str | Sequence[JobStatus | str] | None = None) -> list[JobRecord]:
        """Jobs, newest first, optionally only those with the given status(es)."""
        rows = self.backend.query("jobs", {"status": _statuses(status)}, limit=int(limit))
        return [job_from_row(r) for r in rows]

    def jobs_of(
        self,
        kind: str,
        model_id: str,
        *,
        data_ref: str | None = None,
        status: Sequence[JobStatus | str] = (),
        limit: int = 200,
    ) -> list[JobRecord]:
        """Jobs of one kind (``JobSpec.kind``) on one model (and data set), newest first, optionally by status."""
        where = {"spec.kind": kind, "spec.model_id": model_id, "spec.data_ref": data_ref,
                 "status": _statuses(status) if status else None}
        return [job_from_row(r) for r in self.backend.query("jobs", where, limit=int(limit))]

    def count_jobs(self) -> dict[JobStatus, int]:
        """How many jobs are in each status."""
        counts = {s: 0 for s in JobStatus}
        for r in self.backend.query("jobs", omit=("spec", "message", "error")):
            counts[JobStatus(r["status"])] += 1
        return counts

    def claim(self, worker_id: str) -> JobRecord | None:
        """Atomically take the oldest queued job for ``worker_id``; ``None`` if the queue is empty."""
        row = self.backend.claim(worker_id, time.time())
        return None if row is None else job_from_row(row)

    def update_progress(self, job_id: str, progress: float, message: str) -> bool:
        """Record a running job's progress (0..1) and message; also a heartbeat.

        Returns:
            True if the user asked to cancel the job (the caller may stop early).
        """
        p = min(max(float(progress), 0.0), 1.0) if math.isfinite(progress) else 0.0
        return bool(self.backend.heartbeat(job_id, time.time(), {"progress": p, "message": str(message)[:1000]}))

    def heartbeat_job(self, job_id: str) -> bool:
        """Stamp a running job as alive; returns True if cancellation was requested."""
        return bool(self.backend.heartbeat(job_id, time.time()))

    def finish(self, job_id: str, result_id: str) -> bool:
        """Mark a job done with its result. A job declared stale meanwhile still counts as done:
        its result exists. Returns False if the job was not running (or stale-failed)."""
        now = time.time()
        return self.backend.set_state(
            job_id, {"status": "done", "progress": 1.0, "message": "done", "error": "", "result_id": result_id,
                     "finished_at": now, "heartbeat_at": now},
            from_states=("running", "failed"),
        )

    def fail(self, job_id: str, error: str) -> bool:
        """Mark a queued or running job failed with ``error`` (first line: the reason). False if already final."""
        return self.backend.set_state(
            job_id, {"status": "failed", "error": str(error), "message": "failed", "finished_at": time.time()},
            from_states=("running", "queued"),
        )

    def cancel(self, job_id: str) -> JobStatus:
        """Cancel a job: a queued one at once; a running one is flagged and its worker kills it.

        Returns:
            The job's status after the call (``cancelled``, or ``running`` while the worker acts,
            or the terminal status it already had).

        Raises:
            NotFoundError: no such job.
        """
        with self.backend.atomic():
            status = self.get_job(job_id).status
            if status is JobStatus.QUEUED:
                self.backend.update("jobs", job_id, {"status": "cancelled", "message": "cancelled before it started",
                                                     "finished_at": time.time()})
                return JobStatus.CANCELLED
            if status is JobStatus.RUNNING:
                self.backend.update("jobs", job_id, {"cancel_requested": 1, "message": "cancelling"})
            return status

    def mark_cancelled(self, job_id: str) -> bool:
        """The worker's side of :meth:`cancel`: a running job whose process it killed."""
        return self.backend.set_state(
            job_id, {"status": "cancelled", "message": "cancelled while running", "finished_at": time.time()},
            from_states=("running",),
        )

    def requeue(self, job_id: str, reason: str) -> bool:
        """Put a running job back in the queue (its worker is shutting down), keeping its attempt count."""
        return self.backend.set_state(
            job_id, {"status": "queued", "message": f"requeued: {reason}", "progress": 0.0, "started_at": None,
                     "heartbeat_at": None, "worker": ""},
            from_states=("running",),
        )

    def retry(self, job_id: str) -> None:
        """Queue a failed or cancelled job again (at the back of the queue).

        Raises:
            NotFoundError: no such job.
            ValueError: the job is queued, running or done.
        """
        with self.backend.atomic():
            status = self.get_job(job_id).status
            if status not in (JobStatus.FAILED, JobStatus.CANCELLED):
                raise ValueError(f"only failed or cancelled jobs can be retried; job {job_id} is {status.value}")
            self.backend.update("jobs", job_id, {
                "status": "queued", "progress": 0.0, "message": "queued (retry)", "error": "", "queued_at": time.time(),
                "started_at": None, "finished_at": None, "heartbeat_at": None, "worker": "", "result_id": None,
                "cancel_requested": 0,
            })

    def recover_stale(self, timeout_s: float) -> list[str]:
        """Fail running jobs whose heartbeat is older than ``timeout_s`` (their worker died).

        A stale job whose result was already saved (its process died between saving and
        :meth:`finish`) is marked done instead: its result exists, and failing it would invite a
        retry that stores a second one.

        Returns:
            The ids of the jobs marked failed.
        """
        now = time.time()
        cutoff = now - timeout_s
        failed: list[str] = []
        with self.backend.atomic():
            for r in self.backend.stale(cutoff):
                if r["result_id"] is not None:
                    self.backend.set_state(r["id"], {"status": "done", "progress": 1.0, "message": "done", "error": "",
                                                     "finished_at": now}, from_states=("running",), stale_before=cutoff)
                    continue
                silent_s = int(now - last_alive(r))
                error = (f"worker stopped responding (no heartbeat for {silent_s} s); the job was not finished"
                         " — retry it")
                if self.backend.set_state(r["id"], {"status": "failed", "finished_at": now, "message": "failed",
                                                    "error": error}, from_states=("running",), stale_before=cutoff):
                    failed.append(r["id"])
        return failed

