"""The durable backend: every kind of record in one SQLite file, files in folders beside it.

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
each job is claimed by exactly one worker. The schema is the one every earlier version wrote
(schema 1): a data directory from before the storage interface opens unchanged.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lwdash.store.backend import (
    AREAS,
    KEYS,
    ORDER,
    Key,
    Row,
    Where,
    check_kind,
    check_revised,
    iter_conditions,
    key_tuple,
)
from lwdash.store.records import StoreBusy
from lwdash.store.schema import SCHEMA, SCHEMA_VERSION, TABLES, triggers

__all__ = ["DB_FILENAME", "SqliteBackend"]

DB_FILENAME = "lwdash.sqlite3"
BUSY_TIMEOUT_MS = 30_000

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


class SqliteBackend:
    """The :class:`lwdash.store.backend.Backend` on one SQLite file under ``data_dir``.

    Safe to share between threads (one connection per thread) and between processes (WAL
    mode, short write transactions, busy timeout).
    """

    def __init__(self, data_dir: Path | str) -> None:
        self.root = Path(data_dir).expanduser().resolve()
        self.db_path = self.root / DB_FILENAME
        for d in (self.root, *(self.root / a for a in AREAS)):
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
            self._local.depth = 0
        return conn

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One ``BEGIN IMMEDIATE`` transaction (the write lock up front); nested calls join it."""
        conn = self._conn()
        if self._local.depth:
            self._local.depth += 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        conn.execute("BEGIN IMMEDIATE")
        self._local.depth = 1
        try:
            yield
        except BaseException:
            self._local.depth = 0
            conn.execute("ROLLBACK")
            raise
        self._local.depth = 0
        conn.execute("COMMIT")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """:meth:`atomic`, yielding this thread's connection (for statements of the schema's own)."""
        with self.atomic():
            yield self._conn()

    def _init_schema(self) -> None:
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.db_path} was written by a newer lwdash (schema {version}, this one reads {SCHEMA_VERSION})"
                )
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            conn.executemany(
                "INSERT OR IGNORE INTO revisions (name, rev) VALUES (?, 0)", [(t,) for t in TABLES]
            )
            for stmt in triggers().splitlines():
                conn.execute(stmt)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def area(self, name: str) -> Path:
        if name not in AREAS:
            raise ValueError(f"unknown area {name!r}; known: {', '.join(AREAS)}")
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def revision(self, *kinds: str) -> int:
        names = check_revised(kinds)
        marks = ",".join("?" * len(names))
        row = self._conn().execute(f"SELECT COALESCE(SUM(rev), 0) FROM revisions WHERE name IN ({marks})", names).fetchone()
        return int(row[0])

    # ------------------------------------------------------------------ records

    def put(self, kind: str, row: Row) -> bool:
        check_kind(kind)
        cols = list(row)
        with self.atomic():
            cur = self._conn().execute(
                f"INSERT OR IGNORE INTO {kind} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [row[c] for c in cols],
            )
            return cur.rowcount == 1

    def get(self, kind: str, key: Key) -> Row | None:
        check_kind(kind)
        clause, params = _key_clause(kind, key)
        r = self._conn().execute(f"SELECT * FROM {kind} WHERE {clause}", params).fetchone()
        return None if r is None else dict(r)

    def query(
        self,
        kind: str,
        where: Where | None = None,
        *,
        order_by: Sequence[str] | None = None,
        descending: bool = True,
        limit: int | None = None,
        omit: Sequence[str] = (),
    ) -> list[Row]:
        check_kind(kind)
        clause, params = _where_clause(where)
        cols = "*"
        if omit:
            names = [r[1] for r in self._conn().execute(f"PRAGMA table_info({kind})").fetchall()]
            cols = ", ".join(f"'{{}}' AS {n}" if n in omit else n for n in names)
        direction = " DESC" if descending else ""
        columns = ORDER.get(kind, ("created_at",)) if order_by is None else tuple(order_by)
        order = ", ".join(f"{c}{direction}" for c in (*columns, "rowid"))
        sql = f"SELECT {cols} FROM {kind} {clause} ORDER BY {order}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [dict(r) for r in self._conn().execute(sql, params).fetchall()]

    def update(self, kind: str, key: Key, changes: Row, *, where: Where | None = None) -> bool:
        check_kind(kind)
        key_clause, key_params = _key_clause(kind, key)
        clause, params = _where_clause(where)
        extra = f" AND {clause.removeprefix('WHERE ')}" if clause else ""
        sets = ", ".join(f"{c} = ?" for c in changes)
        with self.atomic():
            cur = self._conn().execute(
                f"UPDATE {kind} SET {sets} WHERE {key_clause}{extra}", [*changes.values(), *key_params, *params]
            )
            return cur.rowcount == 1

    def delete(self, kind: str, key: Key) -> bool:
        check_kind(kind)
        clause, params = _key_clause(kind, key)
        with self.atomic():
            return self._conn().execute(f"DELETE FROM {kind} WHERE {clause}", params).rowcount == 1

    # ------------------------------------------------------------------ the queue

    def claim(self, worker_id: str, now: float) -> Row | None:
        with self.atomic():
            rows = self._conn().execute(
                "UPDATE jobs SET status = 'running', started_at = ?, heartbeat_at = ?, worker = ?,"
                " attempts = attempts + 1, progress = 0, message = 'starting', error = ''"
                " WHERE id = (SELECT id FROM jobs WHERE status = 'queued' ORDER BY queued_at, rowid LIMIT 1)"
                " AND status = 'queued' RETURNING *",
                (now, now, worker_id),
            ).fetchall()
        return dict(rows[0]) if len(rows) == 1 else None

    def set_state(self, job_id: str, changes: Row, *, from_states: Sequence[str], stale_before: float | None = None) -> bool:
        where: dict[str, Any] = {"status": list(from_states)}
        if stale_before is None:
            return self.update("jobs", job_id, changes, where=where)
        sets = ", ".join(f"{c} = ?" for c in changes)
        marks = ",".join("?" * len(from_states))
        with self.atomic():
            cur = self._conn().execute(
                f"UPDATE jobs SET {sets} WHERE id = ? AND status IN ({marks})"
                " AND COALESCE(heartbeat_at, started_at, queued_at) < ?",
                [*changes.values(), job_id, *from_states, stale_before],
            )
            return cur.rowcount == 1

    def heartbeat(self, job_id: str, now: float, changes: Row | None = None) -> bool | None:
        changes = {**(changes or {}), "heartbeat_at": now}
        sets = ", ".join(f"{c} = ?" for c in changes)
        with self.atomic():
            rows = self._conn().execute(
                f"UPDATE jobs SET {sets} WHERE id = ? AND status = 'running' RETURNING cancel_requested",
                [*changes.values(), job_id],
            ).fetchall()
        return bool(rows[0][0]) if rows else None

    def stale(self, before: float) -> list[Row]:
        rows = self._conn().execute(
            "SELECT * FROM jobs WHERE status = 'running' AND COALESCE(heartbeat_at, started_at, queued_at) < ?"
            " ORDER BY queued_at, rowid",
            (before,),
        ).fetchall()
        return [dict(r) for r in rows]


def _key_clause(kind: str, key: Key) -> tuple[str, list[Any]]:
    cols = KEYS.get(kind, ("id",))
    return " AND ".join(f"{c} = ?" for c in cols), list(key_tuple(kind, key))


def _where_clause(where: Where | None) -> tuple[str, list[Any]]:
    parts: list[str] = []
    params: list[Any] = []
    for column, field, values in iter_conditions(where):
        if not column.isidentifier() or (field is not None and not field.isidentifier()):
            raise ValueError(f"not a column name: {column}{'.' + field if field else ''}")
        expr = column if field is None else f"json_extract({column}, '$.{field}')"
        if not values:
            parts.append("0")
        elif len(values) == 1:
            parts.append(f"{expr} = ?")
        else:
            parts.append(f"{expr} IN ({','.join('?' * len(values))})")
        params.extend(values)
    return (f"WHERE {' AND '.join(parts)}" if parts else ""), params
