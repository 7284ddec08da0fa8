"""Accuracy-vs-cost trade-off charts: an extractor (:func:`tradeoff_info`) and a builder (:func:`plot_tradeoff`).

The extractor turns the store's results frame into plain records (points, front flags, baselines,
axis titles with units) that tests can check without a browser; the builder only draws them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from lwdash.pareto import front_order, pareto_mask

__all__ = [
    "FAMILY_COLOURS",
    "METRICS",
    "BaselinePoint",
    "MetricInfo",
    "TradeoffInfo",
    "TradeoffPoint",
    "axis_title",
    "config_text",
    "family_colour",
    "plot_tradeoff",
    "tradeoff_info",
]


@dataclass(frozen=True)
class MetricInfo:
    """How one :class:`~lwdash.measure.metrics.Metrics` field is shown on an axis.

    Attributes:
        title: axis title without units.
        unit: unit shown after scaling (``%``, ``KiB``, ``ms``...).
        scale: factor from the stored unit to the shown one.
        direction: ``"max"`` when larger is better.
        accuracy_like: ratio mode shows the change in percentage points instead of a ratio.
    """

    title: str
    unit: str
    scale: float
    direction: Literal["max", "min"]
    accuracy_like: bool = False


METRICS: dict[str, MetricInfo] = {
    "top1_acc": MetricInfo("Top-1 accuracy, ONNX Runtime, test split", "%", 100.0, "max", True),
    "torch_top1_acc": MetricInfo("Top-1 accuracy, PyTorch, test split", "%", 100.0, "max", True),
    "agreement": MetricInfo("Agreement with the original's predictions", "%", 100.0, "max", True),
    "loss": MetricInfo("Cross-entropy loss, test split", "nats", 1.0, "min"),
    "onnx_bytes": MetricInfo("ONNX file size", "KiB", 1 / 1024, "min"),
    "pt2_bytes": MetricInfo("PyTorch .pt2 file size", "KiB", 1 / 1024, "min"),
    "compressed_bytes": MetricInfo("ONNX file size after zlib compression", "KiB", 1 / 1024, "min"),
    "sparse_bytes": MetricInfo("Weight size under a sparse (index + value) encoding", "KiB", 1 / 1024, "min"),
    "params_count": MetricInfo("Parameters", "thousands", 1e-3, "min"),
    "nonzero_params_count": MetricInfo("Nonzero parameters", "thousands", 1e-3, "min"),
    "macs": MetricInfo("Multiply-accumulates per sample", "millions", 1e-6, "min"),
    "ort_b1_median_ms": MetricInfo("ONNX Runtime latency, batch 1", "median, ms", 1.0, "min"),
    "ort_b32_median_ms": MetricInfo("ONNX Runtime latency, batch 32", "median, ms", 1.0, "min"),
    "torch_b1_median_ms": MetricInfo("PyTorch eager latency, batch 1", "median, ms", 1.0, "min"),
    "torch_b32_median_ms": MetricInfo("PyTorch eager latency, batch 32", "median, ms", 1.0, "min"),
    "ort_b1_p90_ms": MetricInfo("ONNX Runtime latency, batch 1", "p90, ms", 1.0, "min"),
    "ort_b32_p90_ms": MetricInfo("ONNX Runtime latency, batch 32", "p90, ms", 1.0, "min"),
    "torch_b1_p90_ms": MetricInfo("PyTorch eager latency, batch 1", "p90, ms", 1.0, "min"),
    "torch_b32_p90_ms": MetricInfo("PyTorch eager latency, batch 32", "p90, ms", 1.0, "min"),
}

# Metrics listed in every point's hover text, in this order.
_HOVER_METRICS = {
    "top1_acc": "top-1 (ONNX Runtime)",
    "onnx_bytes": "ONNX size",
    "ort_b32_median_ms": "ONNX Runtime batch-32 median",
    "macs": "MACs",
}

FAMILY_COLOURS: dict[str, str] = {
    "pruning": "#1f77b4",
    "structured": "#2ca02c",
    "quantization": "#d62728",
    "precision": "#ff7f0e",
    "distillation": "#9467bd",
    "low_rank": "#8c564b",
    "pipeline": "#e377c2",
}
_SPARE_COLOURS = ("#17becf", "#bcbd22", "#7f7f7f", "#aec7e8", "#ffbb78")
BASELINE_COLOUR = "#111111"


def family_colour(family: str) -> str:
    """A stable colour for a technique family (unknown families get a stable spare colour)."""
    if family in FAMILY_COLOURS:
        return FAMILY_COLOURS[family]
    return _SPARE_COLOURS[sum(map(ord, family)) % len(_SPARE_COLOURS)]


def axis_title(metric: str, ratio_to_baseline: bool) -> str:
    """The axis title for ``metric`` with its unit, e.g. ``ONNX Runtime latency, batch 32 (median, ms)``."""
    info = _metric(metric)
    if not ratio_to_baseline:
        return f"{info.title} ({info.unit})"
    qualifier = info.unit.rpartition(", ")[0]
    title = f"{info.title} ({qualifier})" if qualifier else info.title
    if info.accuracy_like:
        return f"{title}: change vs baseline (points)"
    return f"{title}: ratio to baseline (x)"


def _metric(metric: str) -> MetricInfo:
    try:
        return METRICS[metric]
    except KeyError:
        raise ValueError(f"unknown metric {metric!r}; choose one of {sorted(METRICS)}") from None


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


def _column(frame: pd.DataFrame, metric: str, baseline: bool) -> pd.Series:
    """A metric column as floats: the compressed model's under its own name, the baseline's as ``baseline_<name>``."""
    name = f"baseline_{metric}" if baseline else metric
    if name in frame.columns:
        return pd.to_numeric(frame[name], errors="coerce").astype(float)
    return pd.Series(np.nan, index=frame.index, dtype=float)


def _text(frame: pd.DataFrame, name: str, default: str = "") -> list[str]:
    if name not in frame.columns:
        return [default] * len(frame)
    return ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in frame[name]]


def _shown(metric: str, value: float, base: float, ratio: bool) -> float:
    info = METRICS[metric]
    if not ratio:
        return value * info.scale
    if info.accuracy_like:
        return (value - base) * 100.0  # percentage points
    return value / base if base else math.nan


def config_text(frame: pd.DataFrame, row: int) -> str:
    """A one-line ``knob=value`` summary of row ``row``'s config (the frame's ``cfg.<knob>`` columns)."""
    parts = []
    for col in frame.columns:
        if isinstance(col, str) and col.startswith("cfg."):
            v = frame[col].iloc[row]
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            parts.append(f"{col[4:]}={v}")
    return ", ".join(parts)


def _fmt(metric: str, value: float) -> str:
    info = METRICS[metric]
    if not math.isfinite(value):
        return "n/a"
    return f"{value * info.scale:.2f} {info.unit.rpartition(', ')[2]}"


def tradeoff_info(
    results_frame: pd.DataFrame,
    x_metric: str,
    y_metric: str = "top1_acc",
    ratio_to_baseline: bool = False,
) -> TradeoffInfo:
    """Extract the points, Pareto flags and baselines of one trade-off chart.

    Args:
        results_frame: one row per result (``SqliteStore.results_frame()``): ``id``, ``model_id``,
            ``technique``, ``family``, ``label``, ``cfg.<knob>`` columns, the compressed metrics under
            their :class:`~lwdash.measure.metrics.Metrics` names and the baseline's as ``baseline_<name>``;
            an optional ``model_name`` column names the baselines.
        x_metric: the cost on the x axis (a key of :data:`METRICS`, e.g. ``onnx_bytes``).
        y_metric: the quality on the y axis (default ONNX Runtime top-1 accuracy).
        ratio_to_baseline: show each result against its own baseline (measured in the same worker):
            costs as ratios (x), accuracies as changes in percentage points.

    Returns:
        The :class:`TradeoffInfo`. Results missing either metric are counted in ``skipped``.

    Raises:
        ValueError: an unknown metric name.
    """
    x_info, y_info = _metric(x_metric), _metric(y_metric)
    directions = (x_info.direction, y_info.direction)
    frame = results_frame.reset_index(drop=True)
    xs, ys = _column(frame, x_metric, False), _column(frame, y_metric, False)
    bxs, bys = _column(frame, x_metric, True), _column(frame, y_metric, True)
    ids, models = _text(frame, "id"), _text(frame, "model_id")
    labels, techniques = _text(frame, "label"), _text(frame, "technique")
    families = _text(frame, "family", "other")
    names = _text(frame, "model_name") if "model_name" in frame.columns else models

    hover_cols = {m: (_column(frame, m, False), _column(frame, m, True)) for m in _HOVER_METRICS}
    rows: list[dict[str, Any]] = []
    skipped = 0
    for i in range(len(frame)):
        x = _shown(x_metric, float(xs[i]), float(bxs[i]), ratio_to_baseline)
        y = _shown(y_metric, float(ys[i]), float(bys[i]), ratio_to_baseline)
        if not (math.isfinite(x) and math.isfinite(y)):
            skipped += 1
            continue
        hover_lines = [
            f"<b>{labels[i] or techniques[i]}</b>",
            f"technique: {techniques[i]} ({families[i]})",
            f"config: {config_text(frame, i) or 'defaults'}",
        ]
        for m, name in _HOVER_METRICS.items():
            c, b = float(hover_cols[m][0][i]), float(hover_cols[m][1][i])
            line = f"{name}: {_fmt(m, c)}"
            if math.isfinite(b) and METRICS[m].accuracy_like:
                line += f" ({(c - b) * 100:+.2f} pts vs baseline)"
            elif math.isfinite(b) and b != 0:
                line += f" ({c / b:.2f}x baseline)"
            hover_lines.append(line)
        rows.append(
            {
                "result_id": ids[i],
                "model_id": models[i],
                "label": labels[i] or techniques[i],
                "technique": techniques[i],
                "family": families[i] or "other",
                "x": x,
                "y": y,
                "hover": "<br>".join(hover_lines),
            }
        )

    base_rows = _baselines(frame, x_metric, y_metric, ratio_to_baseline, models, names, bxs, bys)
    all_xy = np.array([[r["x"], r["y"]] for r in rows] + [[b[2], b[3]] for b in base_rows], dtype=float)
    all_xy = all_xy.reshape(-1, 2)
    mask = pareto_mask(all_xy, directions) if len(all_xy) else np.zeros(0, dtype=bool)
    order = front_order(all_xy, directions) if len(all_xy) else np.zeros(0, dtype=int)
    points = tuple(TradeoffPoint(on_front=bool(mask[i]), **r) for i, r in enumerate(rows))
    baselines = tuple(
        BaselinePoint(model_id=b[0], name=b[1], x=b[2], y=b[3], on_front=bool(mask[len(rows) + j]), runs=b[4])
        for j, b in enumerate(base_rows)
    )
    front = tuple((float(all_xy[k, 0]), float(all_xy[k, 1])) for k in order)
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
    seen: dict[str, list[int]] = {}
    for i, m in enumerate(models):
        if math.isfinite(float(bxs[i])) and math.isfinite(float(bys[i])):
            seen.setdefault(m, []).append(i)
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
        bx = float(np.median(bxs.iloc[idx].to_numpy(dtype=float))) * METRICS[x_metric].scale
        by = float(np.median(bys.iloc[idx].to_numpy(dtype=float))) * METRICS[y_metric].scale
        out.append((model_id, names[idx[0]] or model_id, bx, by, len(idx)))
    return out


def plot_tradeoff(info: TradeoffInfo, *, title: str | None = None) -> go.Figure:
    """Draw a :class:`TradeoffInfo`: front points bold and joined by a step line, dominated ones faded.

    Colour follows the technique family; the baseline is a black star with an annotation. Each
    result marker carries its result id in ``customdata`` so a chart selection can find it.
    """
    fig = go.Figure()
    for fam in sorted({p.family for p in info.points}):
        colour = family_colour(fam)
        front = [p for p in info.points if p.family == fam and p.on_front]
        dominated = [p for p in info.points if p.family == fam and not p.on_front]
        # Two traces per family (front bold, dominated faded) sharing one legend entry.
        for pts, on_front in ((front, True), (dominated, False)):
            if not pts:
                continue
            fig.add_trace(
                go.Scatter(
                    x=[p.x for p in pts],
                    y=[p.y for p in pts],
                    mode="markers",
                    name=fam,
                    legendgroup=fam,
                    showlegend=on_front or not front,
                    customdata=[p.result_id for p in pts],
                    hovertext=[p.hover + ("<br><i>on the Pareto front</i>" if on_front else "") for p in pts],
                    hoverinfo="text",
                    opacity=1.0 if on_front else 0.35,
                    marker={
                        "color": colour,
                        "size": 13 if on_front else 9,
                        "line": {"width": 2 if on_front else 0, "color": "white"},
                    },
                )
            )
    if len(info.front) >= 2:
        fig.add_trace(
            go.Scatter(
                x=[f[0] for f in info.front],
                y=[f[1] for f in info.front],
                mode="lines",
                line={"shape": "hv", "color": "#555555", "width": 1.5, "dash": "dot"},
                name="Pareto front",
                hoverinfo="skip",
            )
        )
    if info.baselines:
        fig.add_trace(
            go.Scatter(
                x=[b.x for b in info.baselines],
                y=[b.y for b in info.baselines],
                mode="markers",
                name="baseline",
                customdata=["" for _ in info.baselines],
                hovertext=[
                    f"<b>baseline: {b.name}</b><br>median of {b.runs} measurement(s)" for b in info.baselines
                ],
                hoverinfo="text",
                marker={"symbol": "star", "size": 18, "color": BASELINE_COLOUR, "line": {"width": 1, "color": "white"}},
            )
        )
        for b in info.baselines:
            fig.add_annotation(x=b.x, y=b.y, text=f"baseline: {b.name}", showarrow=True, arrowhead=2, ax=40, ay=-30)
    fig.update_layout(
        title=title,
        xaxis_title=info.x_title,
        yaxis_title=info.y_title,
        legend_title_text="technique family",
        hovermode="closest",
        clickmode="event+select",
        margin={"l": 60, "r": 20, "t": 50 if title else 20, "b": 50},
        height=460,
    )
    return fig
