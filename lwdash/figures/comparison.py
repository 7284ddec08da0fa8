"""Side-by-side comparison of 2-4 chosen results: one metrics table with a column per result.

Its rows are the metric catalogue's ``compare`` metrics (:mod:`lwdash.measure.catalogue`): every
scalar figure and each registered runtime's median latency at every batch.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import pandas as pd

from lwdash.measure.catalogue import live_view, metrics_for, table_text, table_value

__all__ = ["COMPARE_ROWS", "ComparisonInfo", "comparison_info"]

#: Metric key -> (row label, kind): the catalogue's ``compare`` metrics (a live view), kind as in
#: :class:`~lwdash.measure.catalogue.MetricSpec` (fraction | bytes | count | ms | float).
COMPARE_ROWS: Mapping[str, tuple[str, str]] = live_view(lambda: {s.key: (s.row, s.kind) for s in metrics_for("compare")})


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
    specs = metrics_for("compare")
    for spec in specs:
        for col, base in zip(base_cols, baselines.values(), strict=True):
            v = table_value(spec, base.value(spec.key))
            values[col].append(v)
            table[col].append(table_text(spec, v))
        shown = []
        for col, r in zip(names, results, strict=True):
            v = table_value(spec, r.compressed.value(spec.key))
            b = table_value(spec, r.baseline.value(spec.key))
            values[col].append(v)
            shown.append(v)
            if not (math.isfinite(v) and math.isfinite(b)):
                rel = ""  # e.g. a runtime registered after this result was measured
            elif spec.accuracy_like:
                rel = f" ({v - b:+.2f} pts)"
            else:
                rel = f" ({v / b:.2f}x)" if b else ""
            table[col].append(table_text(spec, v) + rel)
        finite = [(v, c) for v, c in zip(shown, names, strict=True) if math.isfinite(v)]
        if finite:
            best[spec.row] = (max if spec.direction == "max" else min)(finite, key=lambda t: t[0])[1]
    index = [spec.row for spec in specs]
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
