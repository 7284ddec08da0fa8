"""Drawing one original-vs-compressed weight histogram (:func:`plot_weight_histogram`), zeros in a side panel."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from lwdash.figures.weight_histogram import HistogramInfo

__all__ = ["COMPRESSED_COLOUR", "ORIGINAL_COLOUR", "plot_weight_histogram"]

ORIGINAL_COLOUR = "#1f77b4"
COMPRESSED_COLOUR = "#d62728"


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
