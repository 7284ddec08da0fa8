"""Drawing the 2-D accuracy-vs-cost chart of a :class:`~lwdash.figures.tradeoff_points.TradeoffInfo`
(:func:`plot_tradeoff`): front points bold and joined by a step line, dominated ones faded.
"""
from __future__ import annotations

import textwrap

import plotly.graph_objects as go

from lwdash.figures.palette import BASELINE_COLOUR, MODEL_COLOURS, family_colour, family_symbol, family_traces
from lwdash.figures.tradeoff_points import TradeoffInfo, TradeoffPoint

__all__ = ["plot_tradeoff"]


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


#: A vertical axis title longer than this runs past the plot (into the chart's title) at the default height.
AXIS_TITLE_CHARS = 30


def wrap_title(text: str, width: int = AXIS_TITLE_CHARS) -> str:
    """``text`` broken into lines of at most ``width`` characters (plotly's ``<br>``), at word boundaries."""
    return "<br>".join(textwrap.wrap(text, width)) or text


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

    for trace in (_model_traces(info) if info.per_model else family_traces(info.points, make)):
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
        yaxis_title=wrap_title(info.y_title),
        legend={"title": {"text": "model: technique family" if info.per_model else "technique family"},
                "orientation": "h", "yanchor": "top", "y": -0.28, "x": 0},
        hovermode="closest",
        clickmode="event+select",
        dragmode="pan",
        margin={"l": 90, "r": 20, "t": 50 if title else 20, "b": 40},
        height=height,
        template="plotly_white",
    )
    # Costs (and their ratios) are never negative: labels near the axis must not stretch it below 0.
    fig.update_xaxes(rangemode="nonnegative")
    if not info.ratio_to_baseline:
        fig.update_yaxes(rangemode="nonnegative")
    return fig
