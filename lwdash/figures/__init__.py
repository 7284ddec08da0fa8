"""Pure figure builders: an ``*_info`` extractor (plain records, testable) and a ``plot_*`` builder per chart."""
from __future__ import annotations

from lwdash.figures.histogram import (
    HistogramInfo,
    histogram_info,
    layer_names,
    plot_weight_histogram,
    zero_fraction_text,
)
from lwdash.figures.tradeoff import (
    METRICS,
    BaselinePoint,
    MetricInfo,
    TradeoffInfo,
    TradeoffPoint,
    axis_title,
    config_text,
    family_colour,
    plot_tradeoff,
    tradeoff_info,
)

__all__ = [
    "METRICS",
    "BaselinePoint",
    "HistogramInfo",
    "MetricInfo",
    "TradeoffInfo",
    "TradeoffPoint",
    "axis_title",
    "config_text",
    "family_colour",
    "histogram_info",
    "layer_names",
    "plot_tradeoff",
    "plot_weight_histogram",
    "tradeoff_info",
    "zero_fraction_text",
]
