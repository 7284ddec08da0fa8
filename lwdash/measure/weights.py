"""A model's weights: which tensors count (:mod:`lwdash.measure.weight_tensors`) and their per-layer
statistics and histograms (:mod:`lwdash.measure.weight_stats`), re-exported here under one name.

The counting rule is described in :mod:`lwdash.measure.weight_tensors`; it is shared by
:mod:`lwdash.measure.size` and :func:`weight_summary`, so a baseline and its compressed form are
counted alike.
"""
from __future__ import annotations

from lwdash.measure.weight_stats import LEVELS_CAP, UNIQUE_COUNT_CAP, summary_ranges, weight_summary
from lwdash.measure.weight_tensors import WeightTensor, collect_weight_tensors

__all__ = [
    "LEVELS_CAP",
    "UNIQUE_COUNT_CAP",
    "WeightTensor",
    "collect_weight_tensors",
    "summary_ranges",
    "weight_summary",
]
