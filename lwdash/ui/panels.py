"""Reusable page sections: model gallery and uploads, pickers, the live job panel, result detail.

Each panel reads from the store, renders, and writes only selections and ids to session state.
Library errors (``ModelLoadError``, ``DataError``, ``ValueError`` from configs) are shown with
``st.error`` so that bad input never stops the app.

This module gathers them under one name for the pages (``panels.model_gallery``); each lives in
the module of its page: :mod:`~lwdash.ui.gallery` and :mod:`~lwdash.ui.baseline` (Models),
:mod:`~lwdash.ui.compress` (Compress), :mod:`~lwdash.ui.jobs` (Jobs), :mod:`~lwdash.ui.results`
and :mod:`~lwdash.ui.detail` (Compare), on the shared helpers of :mod:`~lwdash.ui.records`.
"""
from __future__ import annotations

from lwdash.ui.baseline import model_baseline, queue_baseline
from lwdash.ui.compress import pick_model, pick_technique, queue_jobs, submitted_jobs
from lwdash.ui.datasets import pick_data
from lwdash.ui.detail import (
    comparison_view,
    config_table,
    headline_metrics,
    metrics_comparison,
    result_detail,
    steps_table,
)
from lwdash.ui.gallery import dataset_upload, layer_table, model_gallery, model_summary, model_upload
from lwdash.ui.jobs import JOB_REFRESH_S, job_panel, worker_status
from lwdash.ui.jobs import eta_text as eta_text
from lwdash.ui.records import fitting_records
from lwdash.ui.results import SIZE_METRICS as SIZE_METRICS
from lwdash.ui.results import (
    latency_metric_choice,
    model_filter,
    pick_result,
    results_table,
    select_result,
    size_metric_choice,
)

__all__ = [
    "JOB_REFRESH_S",
    "comparison_view",
    "config_table",
    "dataset_upload",
    "fitting_records",
    "headline_metrics",
    "job_panel",
    "latency_metric_choice",
    "layer_table",
    "metrics_comparison",
    "model_baseline",
    "model_filter",
    "model_gallery",
    "model_summary",
    "model_upload",
    "pick_data",
    "pick_model",
    "pick_result",
    "pick_technique",
    "queue_baseline",
    "queue_jobs",
    "result_detail",
    "results_table",
    "select_result",
    "size_metric_choice",
    "steps_table",
    "submitted_jobs",
    "worker_status",
]
