"""Searches and their trials as stored: what a worker advances and the Search page shows.

:class:`SearchBook` is that part of :class:`lwdash.workspace.Store`. A search is a row of kind
``"searches"`` (``running`` until done, failed or cancelled); each trial it proposes is a row of
kind ``"search_trials"`` plus one queued job, written together so two workers advancing the same
search never queue a trial twice. The search logic itself (Optuna) is :mod:`lwdash.search`.
"""
from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from lwdash.jobs.queue import job_row
from lwdash.jobs.spec import JobStatus
from lwdash.store.backend import Backend, Row
from lwdash.store.codec import dumps, loads
from lwdash.store.records import NotFoundError, SearchRecord, SearchTrialRecord

if TYPE_CHECKING:
    from lwdash.jobs.spec import JobSpec

__all__ = ["SearchBook"]


class SearchBook:
    """Create, advance, cancel and finish searches."""

    backend: Backend

    def create_search(self, model_id: str, data_ref: str, config: dict[str, Any]) -> str:
        """Record a new search as ``running``; a worker proposes and queues its trials. Returns its id."""
        search_id = uuid.uuid4().hex
        self.backend.put("searches", {
            "id": search_id, "model_id": model_id, "data_ref": data_ref, "config": dumps(config), "status": "running",
            "message": "waiting for a worker to propose the first trial", "created_at": time.time(),
        })
        return search_id

    def get_search(self, search_id: str) -> SearchRecord:
        """One search.

        Raises:
            NotFoundError: no such search.
        """
        row = self.backend.get("searches", search_id)
        if row is None:
            raise NotFoundError(f"no search {search_id!r}")
        return _search_from_row(row)

    def list_searches(self, *, status: str | None = None, model_id: str | None = None) -> list[SearchRecord]:
        """Searches, newest first, optionally only those with ``status`` and / or of ``model_id``."""
        return [_search_from_row(r) for r in self.backend.query("searches", {"status": status, "model_id": model_id})]

    def search_trials(self, search_id: str) -> list[SearchTrialRecord]:
        """The trials proposed so far, in trial order, with their jobs' status and result."""
        out = []
        for t in self.backend.query("search_trials", {"search_id": search_id}, order_by=("trial",), descending=False):
            job = self.backend.get("jobs", t["job_id"])
            result = self.backend.get("results", job["result_id"]) if job and job["result_id"] else None
            out.append(SearchTrialRecord(
                search_id=t["search_id"], trial=int(t["trial"]), job_id=t["job_id"], params=loads(t["params"]),
                system_attrs=loads(t["system_attrs"]),
                job_status=job["status"] if job else JobStatus.FAILED.value,
                result_id=result["id"] if result else None,
                error=(job["error"] or "") if job else "job lost",
                metrics=loads(result["compressed"]) if result else None,
                baseline=loads(result["baseline"]) if result else None,
            ))
        return out

    def add_search_trial(
        self, search_id: str, trial: int, spec: JobSpec, params: dict[str, Any], system_attrs: dict[str, Any]
    ) -> str | None:
        """Queue trial ``trial`` of a running search as a job, unless it exists already.

        One transaction: the trial row and its job appear together or not at all, so two workers
        advancing the same search cannot queue the same trial twice.

        Returns:
            The new job's id, or ``None`` if trial ``trial`` was already queued or the search is over.
        """
        job_id = uuid.uuid4().hex
        with self.backend.atomic():
            search = self.backend.get("searches", search_id)
            if search is None or search["status"] != "running" or search["cancel_requested"]:
                return None
            trial_row = {"search_id": search_id, "trial": trial, "job_id": job_id, "params": dumps(params),
                         "system_attrs": dumps(system_attrs)}
            if not self.backend.put("search_trials", trial_row):
                return None
            self.backend.put("jobs", job_row(spec, time.time(), job_id))
            self.backend.update("searches", search_id, {"message": f"trial {trial + 1} queued"})
        return job_id

    def set_search_message(self, search_id: str, message: str) -> None:
        """Say where a running search stands."""
        self.backend.update("searches", search_id, {"message": message}, where={"status": "running"})

    def cancel_search(self, search_id: str) -> str:
        """Ask a running search to stop: the next worker pass cancels its queued and running trials.

        Returns:
            The search's status (``running`` until a worker acts, or the status it already had).

        Raises:
            NotFoundError: no such search.
        """
        with self.backend.atomic():
            status = self.get_search(search_id).status
            if status == "running":
                self.backend.update("searches", search_id, {"cancel_requested": 1, "message": "cancelling"})
            return status

    def finish_search(self, search_id: str, status: str, message: str, summary: dict[str, Any]) -> bool:
        """End a running search with its summary; ``False`` if it had already ended."""
        if status not in ("done", "failed", "cancelled"):
            raise ValueError(f"a search ends done, failed or cancelled, not {status!r}")
        return self.backend.update(
            "searches", search_id,
            {"status": status, "message": message, "summary": dumps(summary), "finished_at": time.time()},
            where={"status": "running"},
        )


def _search_from_row(r: Row) -> SearchRecord:
    return SearchRecord(
        id=r["id"], model_id=r["model_id"], data_ref=r["data_ref"], config=loads(r["config"]),
        status=r["status"], message=r["message"], created_at=float(r["created_at"]),
        finished_at=None if r["finished_at"] is None else float(r["finished_at"]),
        cancel_requested=bool(r["cancel_requested"]), summary=loads(r["summary"]),
    )
