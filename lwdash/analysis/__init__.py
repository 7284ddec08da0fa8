"""Analyses beyond one result's metrics: per-layer statistics and per-layer sensitivity scans."""
from __future__ import annotations

from lwdash.analysis.filters import JOB_STATUSES, ResultFilter, filter_jobs, filter_results, jobs_frame
from lwdash.analysis.layers import layer_frame, layer_macs, layer_report, match_name
from lwdash.analysis.sensitivity import SCAN_TYPE, ScanConfig, most_sensitive, run_scan, scan_technique

__all__ = [
    "JOB_STATUSES",
    "SCAN_TYPE",
    "ResultFilter",
    "ScanConfig",
    "filter_jobs",
    "filter_results",
    "jobs_frame",
    "layer_frame",
    "layer_macs",
    "layer_report",
    "match_name",
    "most_sensitive",
    "run_scan",
    "scan_technique",
]
