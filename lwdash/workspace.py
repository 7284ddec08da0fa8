"""The store every part of lwdash talks to: the domain's verbs over one storage backend.

:class:`Store` composes the parts, each owned by the module of its concept and each written on
the narrow :class:`lwdash.store.backend.Backend` interface:

- :class:`lwdash.models.catalog.ModelCatalog`: samples and uploaded models;
- :class:`lwdash.data.catalog.DataCatalog`: bundled and uploaded data sets, resolving a job's data;
- :class:`lwdash.jobs.queue.JobQueue`: the job queue;
- :class:`lwdash.jobs.roster.WorkerRoster`: live worker processes;
- :class:`lwdash.results.ResultBook`: results (with their artifacts) and analyses;
- :class:`lwdash.jobs.search_book.SearchBook`: searches and their trials;
- :class:`lwdash.annotations.AnnotationBook`: the team's names, notes and stars, laid over the
  model and result records here (a rename shows everywhere; a deletion takes its note along).

Open one with :func:`open_store` (SQLite under the data directory: durable, shared by the app,
its workers and the CLI) or :class:`MemoryStore` (in-process, for tests and scripts).
"""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from lwdash.annotations import Annotation, AnnotationBook
from lwdash.data.catalog import DataCatalog
from lwdash.jobs.queue import JobQueue
from lwdash.jobs.roster import WorkerRoster
from lwdash.jobs.search_book import SearchBook
from lwdash.models.catalog import ModelCatalog
from lwdash.results import ResultBook
from lwdash.store.backend import Backend
from lwdash.store.memory import MemoryBackend
from lwdash.store.records import ModelRecord, ResultRecord
from lwdash.store.sqlite import SqliteBackend

__all__ = ["MemoryStore", "SqliteStore", "Store", "open_store"]


class Store(ModelCatalog, DataCatalog, JobQueue, WorkerRoster, ResultBook, SearchBook, AnnotationBook):
    """Models, data sets, jobs, workers, results and searches on one backend.

    Safe to share between threads; with the SQLite backend, between processes too. Create one
    per process and reuse it.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.data_dir = backend.root

    def close(self) -> None:
        """Release this thread's backend resources."""
        self.backend.close()

    def revision(self, *tables: str) -> int:
        """A counter that grows whenever the named kinds (default: all) change, in any process.

        Cheap (one small read): key UI caches on it, e.g. ``revision("results")`` for the
        Compare page (``"jobs"`` changes with every progress update, ``"workers"`` every heartbeat).
        """
        return self.backend.revision(*tables)

    # ------------------------------------------------------------------ annotations over the records

    def list_models(self) -> list[ModelRecord]:
        notes = self.annotations("model")
        return [_model_with(m, notes.get(m.id)) for m in super().list_models()]

    def get_model(self, model_id: str) -> ModelRecord:
        return _model_with(super().get_model(model_id), self.annotation("model", model_id))

    def delete_model(self, model_id: str) -> None:
        super().delete_model(model_id)
        self.forget("model", model_id)

    def list_results(self, *, with_weights: bool = True) -> list[ResultRecord]:
        notes = self.annotations("result")
        return [_result_with(r, notes.get(r.id)) for r in super().list_results(with_weights=with_weights)]

    def latest_result(self, model_id: str, data_ref: str) -> ResultRecord | None:
        rec = super().latest_result(model_id, data_ref)
        return None if rec is None else _result_with(rec, self.annotation("result", rec.id))

    def get_result(self, result_id: str) -> ResultRecord:
        return _result_with(super().get_result(result_id), self.annotation("result", result_id))

    def delete_result(self, result_id: str) -> None:
        super().delete_result(result_id)
        self.forget("result", result_id)

    # ------------------------------------------------------------------ files

    def scratch_dir(self, prefix: str) -> Path:
        """A new empty folder for work in progress (a job's artifacts before they are saved)."""
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.backend.area("tmp")))

    def scratch_paths(self, pattern: str) -> list[Path]:
        """The work-in-progress files and folders whose names match ``pattern`` (a glob)."""
        return sorted(self.backend.area("tmp").glob(pattern))

    def log_path(self, name: str) -> Path:
        """Where a process's log called ``name`` goes."""
        return self.backend.area("logs") / name

    def is_artifact(self, path: Path) -> bool:
        """Whether ``path`` is a stored artifact file (what a download may serve)."""
        return Path(path).resolve().is_relative_to(self.artifacts_dir.resolve()) and Path(path).is_file()

    @property
    def models_dir(self) -> Path:
        return self.backend.area("models")

    @property
    def datasets_dir(self) -> Path:
        return self.backend.area("datasets")

    @property
    def artifacts_dir(self) -> Path:
        return self.backend.area("artifacts")

    @property
    def tmp_dir(self) -> Path:
        return self.backend.area("tmp")

    @property
    def logs_dir(self) -> Path:
        return self.backend.area("logs")


def _model_with(rec: ModelRecord, a: Annotation | None) -> ModelRecord:
    if a is None:
        return rec
    return dataclasses.replace(rec, title=a.name or rec.title, note=a.note, starred=a.starred)


def _result_with(rec: ResultRecord, a: Annotation | None) -> ResultRecord:
    if a is None:
        return rec
    renamed = bool(a.name) and a.name != rec.label
    return dataclasses.replace(rec, label=a.name if renamed else rec.label, renamed_from=rec.label if renamed else "",
                               note=a.note, starred=a.starred)


class SqliteStore(Store):
    """The durable store: SQLite (WAL) under ``data_dir``, files in folders beside it."""

    backend: SqliteBackend

    def __init__(self, data_dir: Path | str) -> None:
        super().__init__(SqliteBackend(data_dir))
        self.db_path = self.backend.db_path


class MemoryStore(Store):
    """An in-process store (rows in memory, files under ``root``): for unit tests and single-user scripts."""

    def __init__(self, root: Path | str) -> None:
        super().__init__(MemoryBackend(root))


def open_store(data_dir: str | None = None) -> SqliteStore:
    """The store under ``data_dir`` (default: ``LWDASH_DATA_DIR`` or ``./.lwdash-data``)."""
    from lwdash.config import get_settings

    return SqliteStore(get_settings(data_dir).data_dir)
