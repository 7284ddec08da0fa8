"""An in-memory :class:`lwdash.store.backend.Backend`: one process, no database file.

For unit tests and single-user scripts. Rows live in dictionaries behind one re-entrant lock;
:meth:`MemoryBackend.atomic` holds the lock and restores a snapshot when its block raises, so
it keeps the same all-or-nothing promise as SQLite's transactions. Files (uploads, artifacts,
logs) still go to folders under ``root``: they are files by nature. Nothing survives the
process, and other processes (a worker, a job's child process) cannot see it: use
:class:`lwdash.store.sqlite.SqliteBackend` for those.
"""
from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lwdash.store.backend import (
    AREAS,
    KINDS,
    ORDER,
    Key,
    Row,
    Where,
    check_kind,
    check_revised,
    iter_conditions,
    key_of,
    key_tuple,
    last_alive,
)

__all__ = ["MemoryBackend"]

# What SQLite's schema fills in when an insert leaves a column out.
_DEFAULTS: dict[str, Row] = {
    "jobs": {"progress": 0.0, "message": "", "error": "", "started_at": None, "finished_at": None,
             "heartbeat_at": None, "worker": "", "attempts": 0, "result_id": None, "cancel_requested": 0},
    "searches": {"message": "", "summary": "{}", "finished_at": None, "cancel_requested": 0},
    "annotations": {"name": "", "note": "", "starred": 0},
}


class MemoryBackend:
    """Every kind of record in dictionaries; the same verbs and semantics as the SQLite backend."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._rows: dict[str, dict[tuple[Any, ...], Row]] = {k: {} for k in KINDS}
        self._seq: dict[tuple[str, tuple[Any, ...]], int] = {}
        self._counter = itertools.count()
        self._revs: dict[str, int] = dict.fromkeys(KINDS, 0)
        self._depth = 0

    # ---------------------------------------------------------------- plumbing

    @contextmanager
    def atomic(self) -> Iterator[None]:
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            snapshot = ({k: {key: dict(r) for key, r in rows.items()} for k, rows in self._rows.items()},
                        dict(self._seq), dict(self._revs))
            self._depth = 1
            try:
                yield
            except BaseException:
                self._rows, self._seq, self._revs = snapshot
                raise
            finally:
                self._depth = 0

    def _changed(self, kind: str) -> None:
        self._revs[kind] += 1

    def close(self) -> None:
        """Nothing to release."""

    def area(self, name: str) -> Path:
        if name not in AREAS:
            raise ValueError(f"unknown area {name!r}; known: {', '.join(AREAS)}")
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def revision(self, *kinds: str) -> int:
        with self._lock:
            return sum(self._revs[k] for k in check_revised(kinds))

    # ---------------------------------------------------------------- records

    def put(self, kind: str, row: Row) -> bool:
        check_kind(kind)
        with self.atomic():
            key = key_of(kind, row)
            if key in self._rows[kind]:
                return False
            self._rows[kind][key] = {**_DEFAULTS.get(kind, {}), **row}
            self._seq[(kind, key)] = next(self._counter)
            self._changed(kind)
            return True

    def get(self, kind: str, key: Key) -> Row | None:
        check_kind(kind)
        with self._lock:
            row = self._rows[kind].get(key_tuple(kind, key))
            return None if row is None else dict(row)

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
        order = ORDER.get(kind, ("created_at",)) if order_by is None else tuple(order_by)
        conditions = list(iter_conditions(where))
        with self._lock:
            found = [(key, r) for key, r in self._rows[kind].items() if _matches(r, conditions)]
            found.sort(key=lambda kr: (*(_sortable(kr[1].get(c)) for c in order), self._seq[(kind, kr[0])]),
                       reverse=descending)
            rows = [{c: ("{}" if c in omit else v) for c, v in r.items()} for _, r in found]
        return rows if limit is None else rows[: int(limit)]

    def update(self, kind: str, key: Key, changes: Row, *, where: Where | None = None) -> bool:
        check_kind(kind)
        with self.atomic():
            row = self._rows[kind].get(key_tuple(kind, key))
            if row is None or not _matches(row, list(iter_conditions(where))):
                return False
            row.update(changes)
            self._changed(kind)
            return True

    def delete(self, kind: str, key: Key) -> bool:
        check_kind(kind)
        with self.atomic():
            k = key_tuple(kind, key)
            if self._rows[kind].pop(k, None) is None:
                return False
            self._seq.pop((kind, k), None)
            self._changed(kind)
            return True

    # ---------------------------------------------------------------- the queue

    def claim(self, worker_id: str, now: float) -> Row | None:
        with self.atomic():
            queued = self.query("jobs", {"status": "queued"}, order_by=("queued_at",), descending=False, limit=1)
            if not queued:
                return None
            row = self._rows["jobs"][(queued[0]["id"],)]
            row.update(status="running", started_at=now, heartbeat_at=now, worker=worker_id,
                       attempts=int(row["attempts"]) + 1, progress=0.0, message="starting", error="")
            self._changed("jobs")
            return dict(row)

    def set_state(self, job_id: str, changes: Row, *, from_states: Sequence[str], stale_before: float | None = None) -> bool:
        with self.atomic():
            row = self._rows["jobs"].get((job_id,))
            if row is None or row["status"] not in from_states:
                return False
            if stale_before is not None and not last_alive(row) < stale_before:
                return False
            row.update(changes)
            self._changed("jobs")
            return True

    def heartbeat(self, job_id: str, now: float, changes: Row | None = None) -> bool | None:
        with self.atomic():
            row = self._rows["jobs"].get((job_id,))
            if row is None or row["status"] != "running":
                return None
            row.update({**(changes or {}), "heartbeat_at": now})
            self._changed("jobs")
            return bool(row["cancel_requested"])

    def stale(self, before: float) -> list[Row]:
        running = self.query("jobs", {"status": "running"}, order_by=("queued_at",), descending=False)
        return [r for r in running if last_alive(r) < before]


def _sortable(value: Any) -> tuple[int, Any]:
    return (0, 0) if value is None else (1, value)  # SQLite sorts NULL first


def _matches(row: Row, conditions: list[tuple[str, str | None, list[Any]]]) -> bool:
    for column, field, values in conditions:
        value = row.get(column)
        if field is not None:
            try:
                value = json.loads(value).get(field) if isinstance(value, str) else None
            except (ValueError, AttributeError):
                value = None
        if value not in values:
            return False
    return True
