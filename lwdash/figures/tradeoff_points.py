"""The 2-D accuracy-vs-cost trade-off as plain records: :func:`tradeoff_info` and the types it returns.

Points with their Pareto flags (one front across models, or one per model), the baselines and the
axis titles with units, checkable without a browser; :mod:`lwdash.figures.tradeoff_plot` draws them.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from lwdash.figures.axes import METRICS, axis_title
from lwdash.figures.axes import metric_info as _metric
from lwdash.figures.results_columns import hover_texts, metric_column, shown_array, text_column
from lwdash.pareto import front_order, pareto_mask

__all__ = ["MAX_FRONT_LABELS", "BaselinePoint", "TradeoffInfo", "TradeoffPoint", "short_label", "tradeoff_info"]


class TradeoffPoint(NamedTuple):
    """One compressed result on the chart, in shown units."""

    result_id: str
    model_id: str
    label: str
    technique: str
    family: str
    x: float
    y: float
    on_front: bool
    hover: str
    short: str = ""  # the label drawn beside a front point: the technique and its knobs, bounded


class BaselinePoint(NamedTuple):
    """The uncompressed model a set of results started from (median of their baseline runs)."""

    model_id: str
    name: str
    x: float
    y: float
    on_front: bool
    runs: int


class TradeoffInfo(NamedTuple):
    """Everything :func:`plot_tradeoff` draws, with no plotting involved.

    Attributes:
        points: every result that has both metrics, in the frame's order.
        baselines: one per model (or one at (1, 0) in ratio mode when every ratio is per result).
        front: ``(x, y)`` pairs of the non-dominated points (results and baselines), ordered
            from the best ``x`` to the worst, ready for a step line.
        x_title / y_title: axis titles with units.
        directions: ``(x_direction, y_direction)``, each ``"max"`` or ``"min"``.
        skipped: results left out because a metric was missing (not measured).
        label_front: whether the front points are few enough (:data:`MAX_FRONT_LABELS`) to be
            labelled on the chart itself, so a screenshot says what each one is.
        per_model: each model's results (and its baseline) form their own front, drawn in the
            model's colour with the technique family as the marker; else one front across models,
            coloured by family (comparing architectures on the same data).
        fronts: with ``per_model``, ``(model name, front)`` per model, each front ordered like ``front``
            (which is then empty).
    """

    points: tuple[TradeoffPoint, ...]
    baselines: tuple[BaselinePoint, ...]
    front: tuple[tuple[float, float], ...]
    x_metric: str
    y_metric: str
    x_title: str
    y_title: str
    directions: tuple[str, str]
    ratio_to_baseline: bool
    skipped: int
    label_front: bool = False
    per_model: bool = False
    fronts: tuple[tuple[str, tuple[tuple[float, float], ...]], ...] = ()
    model_names: tuple[tuple[str, str], ...] = ()  # (model id, name), in first-seen order


#: Front points are labelled on the chart up to this many (more would only collide).
MAX_FRONT_LABELS = 8

_SHORT_LABEL_CHARS = 34


def short_label(label: str) -> str:
    """A point's label for the chart: a search trial's prefix dropped, cut to a bounded length."""
    text = label.split(": ", 1)[1] if label.startswith("search ") and ": " in label else label
    return text if len(text) <= _SHORT_LABEL_CHARS else text[: _SHORT_LABEL_CHARS - 1] + "…"


def tradeoff_info(
    results_frame: pd.DataFrame,
    x_metric: str,
    y_metric: str = "top1_acc",
    ratio_to_baseline: bool = False,
    *,
    per_model: bool = False,
) -> TradeoffInfo:
    """Extract the points, Pareto flags and baselines of one trade-off chart.

    Args:
        results_frame: one row per result (:func:`lwdash.analysis.frame.results_frame`): ``id``,
            ``model_id``, ``technique``, ``family``, ``label``, ``cfg.<knob>`` columns, the compressed metrics under
            their catalogue keys and the baseline's as ``baseline_<key>``; an optional ``model_name``
            column names the baselines.
        x_metric: the cost on the x axis (a key of :data:`METRICS`, e.g. ``onnx_bytes``).
        y_metric: the quality on the y axis (default ONNX Runtime top-1 accuracy).
        ratio_to_baseline: show each result against its own baseline (measured in the same worker):
            costs as ratios (x), accuracies as changes in percentage points.
        per_model: one Pareto front per model (its results and its baseline) instead of one across models.

    Returns:
        The :class:`TradeoffInfo`. Results missing either metric are counted in ``skipped``.

    Raises:
        ValueError: an unknown metric name.
    """
    x_info, y_info = _metric(x_metric), _metric(y_metric)
    directions = (x_info.direction, y_info.direction)
    frame = results_frame.reset_index(drop=True)
    xs, ys = metric_column(frame, x_metric, False), metric_column(frame, y_metric, False)
    bxs, bys = metric_column(frame, x_metric, True), metric_column(frame, y_metric, True)
    ids, models = text_column(frame, "id"), text_column(frame, "model_id")
    labels, techniques = text_column(frame, "label"), text_column(frame, "technique")
    families = text_column(frame, "family", "other")
    names = text_column(frame, "model_name") if "model_name" in frame.columns else models

    x_shown = shown_array(x_metric, xs.to_numpy(), bxs.to_numpy(), ratio_to_baseline)
    y_shown = shown_array(y_metric, ys.to_numpy(), bys.to_numpy(), ratio_to_baseline)
    keep = np.isfinite(x_shown) & np.isfinite(y_shown)
    skipped = int((~keep).sum())
    hovers = hover_texts(frame, np.flatnonzero(keep), labels, techniques, families, names)
    rows: list[dict[str, Any]] = [
        {
            "result_id": ids[i],
            "model_id": models[i],
            "label": labels[i] or techniques[i],
            "technique": techniques[i],
            "family": families[i] or "other",
            "x": float(x_shown[i]),
            "y": float(y_shown[i]),
            "hover": hovers[j],
        }
        for j, i in enumerate(np.flatnonzero(keep))
    ]

    base_rows = _baselines(frame, x_metric, y_metric, ratio_to_baseline, models, names, bxs, bys)
    all_xy = np.array([[r["x"], r["y"]] for r in rows] + [[b[2], b[3]] for b in base_rows], dtype=float)
    all_xy = all_xy.reshape(-1, 2)
    owners = [r["model_id"] for r in rows] + [b[0] for b in base_rows]
    # One group per model, or one for all (a ratio-mode shared baseline has model id "" and joins every group).
    groups = list(dict.fromkeys(m for m in owners if m)) if per_model else [None]
    mask = np.zeros(len(all_xy), dtype=bool)
    fronts: list[tuple[str, tuple[tuple[float, float], ...]]] = []
    front: tuple[tuple[float, float], ...] = ()
    for g in groups:
        idx = np.array([k for k, m in enumerate(owners) if g is None or m in (g, "")], dtype=int)
        if not len(idx):
            continue
        sub = all_xy[idx]
        mask[idx] |= pareto_mask(sub, directions)
        line = tuple((float(sub[k, 0]), float(sub[k, 1])) for k in front_order(sub, directions))
        if g is None:
            front = line
        else:
            fronts.append((g, line))
    points = tuple(TradeoffPoint(on_front=bool(mask[i]), short=short_label(r["label"]), **r) for i, r in enumerate(rows))
    baselines = tuple(
        BaselinePoint(model_id=b[0], name=b[1], x=b[2], y=b[3], on_front=bool(mask[len(rows) + j]), runs=b[4])
        for j, b in enumerate(base_rows)
    )
    model_names = tuple(dict.fromkeys((models[i], names[i] or models[i]) for i in np.flatnonzero(keep)))
    return TradeoffInfo(
        points=points,
        baselines=baselines,
        front=front,
        x_metric=x_metric,
        y_metric=y_metric,
        x_title=axis_title(x_metric, ratio_to_baseline),
        y_title=axis_title(y_metric, ratio_to_baseline),
        directions=directions,
        ratio_to_baseline=ratio_to_baseline,
        skipped=skipped,
        label_front=0 < sum(p.on_front for p in points) <= MAX_FRONT_LABELS,
        per_model=per_model,
        fronts=tuple(fronts),
        model_names=model_names,
    )


def _baselines(
    frame: pd.DataFrame,
    x_metric: str,
    y_metric: str,
    ratio: bool,
    models: list[str],
    names: list[str],
    bxs: pd.Series,
    bys: pd.Series,
) -> list[tuple[str, str, float, float, int]]:
    """One baseline per model: the median of its baseline runs (latency is noisy run to run)."""
    out: list[tuple[str, str, float, float, int]] = []
    bx, by = bxs.to_numpy(dtype=float), bys.to_numpy(dtype=float)
    ok = np.isfinite(bx) & np.isfinite(by)
    seen: dict[str, list[int]] = {}
    for i in np.flatnonzero(ok):
        seen.setdefault(models[i], []).append(int(i))
    if ratio:
        if seen:
            runs = sum(len(v) for v in seen.values())
            x0 = 0.0 if METRICS[x_metric].accuracy_like else 1.0
            y0 = 0.0 if METRICS[y_metric].accuracy_like else 1.0
            if len(seen) == 1:
                model_id, idx = next(iter(seen.items()))
                out.append((model_id, names[idx[0]] or model_id, x0, y0, runs))
            else:
                out.append(("", f"each result's own ({len(seen)} models)", x0, y0, runs))
        return out
    for model_id, idx in seen.items():
        mx = float(np.median(bx[idx])) * METRICS[x_metric].scale
        my = float(np.median(by[idx])) * METRICS[y_metric].scale
        out.append((model_id, names[idx[0]] or model_id, mx, my, len(idx)))
    return out
