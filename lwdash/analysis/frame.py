"""The results frame: one flat row per result, its baseline beside it, and the ratios between them.

Tables, Pareto charts, the report and the CSV read this frame. Its metric columns come from
the metric catalogue (:mod:`lwdash.measure.catalogue`), so every registered runtime's latency
is a column (NaN where a result was measured before that runtime existed), and records stored
in either shape (latency records, or the flat fields written before the runtime registry)
give the same columns and numbers.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import pandas as pd

from lwdash.measure.catalogue import catalogue, speedups
from lwdash.measure.metrics import Metrics, best_runtime_key, compile_key
from lwdash.runtimes import LATENCY_BATCHES, list_runtimes

if TYPE_CHECKING:
    from lwdash.store.records import ResultRecord
    from lwdash.workspace import Store

__all__ = ["ID_COLUMNS", "load_results_frame", "measured_columns", "ratio_columns", "results_frame"]

#: The result's own columns, first in every frame.
ID_COLUMNS: tuple[str, ...] = ("id", "job_id", "model_id", "data_ref", "technique", "family", "label", "created_at",
                               "seed", "threads", "notes", "starred", "team_note")
_TAIL = ("threads", "test_samples")  # Metrics fields after the latency columns


def measured_columns() -> list[str]:
    """Every measured figure's column, in the frame's order: scalar fields, the best runtime's and each runtime's
    latency, the best runtime's key per batch (``best_b32_runtime``), each runtime's compile seconds per batch
    (``inductor_b32_compile_s``), threads, samples."""
    scalars = [f.name for f in fields(Metrics) if f.name not in ("latency", "latency_notes")]
    latency = [s.key for s in catalogue() if s.runtime is not None]
    best = [best_runtime_key(b) for b in LATENCY_BATCHES]
    compile_s = [compile_key(rt.key, b) for rt in list_runtimes() for b in LATENCY_BATCHES]
    return [c for c in scalars if c not in _TAIL] + latency + best + compile_s + list(_TAIL)


def ratio_columns() -> dict[str, str]:
    """Ratio column -> the metric it divides by the baseline's (``size_ratio`` -> ``onnx_bytes``)."""
    return {s.ratio: s.key for s in catalogue() if s.ratio}


def _columns() -> list[str]:
    measured = measured_columns()
    return list(dict.fromkeys([*ID_COLUMNS, *measured, *(f"baseline_{m}" for m in measured), *ratio_columns(),
                               *speedups(), "acc_delta"]))


def results_frame(records: Sequence[ResultRecord]) -> pd.DataFrame:
    """One row per result with flat columns, for tables and Pareto charts.

    Args:
        records: the results (``Store.list_results(with_weights=False)``), in the order the
            rows should have.

    Returns:
        Columns: ids and labels (:data:`ID_COLUMNS`); every measured figure of the compressed
        model under its catalogue key and of the baseline as ``baseline_<key>``; ratios to the
        baseline (:func:`ratio_columns`: ``size_ratio`` = onnx_bytes / baseline onnx_bytes, ...);
        speed-ups per runtime and batch (``ort_b32_speedup`` = baseline median / median, ...);
        ``acc_delta`` (top1_acc - baseline top1_acc, a fraction); and the config's knobs as
        ``cfg.<name>``.
    """
    measured = measured_columns()
    columns = _columns()
    if not records:
        return pd.DataFrame(columns=columns)
    # Whole-column arithmetic on flat dicts: ~1,000 results take tens of ms.
    head = pd.DataFrame(
        {
            "id": [r.id for r in records],
            "job_id": [r.job_id for r in records],
            "model_id": [r.model_id for r in records],
            "data_ref": [r.data_ref for r in records],
            "technique": [r.technique for r in records],
            "family": [r.family for r in records],
            "label": [r.label for r in records],
            "created_at": pd.to_datetime([float(r.created_at) for r in records], unit="s"),
            "seed": [int(r.seed) for r in records],
            "threads": [int(r.threads) for r in records],
            "notes": [" | ".join(r.notes) for r in records],
            "starred": [bool(r.starred) for r in records],
            "team_note": [r.note for r in records],
        }
    )
    comp = pd.DataFrame([r.compressed.flat() for r in records]).reindex(columns=measured)
    base = pd.DataFrame([r.baseline.flat() for r in records]).reindex(columns=measured)
    base.columns = [f"baseline_{m}" for m in measured]
    derived: dict[str, Any] = {}
    for col, m in ratio_columns().items():
        b = base[f"baseline_{m}"].astype(float)
        derived[col] = comp[m].astype(float) / b.where(b != 0)
    for col, spec in speedups().items():
        c = comp[spec.key].astype(float)
        derived[col] = base[f"baseline_{spec.key}"].astype(float) / c.where(c != 0)
    derived["acc_delta"] = comp["top1_acc"].astype(float) - base["baseline_top1_acc"].astype(float)
    cfgs = []
    for r in records:
        data = r.config.get("data") or {}
        cfgs.append({
            f"cfg.{k}": v if isinstance(v, (int, float, str, bool)) or v is None else json.dumps(v)
            for k, v in data.items()
        })
    cfg_frame = pd.DataFrame(cfgs, index=head.index)
    # Metrics.threads duplicates the result's own ``threads`` column: keep one.
    comp = comp.drop(columns=[c for c in comp.columns if c in head.columns])
    frame = pd.concat([head, comp, base, pd.DataFrame(derived), cfg_frame], axis=1)
    extra = [c for c in frame.columns if c not in columns]
    return frame[columns + extra]


def load_results_frame(store: Store) -> pd.DataFrame:
    """:func:`results_frame` of every stored result, newest first."""
    return results_frame(store.list_results(with_weights=False))
