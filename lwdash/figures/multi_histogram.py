"""The weight histograms of the original and several compressed results of one model, overlaid as step lines.

An extractor (:func:`multi_histogram_info`) on top of :func:`~lwdash.figures.weight_histogram.histogram_info`
and a builder (:func:`plot_multi_histogram`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import plotly.graph_objects as go

from lwdash.figures.weight_histogram import histogram_info, rebin

__all__ = ["MultiHistogramInfo", "OverlaySeries", "multi_histogram_info", "plot_multi_histogram"]


class OverlaySeries(NamedTuple):
    """One side of a multi-result overlay: counts of nonzero weights on shared edges, and zeros."""

    label: str
    counts: tuple[int, ...] | None  # None: this result has no such layer
    zeros: int | None
    numel: int | None


class MultiHistogramInfo(NamedTuple):
    """The original and 1+ compressed results' histograms of one layer (or the whole model)."""

    layer: str | None
    title: str
    edges: tuple[float, ...]
    series: tuple[OverlaySeries, ...]  # the original first
    note: str


def multi_histogram_info(
    baseline_weights: Mapping[str, Any],
    compressed: Sequence[tuple[str, Mapping[str, Any] | None]],
    layer: str | None = None,
) -> MultiHistogramInfo:
    """Extract an overlay of the original and several compressed results of the same model.

    Args:
        baseline_weights: the original's weight summary (the shared bin edges come from it).
        compressed: ``(label, compressed weight summary)`` per result.
        layer: a layer name of the original, or ``None`` for the whole model.

    Returns:
        The :class:`MultiHistogramInfo` (series[0] is the original).

    Raises:
        ValueError: ``layer`` is not in the original's summary.
    """
    infos = [histogram_info(baseline_weights, weights, layer) for _, weights in compressed]
    first = infos[0] if infos else histogram_info(baseline_weights, None, layer)
    series = [OverlaySeries("original", first.original_counts, first.original_zeros, first.original_numel)]
    notes = []
    for (label, _), info in zip(compressed, infos, strict=True):
        if info.edges != first.edges:  # whole-model grids differ with each result's range: re-pool
            counts = _rebin_counts(info.edges, info.compressed_counts, np.asarray(first.edges))
        else:
            counts = info.compressed_counts
        series.append(OverlaySeries(label, counts, info.compressed_zeros, info.compressed_numel))
        if counts is None:
            notes.append(f"{label}: no such layer in the compressed model.")
    return MultiHistogramInfo(layer=layer, title=first.title, edges=first.edges, series=tuple(series),
                              note=" ".join(notes))


def _rebin_counts(edges: Sequence[float], counts: Sequence[int] | None, target: np.ndarray) -> tuple[int, ...] | None:
    if counts is None:
        return None
    e = np.asarray(edges, dtype=float)
    layer = {"hist": {"edges": e.tolist(), "counts": list(counts)}}
    return tuple(int(v) for v in np.rint(rebin([layer], target)))


_SERIES_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


def plot_multi_histogram(info: MultiHistogramInfo, log_y: bool = False) -> go.Figure:
    """Draw several histograms as step lines (bars of five series would hide each other)."""
    edges = np.asarray(info.edges, dtype=float)
    fig = go.Figure()
    for k, s in enumerate(info.series):
        if s.counts is None:
            continue
        # A step outline: each bin's count held from its left edge to its right edge.
        xs = np.repeat(edges, 2)[1:-1]
        ys = np.repeat(np.asarray(s.counts, dtype=float), 2)
        if log_y:
            ys = np.where(ys > 0, ys, np.nan)
        pct = 100.0 * (s.zeros or 0) / s.numel if s.numel else 0.0
        fig.add_trace(
            go.Scatter(
                x=xs, y=ys, mode="lines", name=f"{s.label} · zeros {pct:.1f} %",
                line={"color": _SERIES_COLOURS[k % len(_SERIES_COLOURS)], "width": 2.5 if k == 0 else 1.8,
                      "dash": "solid" if k == 0 else None},
            )
        )
    fig.update_layout(
        title={"text": info.title, "x": 0.0, "xanchor": "left"},
        xaxis_title="weight value",
        yaxis_title="count of nonzero weights" + (" (log)" if log_y else ""),
        yaxis_type="log" if log_y else "linear",
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0},
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
        height=400,
        template="plotly_white",
    )
    return fig
