"""What a search has found: each finished trial's objective values, the Pareto front and the hypervolume."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lwdash.jobs.spec import JobStatus
from lwdash.measure.metrics import flatten
from lwdash.pareto import hypervolume_2d, pareto_mask
from lwdash.search.config import SearchConfig

if TYPE_CHECKING:
    from lwdash.store.records import SearchTrialRecord

__all__ = ["OPEN_STATUSES", "objective_values", "search_summary"]

#: Job statuses of a trial that is still open (queued or running).
OPEN_STATUSES = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


def objective_values(cfg: SearchConfig, t: SearchTrialRecord) -> list[float] | None:
    """A finished trial's objective values (from its stored result), ``None`` if it has none."""
    if t.job_status != JobStatus.DONE.value or not t.metrics:
        return None
    flat = flatten(t.metrics)  # either stored shape: latency records or the older flat fields
    values = [float(flat.get(o, math.nan)) for o in cfg.objectives]
    return values if all(math.isfinite(v) for v in values) else None


def search_summary(cfg: SearchConfig, trials: Sequence[SearchTrialRecord]) -> dict[str, Any]:
    """Every trial with its params and objective values, the Pareto front, and the hypervolume over time.

    The hypervolume (two objectives only) is taken in baseline units: accuracy as a fraction, the
    cost as a ratio to the trial's own baseline, reference point (0, 1): the share of "as
    accurate as possible for a fraction of the cost" that the front covers. It can only grow;
    flat means recent trials found nothing better.

    Returns:
        A JSON-safe dict: ``objectives``, ``directions``, ``trials`` (``trial``, ``job_id``,
        ``result_id``, ``status``, ``params``, ``values``, ``on_front``, ``error``), ``front``
        (trial numbers), ``hypervolume`` (after each trial, ``None`` with three objectives),
        ``measured`` and ``failed`` counts.
    """
    rows = []
    for t in trials:
        values = objective_values(cfg, t)
        ratio = None
        if values is not None and len(cfg.objectives) == 2 and t.baseline:
            base = float(flatten(t.baseline).get(cfg.objectives[1], math.nan))
            ratio = [values[0], values[1] / base] if base > 0 else None
        rows.append((t, values, ratio))
    measured = [(t, v) for t, v, _ in rows if v is not None]
    mask = pareto_mask(np.array([v for _, v in measured], dtype=float).reshape(-1, len(cfg.objectives)),
                       list(cfg.directions)) if measured else np.zeros(0, dtype=bool)
    front = {t.trial for (t, _), on in zip(measured, mask, strict=True) if on}
    hv: list[float] | None = None
    if len(cfg.objectives) == 2:
        hv, seen = [], []
        for _, _, ratio in rows:
            if ratio is not None:
                seen.append(ratio)
            hv.append(hypervolume_2d(np.array(seen), ["max", "min"], [0.0, 1.0]) if seen else 0.0)
    return {
        "objectives": list(cfg.objectives),
        "directions": list(cfg.directions),
        "trials": [
            {"trial": t.trial, "job_id": t.job_id, "result_id": t.result_id, "status": t.job_status,
             "params": t.params, "values": v, "on_front": t.trial in front,
             "error": (t.error or "").strip().splitlines()[0] if t.error else ""}
            for t, v, _ in rows
        ],
        "front": sorted(front),
        "hypervolume": hv,
        "measured": len(measured),
        "failed": sum(1 for t, v, _ in rows if v is None and t.job_status not in OPEN_STATUSES),
    }
