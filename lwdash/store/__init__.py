"""Storage: the narrow backend interface, its SQLite and in-memory implementations, and the typed records.

The domain's verbs (models, data sets, jobs, results, searches) are :class:`lwdash.workspace.Store`,
written on :class:`lwdash.store.backend.Backend`; nothing here knows what a model or a job is.
"""
from __future__ import annotations

from lwdash.store.backend import Backend
from lwdash.store.memory import MemoryBackend
from lwdash.store.records import (
    AnalysisRecord,
    DatasetRecord,
    ModelRecord,
    NotFoundError,
    ResultRecord,
    SearchRecord,
    SearchTrialRecord,
    StoreBusy,
    WorkerRecord,
)
from lwdash.store.sqlite import SqliteBackend

__all__ = [
    "AnalysisRecord",
    "Backend",
    "DatasetRecord",
    "MemoryBackend",
    "ModelRecord",
    "NotFoundError",
    "ResultRecord",
    "SearchRecord",
    "SearchTrialRecord",
    "SqliteBackend",
    "StoreBusy",
    "WorkerRecord",
]
