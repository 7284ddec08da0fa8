"""Weight-distribution overlays: original vs compressed, per layer or for the whole model.

Inputs are the JSON-safe weight summaries of ``lwdash.measure.weight_summary``:
``{"layers": [{"name", "kind", "shape", "numel", "zeros", "min", "max", "mean", "std",
"unique_count", "hist": {"edges", "counts"}, "dtype"}], "total": {...}}``. Histograms count
nonzero values only; zeros are reported apart so that a pruned model's zeros do not flatten
the chart into one giant bar. The compressed summary reuses the baseline's per-layer bin edges.

This module gathers the histogram charts' public names: one overlay's records
(:mod:`lwdash.figures.weight_histogram`) and drawing (:mod:`lwdash.figures.weight_histogram_plot`),
and the overlay of several results (:mod:`lwdash.figures.multi_histogram`).
"""
from __future__ import annotations

from lwdash.figures.multi_histogram import (
    MultiHistogramInfo,
    OverlaySeries,
    multi_histogram_info,
    plot_multi_histogram,
)
from lwdash.figures.weight_histogram import HistogramInfo, histogram_info, layer_names, zero_fraction_text
from lwdash.figures.weight_histogram_plot import plot_weight_histogram

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
