"""Analyses beyond one result's metrics: baselines, per-layer statistics and per-layer sensitivity scans."""
from __future__ import annotations

from lwdash.analysis.baseline import BASELINE_KIND, MeasuredBaseline, baseline_spec, latest_baseline, measure_baseline
from lwdash.analysis.filters import JOB_STATUSES, ResultFilter, filter_jobs, filter_results, jobs_frame
from lwdash.analysis.layers import layer_frame, layer_macs, layer_report, match_name
from lwdash.analysis.sensitivity import SCAN_TYPE, ScanConfig, most_sensitive, run_scan, scan_technique

__all__ = [
    "BASELINE_KIND",
    "JOB_STATUSES",
    "SCAN_TYPE",
    "MeasuredBaseline",
    "ResultFilter",
    "ScanConfig",
    "baseline_spec",
    "filter_jobs",
    "filter_results",
    "jobs_frame",
    "latest_baseline",
    "layer_frame",
    "layer_macs",
    "layer_report",
    "match_name",
    "measure_baseline",
    "most_sensitive",
    "run_scan",
    "scan_technique",
]
