"""Weight-distribution overlays: original vs compressed, per layer or for the whole model.

Inputs are the JSON-safe weight summaries of ``lwdash.measure.weight_summary``:
``{"layers": [{"name", "kind", "shape", "numel", "zeros", "min", "max", "mean", "std",
"unique_count", "hist": {"edges", "counts"}, "dtype"}], "total": {...}}``. Histograms count
nonzero values only; zeros are reported apart so that a pruned model's zeros do not flatten
the chart into one giant bar. The compressed summary reuses the baseline's per-layer bin edges.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import plotly.graph_objects as go

__all__ = [
    "HistogramInfo",
    "MultiHistogramInfo",
    "OverlaySeries",
    "histogram_info",
    "layer_names",
    "multi_histogram_info",
    "plot_multi_histogram",
    "plot_weight_histogram",
    "zero_fraction_text",
]

ORIGINAL_COLOUR = "#1f77b4"
COMPRESSED_COLOUR = "#d62728"
_WHOLE_MODEL_BINS = 80


class HistogramInfo(NamedTuple):
    """What one overlay shows; ``compressed_*`` fields are ``None`` when that side has no such layer.

    Attributes:
        layer: the layer name, or ``None`` for the whole model.
        edges: bin edges shared by both sides (``len(counts) + 1`` values).
        original_counts / compressed_counts: counts of nonzero weights per bin.
        original_zeros / compressed_zeros: exact zero weights.
        original_numel / compressed_numel: all weights (zeros included).
        original_unique / compressed_unique: distinct values (a quantized layer has few).
        note: a caveat shown under the chart ("" when none).
        compressed_levels: the distinct nonzero values of a quantized compressed layer (its grid),
            ``None`` when the layer is not quantized (or for the whole model).
    """

    layer: str | None
    title: str
    edges: tuple[float, ...]
    original_counts: tuple[int, ...]
    compressed_counts: tuple[int, ...] | None
    original_zeros: int
    original_numel: int
    compressed_zeros: int | None
    compressed_numel: int | None
    original_unique: int | None
    compressed_unique: int | None
    note: str
    compressed_levels: tuple[float, ...] | None = None

    @property
    def original_zero_fraction(self) -> float:
        return self.original_zeros / self.original_numel if self.original_numel else 0.0

    @property
    def compressed_zero_fraction(self) -> float | None:
        if self.compressed_numel is None or self.compressed_zeros is None:
            return None
        return self.compressed_zeros / self.compressed_numel if self.compressed_numel else 0.0


def layer_names(summary: Mapping[str, Any] | None) -> list[str]:
    """Names of the layers in a weight summary, in model order."""
    if not summary:
        return []
    return [str(layer["name"]) for layer in summary.get("layers", [])]


def _layers(summary: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    return {str(layer["name"]): layer for layer in (summary or {}).get("layers", [])}


def _hist(layer: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    hist = layer.get("hist") or {}
    edges = np.asarray(hist.get("edges", []), dtype=float)
    counts = np.asarray(hist.get("counts", []), dtype=float)
    if edges.size != counts.size + 1:
        return np.zeros(0), np.zeros(0)
    return edges, counts


def _rebin(layers: Sequence[Mapping[str, Any]], edges: np.ndarray) -> np.ndarray:
    """Pool per-layer histograms onto common ``edges``, placing each bin's count at its centre."""
    out = np.zeros(edges.size - 1)
    for layer in layers:
        e, c = _hist(layer)
        if c.size == 0:
            continue
        centres = (e[:-1] + e[1:]) / 2
        idx = np.clip(np.searchsorted(edges, centres, side="right") - 1, 0, out.size - 1)
        np.add.at(out, idx, c)
    return out


def _common_edges(layers: Sequence[Mapping[str, Any]]) -> np.ndarray:
    lows, highs = [], []
    for layer in layers:
        e, c = _hist(layer)
        if c.size:
            lows.append(e[0])
            highs.append(e[-1])
    if not lows:
        return np.array([0.0, 1.0])
    lo, hi = min(lows), max(highs)
    if hi <= lo:
        hi = lo + 1e-12
    return np.linspace(lo, hi, _WHOLE_MODEL_BINS + 1)


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def histogram_info(
    baseline_weights: Mapping[str, Any],
    compressed_weights: Mapping[str, Any] | None,
    layer: str | None = None,
) -> HistogramInfo:
    """Extract one original-vs-compressed histogram overlay.

    Args:
        baseline_weights: the original model's weight summary.
        compressed_weights: the compressed model's summary (``None`` when it was not recorded).
        layer: a layer name from the baseline summary, or ``None`` for every layer pooled.

    Returns:
        The :class:`HistogramInfo`. For one layer the bins are the recorded ones; for the whole
        model each layer's bins are pooled onto a common grid spanning every layer's range.

    Raises:
        ValueError: ``layer`` is not in the baseline summary (the message lists the layers).
    """
    base_layers = _layers(baseline_weights)
    comp_layers = _layers(compressed_weights)
    notes: list[str] = []
    if layer is None:
        base_list = list(base_layers.values())
        comp_list = list(comp_layers.values())
        edges = _common_edges(base_list + comp_list)
        orig = _rebin(base_list, edges)
        comp = _rebin(comp_list, edges) if compressed_weights else None
        o_zeros, o_numel = _total(baseline_weights, base_list, "zeros"), _total(baseline_weights, base_list, "numel")
        c_zeros = _total(compressed_weights, comp_list, "zeros") if compressed_weights else None
        c_numel = _total(compressed_weights, comp_list, "numel") if compressed_weights else None
        o_unique = c_unique = None
        c_levels = None
        title = f"Whole model: {len(base_list)} weight tensors"
        notes.append("Per-layer histograms pooled onto one grid (each bin's count placed at its centre).")
        if any("BatchNorm" in str(r.get("note", "")) for r in (compressed_weights or {}).get("per_layer") or []):
            notes.append("Some convs had their BatchNorm folded into their weights by the compressed graph, which "
                         "rescales them: compare those layers one by one (their notes say which).")
        if compressed_weights and set(comp_layers) != set(base_layers):
            notes.append(
                f"The compressed model's layers differ from the original's "
                f"({len(comp_layers)} vs {len(base_layers)} weight tensors): layers were replaced or removed."
            )
    else:
        if layer not in base_layers:
            raise ValueError(f"unknown layer {layer!r}; the original model has: {', '.join(base_layers) or 'none'}")
        b = base_layers[layer]
        edges, orig = _hist(b)
        o_zeros, o_numel, o_unique = int(b.get("zeros", 0)), int(b.get("numel", 0)), _int(b.get("unique_count"))
        title = f"{layer} ({b.get('kind', 'layer')}, shape {tuple(b.get('shape', ()))})"
        c = comp_layers.get(layer)
        c_levels = None
        if c is None:
            comp, c_zeros, c_numel, c_unique = None, None, None, None
            if compressed_weights:
                notes.append(f"{layer} is not in the compressed model (it was replaced or removed).")
        else:
            ce, cc = _hist(c)
            if ce.size == edges.size and np.allclose(ce, edges):
                comp = cc
            else:
                comp = _rebin([c], edges) if edges.size else cc
                notes.append("The compressed layer's bins differ from the original's; its counts were re-binned.")
            c_zeros, c_numel, c_unique = int(c.get("zeros", 0)), int(c.get("numel", 0)), _int(c.get("unique_count"))
            if c.get("levels"):
                c_levels = tuple(float(v) for v in c["levels"])
            rec: Mapping[str, Any] = next((r for r in (compressed_weights or {}).get("per_layer") or [] if r.get("name") == layer), {})
            if "BatchNorm" in str(rec.get("note", "")):
                notes.append("The compressed graph folded this conv's BatchNorm into its weights (scaled per output "
                             "channel), so the two distributions differ by more than the compression itself; the "
                             "per-layer weight error is measured against the folded original.")
            if tuple(c.get("shape", ())) != tuple(b.get("shape", ())):
                notes.append(f"Shape changed: {tuple(b.get('shape', ()))} -> {tuple(c.get('shape', ()))}.")
    if compressed_weights is None:
        notes.append("No weight summary was recorded for the compressed model.")
    return HistogramInfo(
        layer=layer,
        title=title,
        edges=tuple(float(e) for e in edges),
        original_counts=tuple(int(v) for v in np.rint(orig)),
        compressed_counts=None if comp is None else tuple(int(v) for v in np.rint(comp)),
        original_zeros=o_zeros,
        original_numel=o_numel,
        compressed_zeros=c_zeros,
        compressed_numel=c_numel,
        original_unique=o_unique,
        compressed_unique=c_unique,
        note=" ".join(notes),
        compressed_levels=c_levels,
    )


def _total(summary: Mapping[str, Any] | None, layers: Sequence[Mapping[str, Any]], key: str) -> int:
    total = (summary or {}).get("total") or {}
    if isinstance(total, Mapping) and total.get(key) is not None:
        return int(total[key])
    return int(sum(int(layer.get(key, 0)) for layer in layers))


def _zeros_text(name: str, zeros: int | None, numel: int | None) -> str:
    if zeros is None or numel is None:
        return f"{name}: n/a"
    pct = 100.0 * zeros / numel if numel else 0.0
    return f"{name} zeros: {zeros:,} ({pct:.1f} %)"


def plot_weight_histogram(info: HistogramInfo, log_y: bool = False) -> go.Figure:
    """Overlay the original and compressed histograms of nonzero weights, with the zeros beside them.

    Exact zeros are not binned (a pruned model's zeros would be one giant bar flattening the rest):
    a narrow side panel shows the share of exact zeros of each side as two bars labelled with
    their percentage. A quantized compressed layer's grid is drawn as thin dotted vertical lines.
    """
    from plotly.subplots import make_subplots

    edges = np.asarray(info.edges, dtype=float)
    centres = (edges[:-1] + edges[1:]) / 2 if edges.size > 1 else np.zeros(0)
    widths = np.diff(edges) if edges.size > 1 else np.zeros(0)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.85, 0.15], horizontal_spacing=0.07,
                        subplot_titles=("", "exact zeros"))
    fig.add_trace(
        go.Bar(
            x=centres, y=list(info.original_counts), width=widths, name="original (nonzero)",
            marker={"color": ORIGINAL_COLOUR}, opacity=0.55, legendgroup="original",
        ),
        row=1, col=1,
    )
    if info.compressed_counts is not None:
        fig.add_trace(
            go.Bar(
                x=centres, y=list(info.compressed_counts), width=widths, name="compressed (nonzero)",
                marker={"color": COMPRESSED_COLOUR}, opacity=0.55, legendgroup="compressed",
            ),
            row=1, col=1,
        )
    counts = [*info.original_counts, *(info.compressed_counts or ())]
    top = max(counts) if counts else 1
    if info.compressed_levels:
        lv = info.compressed_levels
        xs: list[float | None] = []
        ys: list[float | None] = []
        bottom = 1 if log_y else 0
        for v in lv:
            xs += [v, v, None]
            ys += [bottom, top, None]
        fig.add_trace(
            go.Scatter(
                x=xs, y=ys, mode="lines", name=f"quantization levels ({len(lv)})",
                line={"color": "#333333", "width": 1, "dash": "dot"}, hoverinfo="skip",
            ),
            row=1, col=1,
        )
    sides = [("original", info.original_zeros, info.original_numel, ORIGINAL_COLOUR)]
    if info.compressed_counts is not None or info.compressed_zeros is not None:
        sides.append(("compressed", info.compressed_zeros or 0, info.compressed_numel or 0, COMPRESSED_COLOUR))
    pct = [100.0 * z / n if n else 0.0 for _, z, n, _ in sides]
    fig.add_trace(
        go.Bar(
            x=[name for name, *_ in sides], y=pct, marker={"color": [c for *_, c in sides]}, opacity=0.8,
            text=[f"{p:.1f} %" for p in pct], textposition="outside", cliponaxis=False, showlegend=False,
            hovertext=[f"{name}: {z:,} of {n:,} weights are exactly zero" for name, z, n, _ in sides],
            hoverinfo="text", name="exact zeros",
        ),
        row=1, col=2,
    )
    lines = [_zeros_text("original", info.original_zeros, info.original_numel)]
    if len(sides) > 1:
        lines.append(_zeros_text("compressed", info.compressed_zeros, info.compressed_numel))
    if info.original_unique is not None and info.compressed_unique is not None:
        lines.append(f"distinct values: {info.original_unique:,} -> {info.compressed_unique:,}")
    fig.add_annotation(
        xref="x domain", yref="y domain", x=0.99, y=0.98, xanchor="right", yanchor="top", showarrow=False,
        align="right", text="<br>".join(lines), bgcolor="rgba(255,255,255,0.85)", bordercolor="#999999",
        borderwidth=1, font={"size": 11},
    )
    fig.update_layout(
        title={"text": info.title, "x": 0.0, "xanchor": "left"},
        barmode="overlay",
        bargap=0,
        legend={"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0},
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
        height=400,
        template="plotly_white",
    )
    fig.update_xaxes(title_text="weight value", row=1, col=1)
    fig.update_yaxes(title_text="count of nonzero weights" + (" (log)" if log_y else ""),
                     type="log" if log_y else "linear", row=1, col=1)
    fig.update_yaxes(title_text="% of weights", range=[0, 115], row=1, col=2)
    return fig


# ------------------------------------------------------------------------------ several results


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
    return tuple(int(v) for v in np.rint(_rebin([layer], target)))


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


def zero_fraction_text(info: HistogramInfo) -> str:
    """One sentence for the page: how many weights are exactly zero before and after."""
    before = f"{100 * info.original_zero_fraction:.1f} %"
    after = info.compressed_zero_fraction
    if after is None or math.isnan(after):
        return f"{before} of the original weights are zero."
    return f"Zeros: {before} of weights before, {100 * after:.1f} % after."
