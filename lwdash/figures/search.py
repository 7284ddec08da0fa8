"""Search charts: is a multi-objective search still finding better trade-offs, and what did each trial find.

The extractor reads a search summary (:func:`lwdash.search.search_summary`'s dict); the builder
draws, trial by trial, the hypervolume of the front found so far (two objectives), or the number
of trials on the front (three), with each trial marked by what it did: widened the front, landed
behind it, or failed.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import plotly.graph_objects as go

__all__ = ["SearchProgressInfo", "plot_search_progress", "search_progress_info"]

_IMPROVED, _BEHIND, _FAILED, _LINE = "#2ca02c", "#7f7f7f", "#d62728", "#1f77b4"


class SearchProgressInfo(NamedTuple):
    """What :func:`plot_search_progress` draws.

    Attributes:
        trials: 1-based trial numbers of the finished trials, in trial order.
        level: after each of them, the hypervolume (two objectives) or the front's size (three).
        outcome: per trial, ``"improved"`` (the level rose), ``"behind"`` (measured, no gain) or ``"failed"``.
        labels: per trial, its params as ``knob=value`` text (hover).
        y_title: what ``level`` is.
        summary: one sentence for the caption.
        explanation: how to read ``level``, in words for someone who has not met a hypervolume.
    """

    trials: tuple[int, ...]
    level: tuple[float, ...]
    outcome: tuple[str, ...]
    labels: tuple[str, ...]
    y_title: str
    summary: str
    explanation: str = ""


def _params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def search_progress_info(summary: Mapping[str, Any], cost: str = "cost") -> SearchProgressInfo:
    """The per-trial progress of a search from its summary (open trials are left out).

    Args:
        summary: :func:`lwdash.search.search_summary`'s output.
        cost: what the search's cost objective is called (``"size"``, say), for the explanation.
    """
    rows = [t for t in summary.get("trials", []) if t.get("status") not in ("queued", "running")]
    hv = summary.get("hypervolume")
    by_trial = {t["trial"]: k for k, t in enumerate(summary.get("trials", []))}
    levels: list[float] = []
    outcomes: list[str] = []
    front_so_far: list[tuple[float, ...]] = []
    directions = list(summary.get("directions", []))
    for t in rows:
        if hv is not None:
            level = float(hv[by_trial[t["trial"]]])
        else:  # three objectives: how many of the trials so far are non-dominated
            if t.get("values") is not None:
                front_so_far.append(tuple(t["values"]))
            level = float(_front_size(front_so_far, directions))
        before = levels[-1] if levels else 0.0
        levels.append(level)
        if t.get("values") is None:
            outcomes.append("failed")
        else:
            outcomes.append("improved" if level > before + 1e-12 else "behind")
    measured = sum(o != "failed" for o in outcomes)
    gains = [r["trial"] + 1 for r, o in zip(rows, outcomes, strict=True) if o == "improved"]
    if not rows:
        text = "No trial has finished yet."
    else:
        last = f" The last gain came at trial {gains[-1]}." if gains else ""
        text = (f"{len(rows)} trial(s) finished, {measured} measured, {len(summary.get('front', []))} on the front."
                f"{last}")
    return SearchProgressInfo(
        trials=tuple(int(t["trial"]) + 1 for t in rows),
        level=tuple(levels),
        outcome=tuple(outcomes),
        labels=tuple(_params_text(t.get("params") or {}) + (f" · {t['error']}" if t.get("error") else "") for t in rows),
        y_title=("hypervolume of the front (accuracy x cost saved)" if hv is not None
                 else "trials on the front so far"),
        summary=text,
        explanation=_explanation(hv is not None, cost),
    )


def _explanation(two_objectives: bool, cost: str) -> str:
    if not two_objectives:
        return ("How to read it: the count of measured trials that no other trial beats on all three objectives "
                "at once. It rises when a trial finds a new trade-off; flat stretches found nothing new.")
    if cost[:2].istitle():  # "Best runtime latency", not "ONNX file size" or "MACs per sample"
        cost = cost[0].lower() + cost[1:]
    return ("How to read it: each measured trial is a point of accuracy and share of the baseline's "
            f"{cost} saved. The score (the front's hypervolume) is the area those points cover together, from 0 "
            f"to 1 (100 % accuracy at no cost): one result at 90 % accuracy with half the baseline's {cost} "
            "scores 0.9 x 0.5 = 0.45. It steps up when a trial beats every earlier one on accuracy, on "
            f"{cost}, or both; flat stretches are trials that found nothing better.")


def _front_size(points: list[tuple[float, ...]], directions: list[str]) -> int:
    if not points:
        return 0
    import numpy as np

    from lwdash.pareto import pareto_mask

    return int(pareto_mask(np.array(points, dtype=float), directions).sum())


def plot_search_progress(info: SearchProgressInfo, *, height: int = 380) -> go.Figure:
    """The level after each trial as a step line, each trial a marker coloured by its outcome."""
    fig = go.Figure()
    if info.trials:
        fig.add_trace(go.Scatter(x=list(info.trials), y=list(info.level), mode="lines", line={"shape": "hv",
                                 "color": _LINE, "width": 2}, name="front so far", hoverinfo="skip"))
    for outcome, colour, symbol, name in (("improved", _IMPROVED, "circle", "widened the front"),
                                          ("behind", _BEHIND, "circle-open", "behind the front"),
                                          ("failed", _FAILED, "x", "failed")):
        idx = [k for k, o in enumerate(info.outcome) if o == outcome]
        if not idx:
            continue
        fig.add_trace(go.Scatter(
            x=[info.trials[k] for k in idx], y=[info.level[k] for k in idx], mode="markers", name=name,
            marker={"color": colour, "symbol": symbol, "size": 11, "line": {"width": 2, "color": colour}},
            hovertext=[f"trial {info.trials[k]}: {info.labels[k]}" for k in idx], hoverinfo="text",
        ))
    fig.update_layout(
        title={"text": "Is the search still improving?", "x": 0.0, "xanchor": "left"},
        xaxis_title="trial", yaxis_title=info.y_title, height=height, template="plotly_white",
        legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0},
        margin={"l": 70, "r": 20, "t": 50, "b": 40}, hovermode="closest",
    )
    fig.update_xaxes(dtick=1 if len(info.trials) <= 20 else None, rangemode="tozero")
    return fig
