"""How the trade-off charts tell results apart: a colour per technique family or per model, a marker per family.

Also :func:`family_traces`, the one-legend-entry-per-family grouping the 2-D and 3-D charts share.
"""
from __future__ import annotations

from typing import Any

__all__ = [
    "BASELINE_COLOUR",
    "FAMILY_COLOURS",
    "FAMILY_SYMBOLS",
    "MODEL_COLOURS",
    "family_colour",
    "family_symbol",
    "family_traces",
]

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


def family_traces(points: Any, make: Any) -> list[Any]:
    """Two traces per family (front bold, dominated faded) sharing one legend entry."""
    traces = []
    for fam in sorted({p.family for p in points}):
        front = [p for p in points if p.family == fam and p.on_front]
        dominated = [p for p in points if p.family == fam and not p.on_front]
        for pts, on_front in ((front, True), (dominated, False)):
            if pts:
                traces.append(make(fam, pts, on_front, on_front or not front))
    return traces
