"""Side-by-side comparison of 2-4 chosen results: one metrics table with a column per result."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import pandas as pd

__all__ = ["COMPARE_ROWS", "ComparisonInfo", "comparison_info"]

#: Metrics field -> (row label, kind) where kind picks the format: acc | kib | count | ms | float.
COMPARE_ROWS: dict[str, tuple[str, str]] = {
    "top1_acc": ("Top-1 accuracy, ONNX Runtime (%)", "acc"),
    "torch_top1_acc": ("Top-1 accuracy, PyTorch (%)", "acc"),
    "agreement": ("Agreement with the original (%)", "acc"),
    "loss": ("Loss (cross-entropy)", "float"),
    "onnx_bytes": ("ONNX file (KiB)", "kib"),
    "pt2_bytes": ("PyTorch .pt2 file (KiB)", "kib"),
    "compressed_bytes": ("ONNX after zlib (KiB)", "kib"),
    "sparse_bytes": ("Sparse encoding (KiB)", "kib"),
    "params_count": ("Parameters", "count"),
    "nonzero_params_count": ("Nonzero parameters", "count"),
    "macs": ("MACs per sample", "count"),
    "ort_b1_median_ms": ("ONNX Runtime batch 1, median (ms)", "ms"),
    "ort_b32_median_ms": ("ONNX Runtime batch 32, median (ms)", "ms"),
    "torch_b1_median_ms": ("PyTorch batch 1, median (ms)", "ms"),
    "torch_b32_median_ms": ("PyTorch batch 32, median (ms)", "ms"),
}


class ComparisonInfo(NamedTuple):
    """Values (``values``: rows x columns, in shown units) and display strings (``table``).

    Attributes:
        columns: ``"baseline: <model>"`` columns (one per distinct model) then one per result.
        values: numeric frame, index = metric labels.
        table: the same as strings, each cell with its ratio to that result's own baseline.
        best: metric label -> the result column that is best on it (ties: the first).
        note: a caveat ("" when none), e.g. results of different models.
    """

    columns: tuple[str, ...]
    values: pd.DataFrame
    table: pd.DataFrame
    best: dict[str, str]
    note: str


def _shown(kind: str, v: float) -> float:
    return v * 100.0 if kind == "acc" else v / 1024.0 if kind == "kib" else v


def _fmt(kind: str, v: float) -> str:
    if not math.isfinite(v):
        return "-"
    return {"acc": f"{v:.2f}", "kib": f"{v:,.1f}", "count": f"{v:,.0f}", "ms": f"{v:.4g}"}.get(kind, f"{v:.4f}")


def comparison_info(results: Sequence[Any]) -> ComparisonInfo:
    """Build the side-by-side table of 2-4 results.

    Args:
        results: :class:`~lwdash.store.records.ResultRecord` s (anything with ``label``, ``id``,
            ``model_id``, ``baseline`` and ``compressed`` :class:`Metrics`).

    Returns:
        The :class:`ComparisonInfo`; each result cell reads ``value (ratio)`` against its own
        baseline, accuracies ``value (+x.xx pts)``.

    Raises:
        ValueError: fewer than 2 or more than 4 results.
    """
    if not 2 <= len(results) <= 4:
        raise ValueError(f"compare 2 to 4 results side by side, got {len(results)}")
    baselines: dict[str, Any] = {}
    for r in results:
        baselines.setdefault(r.model_id, r.baseline)
    names = []
    for r in results:
        name = f"{r.label} · {r.id[:6]}"
        names.append(name)
    base_cols = [f"baseline: {m}" for m in baselines]
    values: dict[str, list[float]] = {c: [] for c in [*base_cols, *names]}
    table: dict[str, list[str]] = {c: [] for c in values}
    best: dict[str, str] = {}
    for field, (label, kind) in COMPARE_ROWS.items():
        for col, base in zip(base_cols, baselines.values(), strict=True):
            v = _shown(kind, float(getattr(base, field)))
            values[col].append(v)
            table[col].append(_fmt(kind, v))
        shown = []
        for col, r in zip(names, results, strict=True):
            v = _shown(kind, float(getattr(r.compressed, field)))
            b = _shown(kind, float(getattr(r.baseline, field)))
            values[col].append(v)
            shown.append(v)
            if kind == "acc":
                rel = f" ({v - b:+.2f} pts)"
            else:
                rel = f" ({v / b:.2f}x)" if b else ""
            table[col].append(_fmt(kind, v) + rel)
        higher_better = kind == "acc"
        finite = [(v, c) for v, c in zip(shown, names, strict=True) if math.isfinite(v)]
        if finite and field != "loss":
            best[label] = (max if higher_better else min)(finite, key=lambda t: t[0])[1]
        elif finite:
            best[label] = min(finite, key=lambda t: t[0])[1]
    index = [label for label, _ in COMPARE_ROWS.values()]
    note = ""
    if len(baselines) > 1:
        note = (f"These results come from {len(baselines)} different models; each ratio is against the result's own "
                "baseline, and the histograms overlay only results of the first model.")
    return ComparisonInfo(
        columns=tuple(values),
        values=pd.DataFrame(values, index=index),
        table=pd.DataFrame(table, index=index),
        best=best,
        note=note,
    )
