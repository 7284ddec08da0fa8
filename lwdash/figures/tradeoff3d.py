"""The 3-D accuracy / size / latency trade-off: an extractor (:func:`tradeoff3d_info`) and a builder
(:func:`plot_tradeoff_3d`); the front is non-dominated in all three objectives.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from lwdash.figures.axes import METRICS, short_axis_title
from lwdash.figures.axes import metric_info as _metric
from lwdash.figures.palette import BASELINE_COLOUR, family_colour, family_traces
from lwdash.figures.results_columns import hover_texts, metric_column, shown_array, text_column
from lwdash.measure.catalogue import LARGE_BATCH, PRIMARY_RUNTIME, latency_key
from lwdash.pareto import pareto_mask

__all__ = ["Tradeoff3DInfo", "Tradeoff3DPoint", "plot_tradeoff_3d", "tradeoff3d_info"]


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
        shown_array(m, metric_column(frame, m, False).to_numpy(), metric_column(frame, m, True).to_numpy(), ratio_to_baseline)
        for m in metrics
    ]
    xyz = np.stack(cols, axis=1) if len(frame) else np.zeros((0, 3))
    keep = np.isfinite(xyz).all(axis=1)
    rows = np.flatnonzero(keep)
    ids, labels, techniques = text_column(frame, "id"), text_column(frame, "label"), text_column(frame, "technique")
    families = text_column(frame, "family", "other")
    names = text_column(frame, "model_name") if "model_name" in frame.columns else text_column(frame, "model_id")
    hovers = hover_texts(frame, rows, labels, techniques, families, names)
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
    base = pd.DataFrame({m: metric_column(frame, m, True) * METRICS[m].scale for m in metrics})
    base["model"] = text_column(frame, "model_id")
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

    for trace in family_traces(info.points, make):
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
