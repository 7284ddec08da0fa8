"""A model's own measurements (its baseline), before any compression.

The Models page shows what a model costs as it stands: top-1 accuracy in ONNX Runtime and
PyTorch, artifact bytes, MACs and latency, measured the same way (the same code) as every
compression result's baseline. A measurement runs as a background job
(``JobSpec(kind="baseline")``) whose payload the store keeps as an analysis; a compression
result stores its own baseline beside it, so :func:`latest_baseline` finds either, newest first.

``python -m lwdash measure --model M --data D`` takes the same measurement inline.
"""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lwdash.jobs.spec import JobSpec
from lwdash.measure.metrics import Metrics

if TYPE_CHECKING:
    from lwdash.data import Dataset
    from lwdash.models.base import LoadedModel
    from lwdash.workspace import Store

__all__ = ["BASELINE_KIND", "BASELINE_TYPE", "MeasuredBaseline", "baseline_spec", "latest_baseline", "measure_baseline"]

#: ``JobSpec.kind`` (and the analysis kind) of a baseline measurement.
BASELINE_KIND = "baseline"
#: The ``technique["type"]`` of a baseline job's spec (it applies no technique).
BASELINE_TYPE = "baseline_measurement"

ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class MeasuredBaseline:
    """The newest measurement of one model on one data set.

    Attributes:
        metrics: what was measured (``agreement`` is 1: the model against itself).
        source: ``"baseline"`` (a measurement job) or ``"result"`` (the baseline of a compression result).
        source_id: the analysis or result id.
        created_at: when it was stored (Unix seconds).
        environment: CPU, threads and library versions it was measured with (empty if unknown).
    """

    metrics: Metrics
    source: str
    source_id: str
    created_at: float
    environment: dict[str, Any]


def baseline_spec(model_id: str, data_ref: str, *, threads: int = 1) -> JobSpec:
    """The job that measures ``model_id`` on ``data_ref`` as it stands."""
    return JobSpec(model_id=model_id, data_ref=data_ref, technique={"type": BASELINE_TYPE, "version": 1, "data": {}},
                   threads=threads, label="baseline measurement", kind=BASELINE_KIND)


def measure_baseline(
    model: LoadedModel, data: Dataset, work_dir: Path, progress: ProgressFn, *, threads: int = 1
) -> dict[str, Any]:
    """Measure ``model`` on ``data`` exactly as a compression job measures its baseline.

    Args:
        model: the model (not mutated).
        data: its evaluation data (the test split is measured).
        work_dir: a directory for the exports being measured (left empty afterwards).
        progress: called with (fraction 0..1, message).
        threads: intra-op threads for every latency.

    Returns:
        A JSON-safe dict: ``metrics`` (:class:`Metrics` fields), ``environment``, ``data`` (name,
        test samples) and ``wall_s``.

    Raises:
        DataError: the data does not fit the model (both shapes named).
    """
    from lwdash.data import check_model_fits
    from lwdash.jobs.runner import measure_reference
    from lwdash.measure import environment

    t0 = time.perf_counter()
    progress(0.0, "checking that the data fits the model")
    check_model_fits(model, data)
    work_dir = Path(work_dir) / "_baseline"
    try:
        metrics = measure_reference(model, data, work_dir, threads, progress)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    progress(1.0, "baseline measured")
    return {
        "metrics": metrics.to_dict(),
        "environment": environment(threads),
        "data": {"name": data.name, "test_samples": len(data.test)},
        "wall_s": round(time.perf_counter() - t0, 3),
    }


def latest_baseline(store: Store, model_id: str, data_ref: str) -> MeasuredBaseline | None:
    """The newest measurement of ``model_id`` on ``data_ref``: a baseline job's, or a result's baseline."""
    found: list[MeasuredBaseline] = []
    for a in store.list_analyses(model_id=model_id, kind=BASELINE_KIND):
        if a.data_ref == data_ref and "metrics" in a.payload:
            found.append(MeasuredBaseline(Metrics.from_dict(a.payload["metrics"]), BASELINE_KIND, a.id, a.created_at,
                                          dict(a.payload.get("environment") or {})))
            break
    result = store.latest_result(model_id, data_ref)
    if result is not None:
        found.append(MeasuredBaseline(result.baseline, "result", result.id, result.created_at, dict(result.environment)))
    return max(found, key=lambda b: b.created_at) if found else None
