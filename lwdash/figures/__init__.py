"""Pure figure builders: an ``*_info`` extractor (plain records, testable) and a ``plot_*`` builder per chart."""
from __future__ import annotations

from lwdash.figures.histogram import (
    HistogramInfo,
    MultiHistogramInfo,
    histogram_info,
    layer_names,
    multi_histogram_info,
    plot_multi_histogram,
    plot_weight_histogram,
    zero_fraction_text,
)
from lwdash.figures.tradeoff import (
    METRICS,
    BaselinePoint,
    MetricInfo,
    Tradeoff3DInfo,
    TradeoffInfo,
    TradeoffPoint,
    axis_title,
    config_text,
    family_colour,
    plot_tradeoff,
    plot_tradeoff_3d,
    tradeoff3d_info,
    tradeoff_info,
)

__all__ = [
    "METRICS",
    "BaselinePoint",
    "HistogramInfo",
    "MetricInfo",
    "MultiHistogramInfo",
    "Tradeoff3DInfo",
    "TradeoffInfo",
    "TradeoffPoint",
    "axis_title",
    "config_text",
    "family_colour",
    "histogram_info",
    "layer_names",
    "multi_histogram_info",
    "plot_multi_histogram",
    "plot_tradeoff",
    "plot_tradeoff_3d",
    "plot_weight_histogram",
    "tradeoff3d_info",
    "tradeoff_info",
    "zero_fraction_text",
]
