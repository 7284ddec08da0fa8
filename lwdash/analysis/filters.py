"""Filtering results (and the jobs that have no result) for the Compare page, the report and the CLI.

Job status and result points: only a finished (``done``) job has a result, so only ``done`` puts
points on the charts. Failed, cancelled, queued and running jobs have no point; selecting those
statuses lists them beside the charts (which configs are missing from the front, and why), under
the same model / family / date filters.
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["JOB_STATUSES", "ResultFilter", "filter_jobs", "filter_results", "jobs_frame"]

#: Job statuses the filter offers; ``done`` is the one with points.
JOB_STATUSES = ("done", "failed", "cancelled", "running", "queued")


@dataclass(frozen=True)
class ResultFilter:
    """What to show. ``None`` for models / families means all of them.

    Attributes:
        models: model ids to keep.
        families: technique families to keep.
        statuses: job statuses: ``done`` shows the results; the others list jobs without a point.
        date_from / date_to: keep results (and jobs) created on these days, inclusive, UTC.
    """

    models: tuple[str, ...] | None = None
    families: tuple[str, ...] | None = None
    statuses: tuple[str, ...] = ("done",)
    date_from: _dt.date | None = None
    date_to: _dt.date | None = None

    def __post_init__(self) -> None:
        bad = [s for s in self.statuses if s not in JOB_STATUSES]
        if bad:
            raise ValueError(f"unknown job status(es) {bad}; choose from {', '.join(JOB_STATUSES)}")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(f"the date range is reversed: {self.date_from} is after {self.date_to}")

    def describe(self, names: Mapping[str, str] | None = None) -> str:
        """A sentence for reports: what this filter keeps; ``names`` maps a model id to the name people know it by."""
        shown = [(names or {}).get(m, m) for m in self.models] if self.models is not None else None
        parts = [f"models: {', '.join(shown) if shown is not None else 'all'}",
                 f"families: {', '.join(self.families) if self.families is not None else 'all'}",
                 f"job statuses: {', '.join(self.statuses) or 'none'}"]
        if self.date_from or self.date_to:
            parts.append(f"dates: {self.date_from or '...'} to {self.date_to or '...'}")
        return "Filter: " + "; ".join(parts) + "."


def _date_mask(created: pd.Series, flt: ResultFilter) -> pd.Series:
    mask = pd.Series(True, index=created.index)
    if flt.date_from is None and flt.date_to is None:
        return mask
    days = pd.to_datetime(created).dt.date
    if flt.date_from is not None:
        mask &= days >= flt.date_from
    if flt.date_to is not None:
        mask &= days <= flt.date_to
    return mask


def filter_results(frame: pd.DataFrame, flt: ResultFilter) -> pd.DataFrame:
    """The rows of the results frame the filter keeps (none when ``done`` is not selected)."""
    if frame.empty or "done" not in flt.statuses:
        return frame.iloc[0:0].reset_index(drop=True)
    mask = pd.Series(True, index=frame.index)
    if flt.models is not None:
        mask &= frame["model_id"].isin(flt.models)
    if flt.families is not None:
        mask &= frame["family"].isin(flt.families)
    if "created_at" in frame.columns:
        mask &= _date_mask(frame["created_at"], flt)
    return frame[mask].reset_index(drop=True)


def jobs_frame(jobs: Sequence[Any]) -> pd.DataFrame:
    """Compression jobs as a frame: ``id, status, model_id, technique, family, label, created_at, error``.

    Args:
        jobs: :class:`~lwdash.jobs.spec.JobRecord` s (analysis jobs, e.g. sensitivity scans, are left out).
    """
    from lwdash.jobs.runner import job_label
    from lwdash.techniques import get_technique

    def family(key: str) -> str:
        try:
            return get_technique(key).family
        except Exception:
            return "other"

    rows = []
    for j in jobs:
        if getattr(j.spec, "kind", "compress") != "compress":
            continue
        key = str(j.spec.technique.get("type", ""))
        rows.append({
            "id": j.id,
            "status": j.status.value,
            "model_id": j.spec.model_id,
            "technique": key,
            "family": family(key),
            "label": j.spec.label or job_label(j.spec.technique),
            "created_at": pd.Timestamp(j.created_at, unit="s"),
            "progress": float(j.progress),
            "error": (j.error or "").strip().splitlines()[0] if j.error else (j.message or ""),
        })
    cols = ["id", "status", "model_id", "technique", "family", "label", "created_at", "progress", "error"]
    return pd.DataFrame(rows, columns=cols)


def filter_jobs(jobs: pd.DataFrame, flt: ResultFilter) -> pd.DataFrame:
    """Jobs without a point that the filter selects: the non-``done`` statuses it names."""
    wanted = [s for s in flt.statuses if s != "done"]
    if jobs.empty or not wanted:
        return jobs.iloc[0:0].reset_index(drop=True)
    mask = jobs["status"].isin(wanted)
    if flt.models is not None:
        mask &= jobs["model_id"].isin(flt.models)
    if flt.families is not None:
        mask &= jobs["family"].isin(flt.families)
    mask &= _date_mask(jobs["created_at"], flt)
    return jobs[mask].reset_index(drop=True)
