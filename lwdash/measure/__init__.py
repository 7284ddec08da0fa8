"""Measuring models: export, accuracy, size, MACs, latency, weight statistics, environment; the metric catalogue.

Public names are imported lazily, so ``import lwdash.measure.metrics`` (used by the store and the
UI) does not pull in ONNX or ONNX Runtime. ``environment`` is bound eagerly: the function shares
its name with its submodule, and binding it here keeps ``lwdash.measure.environment`` the function.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from lwdash.lazy import lazy_exports
from lwdash.measure.environment import environment, torch_threads
from lwdash.measure.metrics import LatencyRecord, Metrics

if TYPE_CHECKING:
    from lwdash.measure.accuracy import EvalResult, evaluate_onnx, evaluate_torch, make_session
    from lwdash.measure.catalogue import MetricSpec, catalogue, metric, metrics_for
    from lwdash.measure.core import measure_model
    from lwdash.measure.export import ExportError, export_onnx, save_pt2, write_onnx
    from lwdash.measure.latency import (
        LatencyStats,
        TimingPolicy,
        measure_ort_latency,
        measure_torch_latency,
        time_runner,
    )
    from lwdash.measure.macs import MacsError, count_macs
    from lwdash.measure.runtime_timing import export_runtime_artifacts, measure_latencies, selected_runtimes
    from lwdash.measure.size import SizeCounts, count_sizes
    from lwdash.measure.weights import collect_weight_tensors, summary_ranges, weight_summary

__all__ = [
    "EvalResult",
    "ExportError",
    "LatencyRecord",
    "LatencyStats",
    "MacsError",
    "MetricSpec",
    "Metrics",
    "SizeCounts",
    "TimingPolicy",
    "catalogue",
    "collect_weight_tensors",
    "count_macs",
    "count_sizes",
    "environment",
    "evaluate_onnx",
    "evaluate_torch",
    "export_onnx",
    "export_runtime_artifacts",
    "make_session",
    "measure_latencies",
    "measure_model",
    "measure_ort_latency",
    "measure_torch_latency",
    "metric",
    "metrics_for",
    "save_pt2",
    "selected_runtimes",
    "summary_ranges",
    "time_runner",
    "torch_threads",
    "weight_summary",
    "write_onnx",
]

_WHERE = {
    "EvalResult": "accuracy",
    "evaluate_onnx": "accuracy",
    "evaluate_torch": "accuracy",
    "make_session": "accuracy",
    "MetricSpec": "catalogue",
    "catalogue": "catalogue",
    "metric": "catalogue",
    "metrics_for": "catalogue",
    "measure_model": "core",
    "ExportError": "export",
    "export_onnx": "export",
    "save_pt2": "export",
    "write_onnx": "export",
    "LatencyStats": "latency",
    "TimingPolicy": "latency",
    "measure_latencies": "runtime_timing",
    "export_runtime_artifacts": "runtime_timing",
    "selected_runtimes": "runtime_timing",
    "time_runner": "latency",
    "measure_ort_latency": "latency",
    "measure_torch_latency": "latency",
    "MacsError": "macs",
    "count_macs": "macs",
    "SizeCounts": "size",
    "count_sizes": "size",
    "collect_weight_tensors": "weights",
    "summary_ranges": "weights",
    "weight_summary": "weights",
}


__getattr__, __dir__ = lazy_exports(__name__, {k: f"lwdash.measure.{v}" for k, v in _WHERE.items()}, globals())
