"""The Jobs page's sections: whether a worker serves the queue, and the live job list (cancel, retry, ETA)."""
from __future__ import annotations

import time

import streamlit as st

from lwdash.analysis.baseline import BASELINE_KIND
from lwdash.jobs.spec import JobRecord, JobStatus
from lwdash.store.records import NotFoundError
from lwdash.ui import state
from lwdash.ui.resources import get_store, model_title
from lwdash.ui.text import literal
from lwdash.workspace import Store

__all__ = ["JOB_REFRESH_S", "eta_text", "job_panel", "worker_status"]

#: Seconds between refreshes of the live job panel (only that fragment reruns).
JOB_REFRESH_S = 2.0
_STATUS_ICON = {
    JobStatus.QUEUED: ":material/schedule:",
    JobStatus.RUNNING: ":material/autorenew:",
    JobStatus.DONE: ":material/check_circle:",
    JobStatus.FAILED: ":material/error:",
    JobStatus.CANCELLED: ":material/cancel:",
}


def worker_status(store: Store) -> None:
    """Say whether a worker is serving the queue (jobs wait otherwise)."""
    from lwdash.config import get_settings

    workers = store.live_workers(get_settings().worker_max_age_s)
    counts = store.count_jobs()
    summary = " · ".join(f"{n} {s.value}" for s, n in counts.items() if n)
    if workers:
        st.caption(f"{len(workers)} worker(s) running (pid {', '.join(str(w.pid) for w in workers)}). {summary}")
    else:
        st.warning(f"No worker is running: queued jobs wait until one starts (`python -m lwdash worker`). {summary}")


def _job_label(job: JobRecord) -> str:
    if job.spec.label:
        return job.spec.label
    from lwdash.jobs.runner import job_label

    return job_label(job.spec.technique)


def _cancel(job_id: str) -> None:
    try:
        get_store().cancel(job_id)
    except NotFoundError:
        pass


def _retry(job_id: str) -> None:
    try:
        get_store().retry(job_id)
    except (NotFoundError, ValueError):
        pass  # it changed status meanwhile; the panel shows the new one


def _elapsed(job: JobRecord) -> str:
    if job.started_at is None:
        return f"queued {_ago(job.created_at)}"
    end = job.finished_at or time.time()
    return f"ran {end - job.started_at:.1f} s"


def eta_text(progress: float, started_at: float | None, now: float) -> str | None:
    """The time a running job has left, extrapolated linearly from its own progress so far ("about 90 s left").

    ``None`` before 5 % progress: a job's start (loading, export) is a poor predictor of the rest.
    """
    if started_at is None or not 0.05 <= progress < 1.0:
        return None
    left = (now - started_at) * (1.0 - progress) / progress
    return f"about {left:.0f} s left" if left < 120 else f"about {left / 60:.0f} min left"


def _ago(t: float) -> str:
    s = max(0.0, time.time() - t)
    return f"{s:.0f} s ago" if s < 120 else f"{s / 60:.0f} min ago"


def _job_row(job: JobRecord) -> None:
    with st.container(border=True):
        head, buttons = st.columns([5, 1])
        head.markdown(
            f"{_STATUS_ICON[job.status]} **{_job_label(job)}** · {job.status.value} · {literal(model_title(job.spec.model_id))} on "
            f"`{job.spec.data_ref}` · job `{job.id[:8]}` · {_elapsed(job)}"
        )
        if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
            eta = eta_text(job.progress, job.started_at, time.time()) if job.status is JobStatus.RUNNING else None
            text = job.message or job.status.value
            head.progress(min(max(job.progress, 0.0), 1.0), text=f"{text} · {eta}" if eta else text)
            buttons.button("Cancel", key=f"{state.JOBS_PREFIX}.cancel.{job.id}", on_click=_cancel, args=(job.id,))
        elif job.status is JobStatus.FAILED:
            first = (job.error or "failed").strip().splitlines()[0]
            head.error(first)
            with head.expander("Error details"):
                st.code(job.error or "(no details recorded)", language=None)
            buttons.button("Retry", key=f"{state.JOBS_PREFIX}.retry.{job.id}", on_click=_retry, args=(job.id,))
        elif job.status is JobStatus.CANCELLED:
            head.caption(job.message or "cancelled")
            buttons.button("Retry", key=f"{state.JOBS_PREFIX}.retry.{job.id}", on_click=_retry, args=(job.id,))
        elif job.result_id and job.spec.kind == "sensitivity":
            head.page_link("pages/layers.py", label=f"Scan {job.result_id[:8]}: see its curves on the Layers page",
                           icon=":material/arrow_forward:")
        elif job.result_id and job.spec.kind == BASELINE_KIND:
            head.page_link("pages/models.py", label="Measured: see the model's baseline on the Models page",
                           icon=":material/arrow_forward:")
        elif job.result_id:
            head.page_link("pages/compare.py", label=f"Result {job.result_id[:8]}: see it on the Compare page",
                           icon=":material/arrow_forward:")


@st.fragment(run_every=JOB_REFRESH_S)
def job_panel(limit: int = 50) -> None:
    """The worker status line and the live job list (progress, messages, errors, cancel / retry).

    Reruns alone every 2 s, so the counts and the cards never disagree.
    """
    store = get_store()
    worker_status(store)
    jobs = store.list_jobs(limit=limit)
    if not jobs:
        st.info("No jobs yet: queue some on the Compress page.")
        return
    for job in jobs:
        _job_row(job)
