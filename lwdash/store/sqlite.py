"""The durable store: models, data sets, the job queue, results and workers in one SQLite file.

Layout of the data directory (names never come from user input: content hashes and generated ids)::

    <data_dir>/lwdash.sqlite3         WAL-mode database
    <data_dir>/models/<sha256>.<ext>  validated uploaded models
    <data_dir>/datasets/<sha256>.npz  validated uploaded evaluation sets
    <data_dir>/artifacts/<result_id>/ model.onnx, model.pt2, result.json, model_card.md of one result
    <data_dir>/tmp/                   uploads being validated, jobs' artifacts being written
    <data_dir>/logs/                  one log per job's process

Concurrency: each thread gets its own connection (Streamlit runs scripts on many threads and
the worker runs jobs in other processes). Writes are short ``BEGIN IMMEDIATE`` transactions
with a busy timeout, so readers never block and writers queue briefly. Claiming a job is one
``UPDATE ... WHERE status='queued'`` inside such a transaction, checked by its row count, so
each job is claimed by exactly one worker.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lwdash.isolate import IsolationError, call_isolated
from lwdash.jobs.spec import JobRecord, JobSpec, JobStatus
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

if TYPE_CHECKING:
    from lwdash.data import Dataset
    from lwdash.jobs.runner import RunOutput
    from lwdash.models.base import LoadedModel

# The store stays free of torch (the worker's supervising process imports only this):
# Metrics and the model/data loaders are imported where they are used.

__all__ = ["DB_FILENAME", "MODEL_SUFFIXES", "SqliteStore"]

DB_FILENAME = "lwdash.sqlite3"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000
#: Model file suffixes accepted for upload (what ``lwdash.models.load_model_file`` reads).
MODEL_SUFFIXES = (".onnx", ".pt2", ".pt", ".pth", ".ts", ".safetensors")
#: Evaluation-set suffixes accepted for upload: NumPy archives and zipped image folders.
DATASET_SUFFIXES = (".npz", ".zip")
_NAME_MAX_CHARS = 200
_TABLES = ("models", "datasets", "jobs", "results", "workers", "analyses", "searches")
#: The results columns with the (large) weight summaries left out.
_RESULT_COLUMNS_NO_WEIGHTS = (
    "id, job_id, model_id, data_ref, technique, family, label, config, seed, threads, baseline, compressed,"
    " '{}' AS baseline_weights, '{}' AS compressed_weights, notes, steps, environment, artifact_dir,"
    " artifacts, created_at"
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    filename TEXT NOT NULL,
    source_format TEXT NOT NULL,
    arch TEXT,
    input_shape TEXT NOT NULL,
    num_classes INTEGER NOT NULL,
    path TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    filename TEXT NOT NULL,
    path TEXT NOT NULL,
    n INTEGER NOT NULL,
    input_shape TEXT NOT NULL,
    num_classes INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    queued_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    heartbeat_at REAL,
    worker TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    result_id TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_status_queued ON jobs (status, queued_at);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
CREATE TABLE IF NOT EXISTS results (
    id TEXT PRIMARY KEY,
    job_id TEXT,
    model_id TEXT NOT NULL,
    data_ref TEXT NOT NULL,
    technique TEXT NOT NULL,
    family TEXT NOT NULL,
    label TEXT NOT NULL,
    config TEXT NOT NULL,
    seed INTEGER NOT NULL,
    threads INTEGER NOT NULL,
    baseline TEXT NOT NULL,
    compressed TEXT NOT NULL,
    baseline_weights TEXT NOT NULL,
    compressed_weights TEXT NOT NULL,
    notes TEXT NOT NULL,
    steps TEXT NOT NULL,
    environment TEXT NOT NULL,
    artifact_dir TEXT NOT NULL,
    artifacts TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_created ON results (created_at);
CREATE TABLE IF NOT EXISTS analyses (
    id TEXT PRIMARY KEY,
    job_id TEXT,
    kind TEXT NOT NULL,
    model_id TEXT NOT NULL,
    data_ref TEXT NOT NULL,
    config TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS analyses_model ON analyses (model_id, created_at);
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS searches (
    id TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    data_ref TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    summary TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    finished_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS searches_status ON searches (status, created_at);
CREATE TABLE IF NOT EXISTS search_trials (
    search_id TEXT NOT NULL,
    trial INTEGER NOT NULL,
    job_id TEXT NOT NULL,
    params TEXT NOT NULL,
    system_attrs TEXT NOT NULL,
    PRIMARY KEY (search_id, trial)
);
CREATE TABLE IF NOT EXISTS revisions (
    name TEXT PRIMARY KEY,
    rev INTEGER NOT NULL
);
"""


def _triggers() -> str:
    parts = []
    for table in _TABLES:
        for op in ("INSERT", "UPDATE", "DELETE"):
            parts.append(
                f"CREATE TRIGGER IF NOT EXISTS rev_{table}_{op.lower()} AFTER {op} ON {table} "
                f"BEGIN UPDATE revisions SET rev = rev + 1 WHERE name = '{table}'; END;"
            )
    return "\n".join(parts)


def _clean_name(filename: str) -> str:
    """A display name from an uploaded file name: its last path part, printable, bounded."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:_NAME_MAX_CHARS] or "upload"


def _suffix(filename: str, accepted: Sequence[str], what: str) -> str:
    name = _clean_name(filename).lower()
    for suffix in sorted(accepted, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    raise ValueError(f"{what} {_clean_name(filename)!r} has an unsupported extension; accepted: {', '.join(accepted)}")


def _scrub(text: str, tmp: Path, display: str) -> str:
    """An engine message about a temp file, rewritten to name the user's file instead."""
    return text.replace(str(tmp), display).replace(tmp.name, display)


#: How long reading one upload may take in its child process, and its words when it does not return.
UPLOAD_READ_TIMEOUT_S = 300.0
_ISOLATION_WHAT = {"crash": "crashed", "timeout": "hung"}


def _read_isolated(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a child process, under the per-job memory limit (``LWDASH_JOB_MEMORY_MB``)."""
    from lwdash.config import get_settings

    return call_isolated(fn, *args, timeout_s=UPLOAD_READ_TIMEOUT_S, memory_mb=get_settings().job_memory_mb)


def _where(**equal_to: Any) -> tuple[str, list[Any]]:
    """A ``WHERE col = ? AND ...`` clause (and its parameters) for the columns given a value (``None``: any)."""
    given = {col: v for col, v in equal_to.items() if v is not None}
    clause = f"WHERE {' AND '.join(f'{col} = ?' for col in given)}" if given else ""
    return clause, list(given.values())


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, allow_nan=True)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _bundled_records(ref: str | None = None) -> list[DatasetRecord]:
    """The records of every bundled data set (or of ``ref`` alone, ``[]`` when it is none), with availability.

    Nothing is loaded: the facts come from the registry, availability from a look at the files.
    """
    from lwdash.data.bundled import get_bundled, is_bundled, list_bundled

    if ref is not None and not is_bundled(ref):
        return []
    entries = list_bundled() if ref is None else [get_bundled(ref)]
    return [
        DatasetRecord(id=e.name, name=e.title, kind="builtin", path=None, samples_count=e.samples_count,
                      input_shape=tuple(e.input_shape), num_classes=e.num_classes, description=e.description,
                      unavailable=e.unavailable() or "")
        for e in entries
    ]


def _is_busy(e: sqlite3.OperationalError) -> bool:
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)  # extended codes keep the primary in the low byte
    return "locked" in str(e) or "busy" in str(e)


class _Connection(sqlite3.Connection):
    """sqlite3's connection, raising :class:`StoreBusy` where sqlite3 says "database is locked" / busy.

    The one place the store's own error replaces sqlite3's: every statement the store runs goes
    through these methods (``_write``'s BEGIN / COMMIT too), so no caller sees ``sqlite3.OperationalError``
    for a database that stayed locked past the busy timeout.
    """

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.OperationalError as e:
            if _is_busy(e):
                raise StoreBusy(f"the database stayed locked by other writers: {e}") from e
            raise

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.OperationalError as e:
            if _is_busy(e):
                raise StoreBusy(f"the database stayed locked by other writers: {e}") from e
            raise


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch the database to WAL, waiting out other connections that hold a lock on it.

    SQLite answers ``database is locked`` at once, without the busy handler, when another
    connection is mid-write on a database still in rollback mode (two processes opening a new
    data directory together: the app and the worker it starts, say). WAL is persistent, so
    this only waits the first time a database is opened.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay_s = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except StoreBusy:
            if time.monotonic() > deadline:
                raise
        time.sleep(delay_s)
        delay_s = min(2 * delay_s, 0.2)


class SqliteStore:
    """Models, data sets, jobs, results and workers under one data directory.

    Safe to share between threads (one connection per thread) and between processes (WAL
    mode, short write transactions, busy timeout). Create one per process and reuse it.

    Args:
        data_dir: the data directory; created (with its subfolders) if missing.
    """

    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.db_path = self.data_dir / DB_FILENAME
        self.models_dir = self.data_dir / "models"
        self.datasets_dir = self.data_dir / "datasets"
        self.artifacts_dir = self.data_dir / "artifacts"
        self.tmp_dir = self.data_dir / "tmp"
        self.logs_dir = self.data_dir / "logs"
        for d in (self.data_dir, self.models_dir, self.datasets_dir, self.artifacts_dir, self.tmp_dir, self.logs_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._init_schema()

    # ------------------------------------------------------------------ connection plumbing

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            # A connection must never cross a fork: open a fresh one in a new process.
            conn = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   factory=_Connection)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            _enable_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction that takes the write lock up front (``BEGIN IMMEDIATE``)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def _init_schema(self) -> None:
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.db_path} was written by a newer lwdash (schema {version}, this one reads {SCHEMA_VERSION})"
                )
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            conn.executemany(
                "INSERT OR IGNORE INTO revisions (name, rev) VALUES (?, 0)", [(t,) for t in _TABLES]
            )
            for stmt in _triggers().splitlines():
                conn.execute(stmt)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def revision(self, *tables: str) -> int:
        """A counter that grows whenever the named tables (default: all) change, in any process.

        Cheap (one small read): key UI caches on it, e.g. ``revision("results")`` for the
        Compare page (``"jobs"`` changes with every progress update, ``"workers"`` every heartbeat).
        """
        names = tables or _TABLES
        unknown = set(names) - set(_TABLES)
        if unknown:
            raise ValueError(f"unknown tables {sorted(unknown)}; known: {', '.join(_TABLES)}")
        marks = ",".join("?" * len(names))
        row = self._conn().execute(f"SELECT COALESCE(SUM(rev), 0) FROM revisions WHERE name IN ({marks})", names).fetchone()
        return int(row[0])

    # ------------------------------------------------------------------ models

    def list_models(self) -> list[ModelRecord]:
        """Bundled samples first (``sample/<name>``), then uploads, newest first."""
        from lwdash.models import list_samples

        records = [self._sample_record(s) for s in list_samples()]
        rows = self._conn().execute("SELECT * FROM models ORDER BY created_at DESC").fetchall()
        return records + [self._model_from_row(r) for r in rows]

    def get_model(self, model_id: str) -> ModelRecord:
        """The record of a sample or upload.

        Raises:
            NotFoundError: no such model.
        """
        if model_id.startswith("sample/"):
            from lwdash.models import list_samples

            name = model_id.removeprefix("sample/")
            samples = list_samples()
            for s in samples:
                if s.name == name:
                    return self._sample_record(s)
            raise NotFoundError(f"no sample model {name!r}; samples: {', '.join(s.name for s in samples)}")
        row = self._conn().execute("SELECT * FROM models WHERE id = ?", (model_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no stored model {model_id!r} (ids look like 'sample/<name>' or 'upload/<hash>')")
        return self._model_from_row(row)

    def load_model(self, model_id: str) -> LoadedModel:
        """Load a sample or an upload as a :class:`LoadedModel` (fresh module each call).

        Raises:
            NotFoundError: no such model.
            ModelLoadError: the stored file could not be read.
        """
        rec = self.get_model(model_id)
        if rec.kind == "sample":
            from lwdash.models import load_sample

            return load_sample(rec.name)
        from lwdash.models import load_model_file

        return load_model_file(rec.path, arch=rec.arch, input_shape=rec.input_shape)

    def import_model(
        self, filename: str, data: bytes, *, arch: str | None = None, input_shape: tuple[int, ...] | None = None
    ) -> ModelRecord:
        """Validate an uploaded model and keep it under ``models/<sha256>.<ext>``.

        The size limit (``LWDASH_MAX_UPLOAD_MB``) is checked first; the bytes are written to a
        temp file with a generated name inside the data dir and read with
        :func:`lwdash.models.load_model_file`; only a file that loads is moved into place
        (atomically). The same bytes imported twice return the existing record. The user's file
        name is kept only as display metadata: it never names a file on disk.

        Args:
            filename: the uploaded file's name: only its (validated) extension is used on disk.
            data: the file's bytes.
            arch: architecture key, needed for state dicts.
            input_shape: per-sample input shape, for TorchScript files without ``arch``.

        Raises:
            ModelLoadError: too large, empty, unsupported extension, or the file does not load (the
                message names the user's file, never the temp file); no file is left behind.
        """
        from lwdash.models.base import ModelLoadError
        from lwdash.models.loading import check_upload_size, model_file_facts

        display = _clean_name(filename)
        check_upload_size(len(data), display)
        try:
            suffix = _suffix(filename, MODEL_SUFFIXES, "model file")
        except ValueError as e:
            raise ModelLoadError(str(e)) from None
        sha = hashlib.sha256(data).hexdigest()
        model_id = f"upload/{sha[:16]}"
        existing = self._conn().execute("SELECT * FROM models WHERE id = ?", (model_id,)).fetchone()
        if existing is not None:
            return self._model_from_row(existing)

        tmp = self.tmp_dir / f"upload-{uuid.uuid4().hex}{suffix}"
        final = self.models_dir / f"{sha}{suffix}"
        try:
            tmp.write_bytes(data)
            try:  # in a child process: a reader that crashes or hangs on the file takes only the child down
                facts = _read_isolated(model_file_facts, str(tmp), arch, input_shape, display)
            except ModelLoadError as e:
                raise ModelLoadError(_scrub(str(e), tmp, display)) from e
            except IsolationError as e:
                raise ModelLoadError(
                    f"{display} could not be read safely: the model reader {_ISOLATION_WHAT[e.kind]} ({e.reason}); "
                    "nothing was stored. Accepted: ONNX, torch.export .pt2, TorchScript, or a state dict "
                    "(.pt/.pth/.safetensors) of a known architecture"
                ) from e
            except Exception as e:  # an engine error the loader did not expect: still the user's file's fault
                raise ModelLoadError(
                    f"{display} could not be read as a model: {type(e).__name__}: {_scrub(str(e), tmp, display)}"
                ) from e
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)

        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT OR IGNORE INTO models (id, name, filename, source_format, arch, input_shape, num_classes,"
                    " path, bytes, sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        model_id,
                        display,
                        display,
                        facts["source_format"],
                        facts["arch"],
                        json.dumps(list(facts["input_shape"])),
                        int(facts["num_classes"]),
                        str(final),
                        len(data),
                        sha,
                        time.time(),
                    ),
                )
        except BaseException:
            if self._conn().execute("SELECT 1 FROM models WHERE id = ?", (model_id,)).fetchone() is None:
                final.unlink(missing_ok=True)  # no record points at it: leave nothing behind
            raise
        return self.get_model(model_id)

    def delete_model(self, model_id: str) -> None:
        """Delete an uploaded model and its file (results made from it keep their artifacts).

        Raises:
            ValueError: ``model_id`` is a bundled sample.
            NotFoundError: no such upload.
        """
        if model_id.startswith("sample/"):
            raise ValueError(f"{model_id} is a bundled sample and cannot be deleted")
        rec = self.get_model(model_id)
        with self._write() as conn:
            conn.execute("DELETE FROM models WHERE id = ?", (model_id,))
        rec.path.unlink(missing_ok=True)

    @staticmethod
    def _sample_record(s: Any) -> ModelRecord:
        path = Path(s.path)
        return ModelRecord(
            id=f"sample/{s.name}",
            name=s.name,
            kind="sample",
            source_format="sample",
            arch=s.arch,
            input_shape=tuple(s.input_shape),
            num_classes=int(s.num_classes),
            path=path,
            size_bytes=path.stat().st_size if path.exists() else 0,
            title=s.title,
            description=s.description,
            params_count=s.params_count,
            test_acc=s.test_acc,
            role=s.role,
        )

    @staticmethod
    def _model_from_row(r: sqlite3.Row) -> ModelRecord:
        return ModelRecord(
            id=r["id"],
            name=r["name"],
            kind="upload",
            source_format=r["source_format"],
            arch=r["arch"],
            input_shape=tuple(json.loads(r["input_shape"])),
            num_classes=int(r["num_classes"]),
            path=Path(r["path"]),
            size_bytes=int(r["bytes"]),
            created_at=float(r["created_at"]),
            filename=r["filename"],
        )

    # ------------------------------------------------------------------ data sets

    def import_dataset(
        self, filename: str, data: bytes, *, input_shape: tuple[int, ...] | None = None
    ) -> DatasetRecord:
        """Validate an uploaded evaluation set and keep it under ``datasets/<sha256>.npz``.

        Accepted: an ``.npz`` (``x``, ``y``; kept as uploaded) or a zipped image folder
        (``<class>/<image>.png|jpg``; decoded in memory, resized to ``input_shape``, kept as an
        ``.npz`` of ``x`` in ``[0, 1]``, ``y`` and ``num_classes``). The size limit
        (``LWDASH_MAX_UPLOAD_MB``) is checked first; nothing is extracted to disk and the user's
        file name is kept only as display metadata.

        Args:
            filename: the uploaded file's name (display only; its extension picks the reader).
            data: the file's bytes.
            input_shape: the model's per-sample input ``(C, H, W)`` that an image folder is resized
                to; ``None`` keeps the images' own (common) size. Ignored for ``.npz``.

        Raises:
            DataError: too large, empty, unsupported extension, or rejected by
                :func:`lwdash.data.load_npz` / :func:`lwdash.data.imagefolder.read_image_folder`;
                no file is left behind.
        """
        from lwdash.data import DataError
        from lwdash.data.npz import dataset_file_facts
        from lwdash.models.loading import max_upload_bytes

        display = _clean_name(filename)
        limit = max_upload_bytes()
        if not data:
            raise DataError(f"{display} is empty (0 bytes); accepted: {', '.join(DATASET_SUFFIXES)}")
        if len(data) > limit:
            raise DataError(
                f"{display} is {_mib(len(data))} ({len(data):,} bytes); the upload limit is {_mib(limit)} "
                f"({limit:,} bytes, set by LWDASH_MAX_UPLOAD_MB)"
            )
        try:
            suffix = _suffix(filename, DATASET_SUFFIXES, "data file")
        except ValueError as e:
            raise DataError(
                f"{e} (.npz with x and y, or .zip of class folders <class>/<image>.png|jpg)"
            ) from None
        key = data if suffix == ".npz" else data + b"\0image-folder" + json.dumps(input_shape).encode()
        sha = hashlib.sha256(key).hexdigest()
        ds_id = f"dataset/{sha[:16]}"
        existing = self._conn().execute("SELECT * FROM datasets WHERE id = ?", (ds_id,)).fetchone()
        if existing is not None:
            return self._dataset_from_row(existing)

        tmp = self.tmp_dir / f"upload-{uuid.uuid4().hex}.npz"  # what is kept: the .npz, or the folder's arrays
        src = tmp if suffix == ".npz" else self.tmp_dir / f"upload-{uuid.uuid4().hex}{suffix}"
        final = self.datasets_dir / f"{sha}.npz"
        try:
            src.write_bytes(data)
            try:  # in a child process, as for models: image decoders are native code too
                facts = _read_isolated(dataset_file_facts, str(src), suffix, str(tmp), input_shape, display)
            except DataError as e:
                raise DataError(_scrub(_scrub(str(e), tmp, display), src, display)) from e
            except IsolationError as e:
                raise DataError(
                    f"{display} could not be read safely: the data reader {_ISOLATION_WHAT[e.kind]} ({e.reason}); "
                    "nothing was stored. Accepted: an .npz with x and y, or a .zip of class folders "
                    "<class>/<image>.png|jpg"
                ) from e
            except Exception as e:
                raise DataError(
                    f"{display} could not be read as a data set: {type(e).__name__}: {_scrub(str(e), tmp, display)}"
                ) from e
            stored_bytes = tmp.stat().st_size
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
            src.unlink(missing_ok=True)
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT OR IGNORE INTO datasets (id, name, filename, path, n, input_shape, num_classes, bytes,"
                    " sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        ds_id,
                        display,
                        display,
                        str(final),
                        int(facts["samples_count"]),
                        json.dumps(list(facts["input_shape"])),
                        int(facts["num_classes"]),
                        stored_bytes,
                        sha,
                        time.time(),
                    ),
                )
        except BaseException:
            if self._conn().execute("SELECT 1 FROM datasets WHERE id = ?", (ds_id,)).fetchone() is None:
                final.unlink(missing_ok=True)
            raise
        return self.get_dataset(ds_id)

    def list_datasets(self) -> list[DatasetRecord]:
        """The bundled sets first (available or not: see ``unavailable``), then uploads, newest first."""
        rows = self._conn().execute("SELECT * FROM datasets ORDER BY created_at DESC").fetchall()
        return _bundled_records() + [self._dataset_from_row(r) for r in rows]

    def get_dataset(self, ref: str) -> DatasetRecord:
        """The record of a bundled set (by name, even when it is not installed here) or a stored ``"dataset/<sha16>"``.

        Raises:
            NotFoundError: no such data set.
        """
        upload = self.uploaded_dataset(ref)
        if upload is not None:
            return upload
        bundled = _bundled_records(ref)
        if not bundled:
            names = ", ".join(r.id for r in _bundled_records())
            raise NotFoundError(f"no stored data set {ref!r}; use a bundled set ({names}) or an uploaded set's id "
                                "('dataset/<hash>')")
        return bundled[0]

    def uploaded_dataset(self, ref: str) -> DatasetRecord | None:
        """The record of an uploaded data set, or ``None`` when ``ref`` is none (a bundled set's name, say).

        Reads only the database (no torch import), for processes that never load data themselves.
        """
        row = self._conn().execute("SELECT * FROM datasets WHERE id = ?", (ref,)).fetchone()
        return None if row is None else self._dataset_from_row(row)

    def delete_dataset(self, ref: str) -> None:
        """Delete an uploaded data set and its file.

        Raises:
            ValueError: ``ref`` is a bundled set.
            NotFoundError: no such upload.
        """
        if _bundled_records(ref):
            raise ValueError(f"the bundled data set {ref!r} cannot be deleted")
        rec = self.get_dataset(ref)
        with self._write() as conn:
            conn.execute("DELETE FROM datasets WHERE id = ?", (ref,))
        if rec.path is not None:
            rec.path.unlink(missing_ok=True)

    def resolve_data(self, ref: str) -> Dataset:
        """Load the data set a job refers to: a bundled set's name or ``"dataset/<sha16>"``.

        Raises:
            DataError: unknown reference, a bundled set not installed here (with how to install
                it), or an unreadable file.
        """
        from lwdash.data.bundled import is_bundled, load_bundled

        if is_bundled(ref):
            return load_bundled(ref)
        from lwdash.data import DataError, load_npz

        try:
            rec = self.get_dataset(ref)
        except NotFoundError as e:
            raise DataError(str(e)) from None
        assert rec.path is not None
        return load_npz(rec.path, name=rec.name, display_name=rec.filename or rec.name)

    @staticmethod
    def _dataset_from_row(r: sqlite3.Row) -> DatasetRecord:
        return DatasetRecord(
            id=r["id"],
            name=r["name"],
            kind="upload",
            path=Path(r["path"]),
            samples_count=int(r["n"]),
            input_shape=tuple(json.loads(r["input_shape"])),
            num_classes=int(r["num_classes"]),
            size_bytes=int(r["bytes"]),
            created_at=float(r["created_at"]),
            filename=r["filename"],
        )

    # ------------------------------------------------------------------ jobs

    def submit(self, spec: JobSpec) -> str:
        """Queue one job; returns its id."""
        return self.submit_many([spec])[0]

    def submit_many(self, specs: Sequence[JobSpec]) -> list[str]:
        """Queue several jobs in one transaction (all or none); returns their ids in order."""
        now = time.time()
        rows = []
        for spec in specs:
            if not isinstance(spec, JobSpec):
                raise TypeError(f"submit expects JobSpec, got {type(spec).__name__}")
            rows.append((uuid.uuid4().hex, _dumps(asdict(spec)), JobStatus.QUEUED.value, "queued", now, now))
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO jobs (id, spec, status, message, created_at, queued_at) VALUES (?, ?, ?, ?, ?, ?)", rows
            )
        return [r[0] for r in rows]

    def get_job(self, job_id: str) -> JobRecord:
        """The job's current record.

        Raises:
            NotFoundError: no such job.
        """
        row = self._conn().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no job {job_id!r}")
        return self._job_from_row(row)

    def list_jobs(self, limit: int = 200, status: JobStatus | str | Sequence[JobStatus | str] | None = None) -> list[JobRecord]:
        """Jobs, newest first, optionally only those with the given status(es)."""
        params: list[Any] = []
        where = ""
        if status is not None:
            wanted = [status] if isinstance(status, (str, JobStatus)) else list(status)
            values = [JobStatus(s).value for s in wanted]
            where = f"WHERE status IN ({','.join('?' * len(values))})"
            params.extend(values)
        params.append(int(limit))
        rows = self._conn().execute(
            f"SELECT * FROM jobs {where} ORDER BY created_at DESC, rowid DESC LIMIT ?", params
        ).fetchall()
        return [self._job_from_row(r) for r in rows]

    def jobs_of(
        self,
        kind: str,
        model_id: str,
        *,
        data_ref: str | None = None,
        status: Sequence[JobStatus | str] = (),
        limit: int = 200,
    ) -> list[JobRecord]:
        """Jobs of one kind (``JobSpec.kind``) on one model (and data set), newest first, optionally by status."""
        where = ["json_extract(spec, '$.kind') = ?", "json_extract(spec, '$.model_id') = ?"]
        params: list[Any] = [kind, model_id]
        if data_ref is not None:
            where.append("json_extract(spec, '$.data_ref') = ?")
            params.append(data_ref)
        if status:
            values = [JobStatus(s).value for s in status]
            where.append(f"status IN ({','.join('?' * len(values))})")
            params.extend(values)
        rows = self._conn().execute(
            f"SELECT * FROM jobs WHERE {' AND '.join(where)} ORDER BY created_at DESC, rowid DESC LIMIT ?",
            [*params, int(limit)],
        ).fetchall()
        return [self._job_from_row(r) for r in rows]

    def count_jobs(self) -> dict[JobStatus, int]:
        """How many jobs are in each status."""
        rows = self._conn().execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        counts = {s: 0 for s in JobStatus}
        for status, n in rows:
            counts[JobStatus(status)] = int(n)
        return counts

    def claim(self, worker_id: str) -> JobRecord | None:
        """Atomically take the oldest queued job for ``worker_id``; ``None`` if the queue is empty."""
        now = time.time()
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE jobs SET status = 'running', started_at = ?, heartbeat_at = ?, worker = ?,"
                " attempts = attempts + 1, progress = 0, message = 'starting', error = ''"
                " WHERE id = (SELECT id FROM jobs WHERE status = 'queued' ORDER BY queued_at, rowid LIMIT 1)"
                " AND status = 'queued' RETURNING id",
                (now, now, worker_id),
            )
            rows = cur.fetchall()
        if len(rows) != 1:
            return None
        return self.get_job(rows[0][0])

    def update_progress(self, job_id: str, progress: float, message: str) -> bool:
        """Record a running job's progress (0..1) and message; also a heartbeat.

        Returns:
            True if the user asked to cancel the job (the caller may stop early).
        """
        p = min(max(float(progress), 0.0), 1.0) if math.isfinite(progress) else 0.0
        with self._write() as conn:
            row = conn.execute(
                "UPDATE jobs SET progress = ?, message = ?, heartbeat_at = ? WHERE id = ? AND status = 'running'"
                " RETURNING cancel_requested",
                (p, str(message)[:1000], time.time(), job_id),
            ).fetchall()
        return bool(row[0][0]) if row else False

    def heartbeat_job(self, job_id: str) -> bool:
        """Stamp a running job as alive; returns True if cancellation was requested."""
        with self._write() as conn:
            row = conn.execute(
                "UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND status = 'running' RETURNING cancel_requested",
                (time.time(), job_id),
            ).fetchall()
        return bool(row[0][0]) if row else False

    def finish(self, job_id: str, result_id: str) -> bool:
        """Mark a job done with its result. A job declared stale meanwhile still counts as done:
        its result exists. Returns False if the job was not running (or stale-failed)."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE jobs SET status = 'done', progress = 1, message = 'done', error = '', result_id = ?,"
                " finished_at = ?, heartbeat_at = ? WHERE id = ? AND status IN ('running', 'failed')",
                (result_id, time.time(), time.time(), job_id),
            )
            return cur.rowcount == 1

    def fail(self, job_id: str, error: str) -> bool:
        """Mark a queued or running job failed with ``error`` (first line: the reason). False if already final."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE jobs SET status = 'failed', error = ?, message = 'failed', finished_at = ?"
                " WHERE id = ? AND status IN ('running', 'queued')",
                (str(error), time.time(), job_id),
            )
            return cur.rowcount == 1

    def cancel(self, job_id: str) -> JobStatus:
        """Cancel a job: a queued one at once; a running one is flagged and its worker kills it.

        Returns:
            The job's status after the call (``cancelled``, or ``running`` while the worker acts,
            or the terminal status it already had).

        Raises:
            NotFoundError: no such job.
        """
        now = time.time()
        with self._write() as conn:
            found = conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchall()
            row = found[0] if found else None
            if row is None:
                raise NotFoundError(f"no job {job_id!r}")
            status = JobStatus(row[0])
            if status is JobStatus.QUEUED:
                conn.execute(
                    "UPDATE jobs SET status = 'cancelled', message = 'cancelled before it started', finished_at = ?"
                    " WHERE id = ?",
                    (now, job_id),
                )
                return JobStatus.CANCELLED
            if status is JobStatus.RUNNING:
                conn.execute(
                    "UPDATE jobs SET cancel_requested = 1, message = 'cancelling' WHERE id = ?", (job_id,)
                )
            return status

    def mark_cancelled(self, job_id: str) -> bool:
        """The worker's side of :meth:`cancel`: a running job whose process it killed."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE jobs SET status = 'cancelled', message = 'cancelled while running', finished_at = ?"
                " WHERE id = ? AND status = 'running'",
                (time.time(), job_id),
            )
            return cur.rowcount == 1

    def requeue(self, job_id: str, reason: str) -> bool:
        """Put a running job back in the queue (its worker is shutting down), keeping its attempt count."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE jobs SET status = 'queued', message = ?, progress = 0, started_at = NULL,"
                " heartbeat_at = NULL, worker = '' WHERE id = ? AND status = 'running'",
                (f"requeued: {reason}", job_id),
            )
            return cur.rowcount == 1

    def retry(self, job_id: str) -> None:
        """Queue a failed or cancelled job again (at the back of the queue).

        Raises:
            NotFoundError: no such job.
            ValueError: the job is queued, running or done.
        """
        with self._write() as conn:
            found = conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchall()
            row = found[0] if found else None
            if row is None:
                raise NotFoundError(f"no job {job_id!r}")
            status = JobStatus(row[0])
            if status not in (JobStatus.FAILED, JobStatus.CANCELLED):
                raise ValueError(f"only failed or cancelled jobs can be retried; job {job_id} is {status.value}")
            conn.execute(
                "UPDATE jobs SET status = 'queued', progress = 0, message = 'queued (retry)', error = '',"
                " queued_at = ?, started_at = NULL, finished_at = NULL, heartbeat_at = NULL, worker = '',"
                " result_id = NULL, cancel_requested = 0 WHERE id = ?",
                (time.time(), job_id),
            )

    def recover_stale(self, timeout_s: float) -> list[str]:
        """Fail running jobs whose heartbeat is older than ``timeout_s`` (their worker died).

        A stale job whose result was already saved (its process died between saving and
        :meth:`finish`) is marked done instead: its result exists, and failing it would invite a
        retry that stores a second one.

        Returns:
            The ids of the jobs marked failed.
        """
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "UPDATE jobs SET status = 'done', progress = 1, message = 'done', error = '', finished_at = ?"
                " WHERE status = 'running' AND result_id IS NOT NULL AND COALESCE(heartbeat_at, started_at, queued_at) < ?",
                (now, now - timeout_s),
            )
            rows = conn.execute(
                "UPDATE jobs SET status = 'failed', finished_at = ?, message = 'failed',"
                " error = 'worker stopped responding (no heartbeat for ' || CAST(CAST(? - COALESCE(heartbeat_at,"
                " started_at, queued_at) AS INTEGER) AS TEXT) || ' s); the job was not finished — retry it'"
                " WHERE status = 'running' AND COALESCE(heartbeat_at, started_at, queued_at) < ? RETURNING id",
                (now, now, now - timeout_s),
            ).fetchall()
        return [r[0] for r in rows]

    @staticmethod
    def _job_from_row(r: sqlite3.Row) -> JobRecord:
        d = json.loads(r["spec"])
        names = {f.name for f in fields(JobSpec)}
        spec = JobSpec(**{k: v for k, v in d.items() if k in names})
        return JobRecord(
            id=r["id"],
            spec=spec,
            status=JobStatus(r["status"]),
            progress=float(r["progress"]),
            message=r["message"],
            error=r["error"],
            created_at=float(r["created_at"]),
            started_at=r["started_at"],
            finished_at=r["finished_at"],
            heartbeat_at=r["heartbeat_at"],
            worker=r["worker"],
            result_id=r["result_id"],
            extra={"queued_at": float(r["queued_at"])},
            attempts=int(r["attempts"]),
            cancel_requested=bool(r["cancel_requested"]),
        )

    # ------------------------------------------------------------------ results

    def save_result(self, job_id: str | None, spec: JobSpec, run_output: RunOutput, artifact_dir: Path) -> str:
        """Store a run's output; its artifacts move from ``artifact_dir`` to ``artifacts/<result_id>/``.

        ``artifact_dir`` should be inside the data dir (``tmp/``), so the move is one rename.

        Returns:
            The new result's id.
        """
        from lwdash.jobs.runner import job_label

        result_id = uuid.uuid4().hex
        src = Path(artifact_dir).resolve()
        dest = self.artifacts_dir / result_id
        artifacts: dict[str, str] = {}
        for name, path in run_output.artifacts.items():
            p = Path(path).resolve()
            try:
                artifacts[name] = str(p.relative_to(src))
            except ValueError:
                artifacts[name] = p.name
        try:
            os.replace(src, dest)
        except OSError:
            shutil.move(str(src), str(dest))
        for name, path in run_output.artifacts.items():
            p = Path(path).resolve()
            if not p.is_relative_to(src) and p.exists():  # an artifact written elsewhere: copy it in
                shutil.copy2(p, dest / artifacts[name])

        key = str(spec.technique.get("type", ""))
        try:
            from lwdash.techniques import get_technique

            family = get_technique(key).family
        except Exception:  # an unregistered key must not lose a measured result
            family = ""
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO results (id, job_id, model_id, data_ref, technique, family, label, config, seed,"
                    " threads, baseline, compressed, baseline_weights, compressed_weights, notes, steps, environment,"
                    " artifact_dir, artifacts, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        result_id,
                        job_id,
                        spec.model_id,
                        spec.data_ref,
                        key,
                        family,
                        spec.label or job_label(spec.technique),
                        _dumps(spec.technique),
                        int(spec.seed),
                        int(spec.threads),
                        _dumps(run_output.baseline.to_dict()),
                        _dumps(run_output.compressed.to_dict()),
                        _dumps(run_output.baseline_weights),
                        _dumps(run_output.compressed_weights),
                        _dumps(list(run_output.notes)),
                        _dumps(list(run_output.steps)),
                        _dumps(run_output.environment),
                        str(dest),
                        _dumps(artifacts),
                        time.time(),
                    ),
                )
                if job_id is not None:
                    conn.execute("UPDATE jobs SET result_id = ? WHERE id = ?", (result_id, job_id))
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        return result_id

    def list_results(self, *, with_weights: bool = True) -> list[ResultRecord]:
        """Every result, newest first. ``with_weights=False`` skips the (large) weight summaries."""
        cols = "*" if with_weights else _RESULT_COLUMNS_NO_WEIGHTS
        rows = self._conn().execute(f"SELECT {cols} FROM results ORDER BY created_at DESC, rowid DESC").fetchall()
        return [self._result_from_row(r) for r in rows]

    def latest_result(self, model_id: str, data_ref: str) -> ResultRecord | None:
        """The newest result of ``model_id`` on ``data_ref`` (without weight summaries), or ``None``."""
        row = self._conn().execute(
            f"SELECT {_RESULT_COLUMNS_NO_WEIGHTS} FROM results WHERE model_id = ? AND data_ref = ?"
            " ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (model_id, data_ref),
        ).fetchone()
        return None if row is None else self._result_from_row(row)

    def get_result(self, result_id: str) -> ResultRecord:
        """One result with its weight summaries.

        Raises:
            NotFoundError: no such result.
        """
        row = self._conn().execute("SELECT * FROM results WHERE id = ?", (result_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no result {result_id!r}")
        return self._result_from_row(row)

    def delete_result(self, result_id: str) -> None:
        """Delete a result and its artifact folder.

        Raises:
            NotFoundError: no such result.
        """
        rec = self.get_result(result_id)
        with self._write() as conn:
            conn.execute("DELETE FROM results WHERE id = ?", (result_id,))
            conn.execute("UPDATE jobs SET result_id = NULL WHERE result_id = ?", (result_id,))
        if rec.artifact_dir.is_relative_to(self.artifacts_dir):
            shutil.rmtree(rec.artifact_dir, ignore_errors=True)

    @staticmethod
    def _result_from_row(r: sqlite3.Row) -> ResultRecord:
        from lwdash.measure.metrics import Metrics

        artifact_dir = Path(r["artifact_dir"])
        artifacts = {name: artifact_dir / rel for name, rel in json.loads(r["artifacts"]).items()}
        return ResultRecord(
            id=r["id"],
            job_id=r["job_id"],
            model_id=r["model_id"],
            data_ref=r["data_ref"],
            technique=r["technique"],
            family=r["family"],
            label=r["label"],
            config=json.loads(r["config"]),
            baseline=Metrics.from_dict(json.loads(r["baseline"])),
            compressed=Metrics.from_dict(json.loads(r["compressed"])),
            baseline_weights=json.loads(r["baseline_weights"]),
            compressed_weights=json.loads(r["compressed_weights"]),
            notes=tuple(json.loads(r["notes"])),
            steps=tuple(json.loads(r["steps"])),
            environment=json.loads(r["environment"]),
            artifact_dir=artifact_dir,
            artifacts=artifacts,
            created_at=float(r["created_at"]),
            seed=int(r["seed"]),
            threads=int(r["threads"]),
        )

    # ------------------------------------------------------------------ analyses

    def save_analysis(self, job_id: str | None, spec: JobSpec, payload: dict[str, Any]) -> str:
        """Store an analysis job's JSON output (e.g. a sensitivity scan); returns its id."""
        analysis_id = uuid.uuid4().hex
        with self._write() as conn:
            conn.execute(
                "INSERT INTO analyses (id, job_id, kind, model_id, data_ref, config, payload, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (analysis_id, job_id, spec.kind, spec.model_id, spec.data_ref, _dumps(spec.technique),
                 _dumps(payload), time.time()),
            )
        return analysis_id

    def get_analysis(self, analysis_id: str) -> AnalysisRecord:
        """One stored analysis.

        Raises:
            NotFoundError: no such analysis.
        """
        row = self._conn().execute("SELECT * FROM analyses WHERE id = ?", (analysis_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no analysis {analysis_id!r}")
        return self._analysis_from_row(row)

    def list_analyses(self, model_id: str | None = None, kind: str | None = None) -> list[AnalysisRecord]:
        """Stored analyses, newest first, optionally of one model and / or one kind."""
        clause, params = _where(model_id=model_id, kind=kind)
        rows = self._conn().execute(
            f"SELECT * FROM analyses {clause} ORDER BY created_at DESC, rowid DESC", params
        ).fetchall()
        return [self._analysis_from_row(r) for r in rows]

    @staticmethod
    def _analysis_from_row(r: sqlite3.Row) -> AnalysisRecord:
        return AnalysisRecord(
            id=r["id"], job_id=r["job_id"], kind=r["kind"], model_id=r["model_id"], data_ref=r["data_ref"],
            config=json.loads(r["config"]), payload=json.loads(r["payload"]), created_at=float(r["created_at"]),
        )

    # ------------------------------------------------------------------ searches

    def create_search(self, model_id: str, data_ref: str, config: dict[str, Any]) -> str:
        """Record a new search as ``running``; a worker proposes and queues its trials. Returns its id."""
        search_id = uuid.uuid4().hex
        with self._write() as conn:
            conn.execute(
                "INSERT INTO searches (id, model_id, data_ref, config, status, message, created_at)"
                " VALUES (?, ?, ?, ?, 'running', 'waiting for a worker to propose the first trial', ?)",
                (search_id, model_id, data_ref, _dumps(config), time.time()),
            )
        return search_id

    def get_search(self, search_id: str) -> SearchRecord:
        """One search.

        Raises:
            NotFoundError: no such search.
        """
        row = self._conn().execute("SELECT * FROM searches WHERE id = ?", (search_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no search {search_id!r}")
        return self._search_from_row(row)

    def list_searches(self, *, status: str | None = None, model_id: str | None = None) -> list[SearchRecord]:
        """Searches, newest first, optionally only those with ``status`` and / or of ``model_id``."""
        clause, params = _where(status=status, model_id=model_id)
        rows = self._conn().execute(
            f"SELECT * FROM searches {clause} ORDER BY created_at DESC, rowid DESC", params
        ).fetchall()
        return [self._search_from_row(r) for r in rows]

    def search_trials(self, search_id: str) -> list[SearchTrialRecord]:
        """The trials proposed so far, in trial order, with their jobs' status and result."""
        rows = self._conn().execute(
            "SELECT t.search_id, t.trial, t.job_id, t.params, t.system_attrs, j.status, j.result_id, j.error,"
            " r.id, r.compressed, r.baseline FROM search_trials t LEFT JOIN jobs j ON j.id = t.job_id"
            " LEFT JOIN results r ON r.id = j.result_id WHERE t.search_id = ? ORDER BY t.trial",
            (search_id,),
        ).fetchall()
        return [
            SearchTrialRecord(
                search_id=r[0], trial=int(r[1]), job_id=r[2], params=json.loads(r[3]), system_attrs=json.loads(r[4]),
                job_status=r[5] or JobStatus.FAILED.value, result_id=r[8], error=r[7] or ("" if r[5] else "job lost"),
                metrics=json.loads(r[9]) if r[9] else None, baseline=json.loads(r[10]) if r[10] else None,
            )
            for r in rows
        ]

    def add_search_trial(
        self, search_id: str, trial: int, spec: JobSpec, params: dict[str, Any], system_attrs: dict[str, Any]
    ) -> str | None:
        """Queue trial ``trial`` of a running search as a job, unless it exists already.

        One transaction: the trial row and its job appear together or not at all, so two workers
        advancing the same search cannot queue the same trial twice.

        Returns:
            The new job's id, or ``None`` if trial ``trial`` was already queued or the search is over.
        """
        job_id = uuid.uuid4().hex
        now = time.time()
        with self._write() as conn:
            live = conn.execute(
                "SELECT 1 FROM searches WHERE id = ? AND status = 'running' AND cancel_requested = 0", (search_id,)
            ).fetchall()
            cur = conn.execute(
                "INSERT OR IGNORE INTO search_trials (search_id, trial, job_id, params, system_attrs)"
                " SELECT ?, ?, ?, ?, ? WHERE ?",
                (search_id, trial, job_id, _dumps(params), _dumps(system_attrs), 1 if live else 0),
            )
            if cur.rowcount != 1:
                return None
            conn.execute(
                "INSERT INTO jobs (id, spec, status, message, created_at, queued_at) VALUES (?, ?, 'queued', 'queued', ?, ?)",
                (job_id, _dumps(asdict(spec)), now, now),
            )
            conn.execute("UPDATE searches SET message = ? WHERE id = ?",
                         (f"trial {trial + 1} queued", search_id))
        return job_id

    def set_search_message(self, search_id: str, message: str) -> None:
        """Say where a running search stands."""
        with self._write() as conn:
            conn.execute("UPDATE searches SET message = ? WHERE id = ? AND status = 'running'", (message, search_id))

    def cancel_search(self, search_id: str) -> str:
        """Ask a running search to stop: the next worker pass cancels its queued and running trials.

        Returns:
            The search's status (``running`` until a worker acts, or the status it already had).

        Raises:
            NotFoundError: no such search.
        """
        with self._write() as conn:
            found = conn.execute("SELECT status FROM searches WHERE id = ?", (search_id,)).fetchall()
            if not found:
                raise NotFoundError(f"no search {search_id!r}")
            if found[0][0] == "running":
                conn.execute("UPDATE searches SET cancel_requested = 1, message = 'cancelling' WHERE id = ?",
                             (search_id,))
            return str(found[0][0])

    def finish_search(self, search_id: str, status: str, message: str, summary: dict[str, Any]) -> bool:
        """End a running search with its summary; ``False`` if it had already ended."""
        if status not in ("done", "failed", "cancelled"):
            raise ValueError(f"a search ends done, failed or cancelled, not {status!r}")
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE searches SET status = ?, message = ?, summary = ?, finished_at = ?"
                " WHERE id = ? AND status = 'running'",
                (status, message, _dumps(summary), time.time(), search_id),
            )
            return cur.rowcount == 1

    @staticmethod
    def _search_from_row(r: sqlite3.Row) -> SearchRecord:
        return SearchRecord(
            id=r["id"], model_id=r["model_id"], data_ref=r["data_ref"], config=json.loads(r["config"]),
            status=r["status"], message=r["message"], created_at=float(r["created_at"]),
            finished_at=None if r["finished_at"] is None else float(r["finished_at"]),
            cancel_requested=bool(r["cancel_requested"]), summary=json.loads(r["summary"]),
        )

    # ------------------------------------------------------------------ workers

    def register_worker(self, worker_id: str, pid: int, host: str | None = None) -> None:
        """Record (or refresh) a worker process as alive."""
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO workers (id, pid, host, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET pid = excluded.pid, host = excluded.host,"
                " heartbeat_at = excluded.heartbeat_at",
                (worker_id, int(pid), host or socket.gethostname(), now, now),
            )

    def worker_heartbeat(self, worker_id: str) -> None:
        """Stamp a worker as alive."""
        with self._write() as conn:
            conn.execute("UPDATE workers SET heartbeat_at = ? WHERE id = ?", (time.time(), worker_id))

    def unregister_worker(self, worker_id: str) -> None:
        """Remove a worker's row (on a clean exit)."""
        with self._write() as conn:
            conn.execute("DELETE FROM workers WHERE id = ?", (worker_id,))

    def live_workers(self, max_age_s: float = 10.0) -> list[WorkerRecord]:
        """Workers that heartbeated within ``max_age_s``; on this host, only those whose process exists."""
        rows = self._conn().execute(
            "SELECT * FROM workers WHERE heartbeat_at >= ? ORDER BY started_at", (time.time() - max_age_s,)
        ).fetchall()
        host = socket.gethostname()
        live = []
        for r in rows:
            rec = WorkerRecord(
                id=r["id"], pid=int(r["pid"]), host=r["host"], started_at=float(r["started_at"]),
                heartbeat_at=float(r["heartbeat_at"]),
            )
            if rec.host == host and not _pid_alive(rec.pid):
                continue
            live.append(rec)
        return live


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) still answers kill(0): check /proc where there is one.
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True
