"""Accuracy-vs-cost trade-off charts: an extractor (:func:`tradeoff_info`) and a builder (:func:`plot_tradeoff`).

The extractor turns the results frame into plain records (points, front flags, baselines,
axis titles with units) that tests can check without a browser; the builder only draws them.
Any metric of the catalogue can be an axis (:data:`~lwdash.figures.axes.METRICS`).
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from lwdash.figures.axes import (
    METRICS,
    LatencyChoices,
    MetricInfo,
    axis_title,
    latency_choices,
    latency_metric,
    short_axis_title,
)
from lwdash.figures.axes import metric_info as _metric
from lwdash.measure.catalogue import LARGE_BATCH, PRIMARY_RUNTIME, latency_key
from lwdash.pareto import front_order, pareto_mask
from lwdash.runtimes import get_runtime

__all__ = [
    "FAMILY_COLOURS",
    "MAX_FRONT_LABELS",
    "METRICS",
    "BaselinePoint",
    "LatencyChoices",
    "MetricInfo",
    "Tradeoff3DInfo",
    "Tradeoff3DPoint",
    "TradeoffInfo",
    "TradeoffPoint",
    "axis_title",
    "config_text",
    "config_texts",
    "family_colour",
    "latency_choices",
    "latency_metric",
    "plot_tradeoff",
    "plot_tradeoff_3d",
    "short_axis_title",
    "short_label",
    "tradeoff3d_info",
    "tradeoff_info",
]


# Metrics listed in every point's hover text, in this order.
_HOVER_METRICS = {
    "top1_acc": "top-1 (ONNX Runtime)",
    "onnx_bytes": "ONNX size",
    latency_key(PRIMARY_RUNTIME, LARGE_BATCH): f"{get_runtime(PRIMARY_RUNTIME).title} batch-{LARGE_BATCH} median",
    "macs": "MACs",
}

FAMILY_COLOURS: dict[str, str] = {
    "pruning": "#1f77b4",
    "structured": "#2ca02c",
    "structured_pruning": "#2ca02c",
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
    return config_texts(frame.iloc[[row]])[0]


def config_texts(frame: pd.DataFrame) -> list[str]:
    """:func:`config_text` of every row at once (one pass per ``cfg.`` column, not per cell)."""
    cols = [c for c in frame.columns if isinstance(c, str) and c.startswith("cfg.")]
    parts: list[list[str]] = [[] for _ in range(len(frame))]
    for col in cols:
        name = col[4:]
        for i, v in enumerate(frame[col].tolist()):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            parts[i].append(f"{name}={_knob_value(v)}")
    return [", ".join(p) for p in parts]


def _knob_value(v: object) -> str:
    """A knob's value as typed: a mixed frame stores integer knobs as floats (NaN where absent), so 15.0 shows as 15."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _shown_array(metric: str, values: np.ndarray, base: np.ndarray, ratio: bool) -> np.ndarray:
    """:func:`_shown` over whole columns."""
    info = METRICS[metric]
    values, base = values.astype(float), base.astype(float)
    if not ratio:
        return values * info.scale
    if info.accuracy_like:
        return (values - base) * 100.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(base != 0, values / base, np.nan)


def _hovers(
    frame: pd.DataFrame,
    rows: np.ndarray,
    labels: list[str],
    techniques: list[str],
    families: list[str],
    names: list[str],
) -> list[str]:
    """Hover text of the given rows: label, technique, model, full config, headline metrics vs baseline."""
    configs = config_texts(frame.iloc[rows]) if len(rows) else []
    cols = {m: (_column(frame, m, False).to_numpy(), _column(frame, m, True).to_numpy()) for m in _HOVER_METRICS}
    out = []
    for j, i in enumerate(rows):
        lines = [
            f"<b>{labels[i] or techniques[i]}</b>",
            f"technique: {techniques[i]} ({families[i]}) · model: {names[i]}",
            f"config: {configs[j] or 'defaults'}",
        ]
        for m, name in _HOVER_METRICS.items():
            c, b = float(cols[m][0][i]), float(cols[m][1][i])
            line = f"{name}: {_fmt(m, c)}"
            if math.isfinite(b) and METRICS[m].accuracy_like:
                line += f" ({(c - b) * 100:+.2f} pts vs baseline)"
            elif math.isfinite(b) and b != 0:
                line += f" ({c / b:.2f}x baseline)"
            lines.append(line)
        out.append("<br>".join(lines))
    return out


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
    xs, ys = _column(frame, x_metric, False), _column(frame, y_metric, False)
    bxs, bys = _column(frame, x_metric, True), _column(frame, y_metric, True)
    ids, models = _text(frame, "id"), _text(frame, "model_id")
    labels, techniques = _text(frame, "label"), _text(frame, "technique")
    families = _text(frame, "family", "other")
    names = _text(frame, "model_name") if "model_name" in frame.columns else models

    x_shown = _shown_array(x_metric, xs.to_numpy(), bxs.to_numpy(), ratio_to_baseline)
    y_shown = _shown_array(y_metric, ys.to_numpy(), bys.to_numpy(), ratio_to_baseline)
    keep = np.isfinite(x_shown) & np.isfinite(y_shown)
    skipped = int((~keep).sum())
    hovers = _hovers(frame, np.flatnonzero(keep), labels, techniques, families, names)
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


#: Colours of models when each has its own front (first-seen order), and the marker of each technique family.
MODEL_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
                 "#bcbd22", "#7f7f7f")
FAMILY_SYMBOLS: dict[str, str] = {
    "pruning": "circle", "structured_pruning": "square", "structured": "square", "quantization": "diamond",
    "precision": "triangle-up", "distillation": "cross", "low_rank": "x", "pipeline": "pentagon",
}


def family_symbol(family: str) -> str:
    """The marker of a technique family when colour stands for the model (unknown families: hexagon)."""
    return FAMILY_SYMBOLS.get(family, "hexagon")


def _model_traces(info: TradeoffInfo) -> list[go.Scatter]:
    """Per model (its colour, a legend group titled with its name): per family, its front and dominated points."""
    traces: list[go.Scatter] = []
    for k, (model_id, name) in enumerate(info.model_names):
        colour = MODEL_COLOURS[k % len(MODEL_COLOURS)]
        mine = [p for p in info.points if p.model_id == model_id]
        for fam in sorted({p.family for p in mine}):
            for on_front in (True, False):
                pts = [p for p in mine if p.family == fam and p.on_front == on_front]
                if not pts:
                    continue
                symbol = family_symbol(fam) + ("" if on_front else "-open")
                traces.append(go.Scatter(
                    x=[p.x for p in pts], y=[p.y for p in pts], mode="markers", name=fam,
                    legendgroup=model_id, legendgrouptitle={"text": name}, showlegend=on_front or not any(
                        p.family == fam and p.on_front for p in mine),
                    customdata=[p.result_id for p in pts],
                    hovertext=[p.hover + ("<br><i>on this model's Pareto front</i>" if on_front else "<br><i>dominated</i>")
                               for p in pts],
                    hoverinfo="text", opacity=1.0 if on_front else 0.6,
                    marker={"color": colour, "size": 13 if on_front else 10, "symbol": symbol,
                            "line": {"width": 1.5 if on_front else 2, "color": "white" if on_front else colour}},
                ))
        line = dict(info.fronts).get(model_id, ())
        if len(line) >= 2:
            traces.append(go.Scatter(
                x=[f[0] for f in line], y=[f[1] for f in line], mode="lines", legendgroup=model_id,
                name="Pareto front", showlegend=False, hoverinfo="skip",
                line={"shape": "hv", "color": colour, "width": 1.5, "dash": "dot"},
            ))
    return traces


def _model_colour(info: TradeoffInfo, model_id: str) -> str:
    ids = [m for m, _ in info.model_names]
    return MODEL_COLOURS[ids.index(model_id) % len(MODEL_COLOURS)] if model_id in ids else BASELINE_COLOUR


def _family_traces(points: Any, make: Any) -> list[Any]:
    """Two traces per family (front bold, dominated faded) sharing one legend entry."""
    traces = []
    for fam in sorted({p.family for p in points}):
        front = [p for p in points if p.family == fam and p.on_front]
        dominated = [p for p in points if p.family == fam and not p.on_front]
        for pts, on_front in ((front, True), (dominated, False)):
            if pts:
                traces.append(make(fam, pts, on_front, on_front or not front))
    return traces


def plot_tradeoff(info: TradeoffInfo, *, title: str | None = None, height: int = 460) -> go.Figure:
    """Draw a :class:`TradeoffInfo`: front points bold and joined by a step line, dominated ones faded.

    With ``info.per_model``, colour follows the model (each model's front in its colour) and the
    marker the technique family; otherwise colour follows the family. Dominated points are open
    markers at reduced opacity, so they stay readable but recede. The baseline is a black star with an annotation. Each result
    marker carries its result id in ``customdata`` so a chart selection can find it.
    """
    fig = go.Figure()

    def make(fam: str, pts: list[TradeoffPoint], on_front: bool, legend: bool) -> go.Scatter:
        colour = family_colour(fam)
        return go.Scatter(
            x=[p.x for p in pts],
            y=[p.y for p in pts],
            mode="markers",
            name=fam,
            legendgroup=fam,
            showlegend=legend,
            customdata=[p.result_id for p in pts],
            hovertext=[p.hover + ("<br><i>on the Pareto front</i>" if on_front else "<br><i>dominated</i>") for p in pts],
            hoverinfo="text",
            opacity=1.0 if on_front else 0.6,
            marker={
                "color": colour,
                "size": 13 if on_front else 10,
                "symbol": "circle" if on_front else "circle-open",
                "line": {"width": 1.5 if on_front else 2, "color": "white" if on_front else colour},
            },
        )

    for trace in (_model_traces(info) if info.per_model else _family_traces(info.points, make)):
        fig.add_trace(trace)
    if len(info.front) >= 2:
        fig.add_trace(
            go.Scatter(
                x=[f[0] for f in info.front],
                y=[f[1] for f in info.front],
                mode="lines",
                line={"shape": "hv", "color": "#444444", "width": 1.5, "dash": "dot"},
                name="Pareto front",
                hoverinfo="skip",
            )
        )
    if info.label_front:
        # Alternate above and below along the front (sorted by x), so neighbours do not overlap.
        for k, p in enumerate(sorted((p for p in info.points if p.on_front), key=lambda p: (p.x, p.y))):
            fig.add_annotation(x=p.x, y=p.y, text=p.short, showarrow=False, yshift=16 if k % 2 == 0 else -16,
                               font={"size": 10, "color": "#333333"}, bgcolor="rgba(255,255,255,0.7)")
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
                marker={"symbol": "star", "size": 18, "line": {"width": 1.5, "color": BASELINE_COLOUR},
                        "color": [_model_colour(info, b.model_id) for b in info.baselines] if info.per_model
                        else BASELINE_COLOUR},
            )
        )
        xs = [p.x for p in info.points] + [b.x for b in info.baselines]
        middle = (min(xs) + max(xs)) / 2
        for k, b in enumerate(info.baselines[:6]):  # more labels than that would only collide
            fig.add_annotation(  # the label leans towards the middle of the chart, so it stays inside it
                x=b.x, y=b.y, text=f"baseline: {b.name}", showarrow=True, arrowhead=2, arrowcolor="#666666",
                ax=70 if b.x < middle else -70, ay=44 + 18 * k, font={"size": 11}, bgcolor="rgba(255,255,255,0.85)",
            )
    fig.update_layout(
        title={"text": title, "x": 0.0, "xanchor": "left"} if title else None,
        xaxis_title=info.x_title,
        yaxis_title=info.y_title,
        legend={"title": {"text": "model: technique family" if info.per_model else "technique family"},
                "orientation": "h", "yanchor": "top", "y": -0.2, "x": 0},
        hovermode="closest",
        clickmode="event+select",
        dragmode="pan",
        margin={"l": 70, "r": 20, "t": 50 if title else 20, "b": 40},
        height=height,
        template="plotly_white",
    )
    # Costs (and their ratios) are never negative: labels near the axis must not stretch it below 0.
    fig.update_xaxes(rangemode="nonnegative")
    if not info.ratio_to_baseline:
        fig.update_yaxes(rangemode="nonnegative")
    return fig


# --------------------------------------------------------------------------------------------- 3-D


class Tradeoff3DPoint(NamedTuple):
    """One result in the accuracy / size / latency space, in shown units."""

    result_id: str
    label: str
    family: str
    x: float  # size
    y: float  # latency
    z: float  # accuracy
    on_front: bool
    hover: str


class Tradeoff3DInfo(NamedTuple):
    """What :func:`plot_tradeoff_3d` draws: points with 3-objective front flags, baselines, titles."""

    points: tuple[Tradeoff3DPoint, ...]
    baselines: tuple[tuple[str, float, float, float], ...]  # (name, x, y, z)
    titles: tuple[str, str, str]
    metrics: tuple[str, str, str]
    ratio_to_baseline: bool
    skipped: int


def tradeoff3d_info(
    results_frame: pd.DataFrame,
    size_metric: str = "onnx_bytes",
    latency_metric: str = latency_key(PRIMARY_RUNTIME, LARGE_BATCH),
    accuracy_metric: str = "top1_acc",
    ratio_to_baseline: bool = False,
) -> Tradeoff3DInfo:
    """Extract the 3-D accuracy / size / latency view; the front is non-dominated in all three.

    Args:
        results_frame: as for :func:`tradeoff_info`.
        size_metric / latency_metric / accuracy_metric: keys of :data:`METRICS` for x, y, z.
        ratio_to_baseline: costs as ratios, accuracy as a change in points, per result's own baseline.

    Returns:
        The :class:`Tradeoff3DInfo`; results missing any of the three are counted in ``skipped``.
    """
    metrics = (size_metric, latency_metric, accuracy_metric)
    infos = [_metric(m) for m in metrics]
    frame = results_frame.reset_index(drop=True)
    cols = [
        _shown_array(m, _column(frame, m, False).to_numpy(), _column(frame, m, True).to_numpy(), ratio_to_baseline)
        for m in metrics
    ]
    xyz = np.stack(cols, axis=1) if len(frame) else np.zeros((0, 3))
    keep = np.isfinite(xyz).all(axis=1)
    rows = np.flatnonzero(keep)
    ids, labels, techniques = _text(frame, "id"), _text(frame, "label"), _text(frame, "technique")
    families = _text(frame, "family", "other")
    names = _text(frame, "model_name") if "model_name" in frame.columns else _text(frame, "model_id")
    hovers = _hovers(frame, rows, labels, techniques, families, names)
    base = _baselines3d(frame, metrics, ratio_to_baseline, names)
    all_pts = np.vstack([xyz[rows], np.array([b[1:] for b in base], dtype=float).reshape(-1, 3)])
    mask = pareto_mask(all_pts, [i.direction for i in infos]) if len(all_pts) else np.zeros(0, dtype=bool)
    points = tuple(
        Tradeoff3DPoint(
            result_id=ids[i], label=labels[i] or techniques[i], family=families[i] or "other",
            x=float(xyz[i, 0]), y=float(xyz[i, 1]), z=float(xyz[i, 2]), on_front=bool(mask[j]), hover=hovers[j],
        )
        for j, i in enumerate(rows)
    )
    return Tradeoff3DInfo(
        points=points,
        baselines=tuple(base),
        titles=tuple(short_axis_title(m, ratio_to_baseline) for m in metrics),  # type: ignore[arg-type]
        metrics=metrics,
        ratio_to_baseline=ratio_to_baseline,
        skipped=int((~keep).sum()),
    )


def _baselines3d(
    frame: pd.DataFrame, metrics: tuple[str, str, str], ratio: bool, names: list[str]
) -> list[tuple[str, float, float, float]]:
    if frame.empty:
        return []
    if ratio:
        x0, y0, z0 = (0.0 if METRICS[m].accuracy_like else 1.0 for m in metrics)
        return [("each result's own", x0, y0, z0)]
    base = pd.DataFrame({m: _column(frame, m, True) * METRICS[m].scale for m in metrics})
    base["model"] = _text(frame, "model_id")
    base["name"] = names
    base = base.dropna()
    out = []
    for model_id, grp in base.groupby("model", sort=False):
        med = grp[list(metrics)].median()
        out.append((str(grp["name"].iloc[0] or model_id), float(med.iloc[0]), float(med.iloc[1]), float(med.iloc[2])))
    return out


def plot_tradeoff_3d(info: Tradeoff3DInfo, *, title: str | None = None, height: int = 560) -> go.Figure:
    """Draw a :class:`Tradeoff3DInfo` as a rotatable 3-D scatter (front bold, dominated faded)."""
    fig = go.Figure()

    def make(fam: str, pts: list[Tradeoff3DPoint], on_front: bool, legend: bool) -> go.Scatter3d:
        return go.Scatter3d(
            x=[p.x for p in pts], y=[p.y for p in pts], z=[p.z for p in pts], mode="markers",
            name=fam, legendgroup=fam, showlegend=legend, customdata=[p.result_id for p in pts],
            hovertext=[p.hover + ("<br><i>on the 3-objective front</i>" if on_front else "") for p in pts],
            hoverinfo="text", opacity=1.0 if on_front else 0.55,
            marker={"color": family_colour(fam), "size": 8 if on_front else 6,
                    "symbol": "circle" if on_front else "circle-open",
                    "line": {"width": 1, "color": "#333333"} if on_front else {"width": 2, "color": family_colour(fam)}},
        )

    for trace in _family_traces(info.points, make):
        fig.add_trace(trace)
    if info.baselines:
        fig.add_trace(
            go.Scatter3d(
                x=[b[1] for b in info.baselines], y=[b[2] for b in info.baselines], z=[b[3] for b in info.baselines],
                mode="markers+text", name="baseline", text=[f"baseline: {b[0]}" for b in info.baselines],
                textposition="top center", hoverinfo="text",
                marker={"symbol": "diamond", "size": 8, "color": BASELINE_COLOUR},
            )
        )
    fig.update_layout(
        title={"text": title, "x": 0.0, "xanchor": "left"} if title else None,
        scene={"xaxis_title": info.titles[0], "yaxis_title": info.titles[1], "zaxis_title": info.titles[2],
               "aspectmode": "cube"},
        legend={"title": {"text": "technique family"}, "orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
        margin={"l": 0, "r": 0, "t": 70 if title else 40, "b": 0},
        height=height,
        template="plotly_white",
    )
    return fig
