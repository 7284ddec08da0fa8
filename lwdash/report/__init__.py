"""Exports for people who will never open the app: results as CSV, a self-contained HTML report
(interactive charts with plotly.js embedded, so it opens offline), and the charts as PNG images.

``python -m lwdash report --out DIR`` writes all three from the store headless; the Compare page
offers the same files as downloads, built from the results it shows.
"""
from __future__ import annotations

from lwdash.report.build import (
    ReportError,
    ReportFiles,
    build_report_html,
    compare_figures,
    results_csv,
    with_model_names,
    write_pngs,
    write_report,
)

__all__ = [
    "ReportError",
    "ReportFiles",
    "build_report_html",
    "compare_figures",
    "results_csv",
    "with_model_names",
    "write_pngs",
    "write_report",
]
