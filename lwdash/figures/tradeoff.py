"""Accuracy-vs-cost trade-off charts: an extractor (:func:`tradeoff_info`) and a builder (:func:`plot_tradeoff`).

The extractor turns the results frame into plain records (points, front flags, baselines,
axis titles with units) that tests can check without a browser; the builder only draws them.
Any metric of the catalogue can be an axis (:data:`~lwdash.figures.axes.METRICS`).

This module gathers the trade-off charts' public names in one place; they live in
:mod:`lwdash.figures.tradeoff_points` (the 2-D records), :mod:`lwdash.figures.tradeoff_plot` (the
2-D drawing), :mod:`lwdash.figures.tradeoff3d` (the 3-D view), :mod:`lwdash.figures.results_columns`
(reading the results frame) and :mod:`lwdash.figures.palette` (colours and markers).
"""
from __future__ import annotations

from lwdash.figures.axes import (
    METRICS,
    LatencyChoices,
    MetricInfo,
    axis_title,
    latency_choices,
    latency_metric,
    short_axis_title,
)
from lwdash.figures.palette import FAMILY_COLOURS, family_colour
from lwdash.figures.palette import MODEL_COLOURS as MODEL_COLOURS
from lwdash.figures.palette import family_symbol as family_symbol
from lwdash.figures.results_columns import config_text, config_texts
from lwdash.figures.tradeoff3d import Tradeoff3DInfo, Tradeoff3DPoint, plot_tradeoff_3d, tradeoff3d_info
from lwdash.figures.tradeoff_plot import plot_tradeoff
from lwdash.figures.tradeoff_points import (
    MAX_FRONT_LABELS,
    BaselinePoint,
    TradeoffInfo,
    TradeoffPoint,
    short_label,
    tradeoff_info,
)

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
