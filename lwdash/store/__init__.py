"""The durable store: models, data sets, the job queue, results and workers (SQLite + files)."""
from __future__ import annotations

from lwdash.store.records import (
    DatasetRecord,
    ModelRecord,
    NotFoundError,
    ResultRecord,
    SearchRecord,
    SearchTrialRecord,
    StoreBusy,
    WorkerRecord,
)
from lwdash.store.sqlite import MODEL_SUFFIXES, SqliteStore

__all__ = [
    "MODEL_SUFFIXES",
    "DatasetRecord",
    "ModelRecord",
    "NotFoundError",
    "ResultRecord",
    "SearchRecord",
    "SearchTrialRecord",
    "SqliteStore",
    "StoreBusy",
    "WorkerRecord",
    "open_store",
]


def open_store(data_dir: str | None = None) -> SqliteStore:
    """The store under ``data_dir`` (default: ``LWDASH_DATA_DIR`` or ``./.lwdash-data``)."""
    from lwdash.config import get_settings

    return SqliteStore(get_settings(data_dir).data_dir)
