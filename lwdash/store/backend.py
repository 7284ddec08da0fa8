"""The storage interface: a few verbs over encoded records, a job queue and artifact folders.

Everything lwdash keeps goes through one :class:`Backend`. It knows nothing of models, data
sets or techniques: it stores *encoded rows* (flat mappings of column -> ``str``/``int``/
``float``/``None``, JSON already serialised by the domain module that owns the record) under a
*kind* (one of :data:`KINDS`), and hands out folders for files. Two implementations:
:class:`lwdash.store.sqlite.SqliteBackend` (the durable one, shared between processes) and
:class:`lwdash.store.memory.MemoryBackend` (one process, for unit tests and scripts).

Verbs:

- records: :meth:`~Backend.put`, :meth:`~Backend.get`, :meth:`~Backend.query`,
  :meth:`~Backend.update`, :meth:`~Backend.delete`;
- the queue (rows of kind ``"jobs"``): :meth:`~Backend.claim`, :meth:`~Backend.set_state`,
  :meth:`~Backend.heartbeat`, :meth:`~Backend.stale`;
- both: :meth:`~Backend.atomic` (one all-or-nothing transaction), :meth:`~Backend.revision`
  (a change counter per kind, for caches), :meth:`~Backend.area` (a folder for files),
  :meth:`~Backend.close`.

A ``where`` mapping selects rows by equality: ``{"status": "queued"}``; a list or tuple value
means "any of" (``{"status": ["queued", "running"]}``); a dotted key reads one field of a JSON
column (``{"spec.model_id": "sample/digits_cnn"}``); ``None`` values are ignored. Errors: a
locked database raises :class:`lwdash.store.records.StoreBusy`, never the engine's own type.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "AREAS", "KEYS", "KINDS", "ORDER", "REVISED", "Backend", "Key", "Row", "Where",
    "check_kind", "check_revised", "drop_none", "iter_conditions", "key_of", "key_tuple", "last_alive", "rebase",
]

#: The kinds of record a backend keeps.
KINDS = ("models", "datasets", "jobs", "results", "workers", "analyses", "searches", "search_trials", "annotations")
#: The kinds whose changes :meth:`Backend.revision` counts.
REVISED = ("models", "datasets", "jobs", "results", "workers", "analyses", "searches", "annotations")
#: Each kind's key columns (``("id",)`` where not listed).
KEYS: Mapping[str, tuple[str, ...]] = {"search_trials": ("search_id", "trial")}
#: Each kind's default order for :meth:`Backend.query` (``("created_at",)`` where not listed).
ORDER: Mapping[str, tuple[str, ...]] = {"workers": ("started_at",), "search_trials": ("trial",),
                                         "annotations": ("updated_at",)}
#: The folders a backend hands out under its root.
AREAS = ("models", "datasets", "artifacts", "tmp", "logs")

Row = dict[str, Any]
Key = str | tuple[Any, ...]
Where = Mapping[str, Any]


def drop_none(where: Where | None) -> dict[str, Any]:
    """The conditions of ``where`` that select something (``None`` means "any")."""
    return {k: v for k, v in (where or {}).items() if v is not None}


class Backend(Protocol):
    """The narrow storage interface every store implementation provides."""

    #: The data directory: the backend's files (and the areas) live under it.
    root: Path

    # ---------------------------------------------------------------- records

    def put(self, kind: str, row: Row) -> bool:
        """Insert ``row``; ``False`` (and nothing changes) when a row with its key exists."""
        ...

    def get(self, kind: str, key: Key) -> Row | None:
        """The row with ``key``, or ``None``."""
        ...

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
        """Rows matching ``where``, ordered by ``order_by`` (default: the kind's :data:`ORDER`) then insertion
        order, both ``descending`` or not.

        ``omit`` names (large) columns to leave out: they read as ``"{}"``.
        """
        ...

    def update(self, kind: str, key: Key, changes: Row, *, where: Where | None = None) -> bool:
        """Apply ``changes`` to the row with ``key`` if it also matches ``where``; ``True`` if it did."""
        ...

    def delete(self, kind: str, key: Key) -> bool:
        """Remove the row with ``key``; ``True`` if there was one."""
        ...

    # ---------------------------------------------------------------- the queue

    def claim(self, worker_id: str, now: float) -> Row | None:
        """Atomically take the oldest queued job (``queued_at``, then insertion order) for ``worker_id``.

        The job becomes ``running`` with ``started_at = heartbeat_at = now``, ``worker = worker_id``,
        ``attempts + 1``, progress 0, message ``"starting"``, error cleared. ``None`` if none is queued.
        Exactly one of several concurrent claimers gets each job.
        """
        ...

    def set_state(self, job_id: str, changes: Row, *, from_states: Sequence[str], stale_before: float | None = None) -> bool:
        """Apply ``changes`` to a job whose status is one of ``from_states`` (and, when
        ``stale_before`` is given, whose last sign of life is older than it); ``True`` if it did."""
        ...

    def heartbeat(self, job_id: str, now: float, changes: Row | None = None) -> bool | None:
        """Stamp a *running* job's ``heartbeat_at`` (and apply ``changes``).

        Returns its ``cancel_requested`` flag, or ``None`` when the job is not running.
        """
        ...

    def stale(self, before: float) -> list[Row]:
        """Running jobs whose last sign of life (heartbeat, else start, else queueing) is older than ``before``."""
        ...

    # ---------------------------------------------------------------- both

    def atomic(self) -> AbstractContextManager[None]:
        """A transaction: the verbs called inside commit together or not at all (nesting joins the outer one)."""
        ...

    def revision(self, *kinds: str) -> int:
        """A counter that grows whenever rows of the named kinds (default: all of :data:`REVISED`) change."""
        ...

    def area(self, name: str) -> Path:
        """The folder for one kind of file (one of :data:`AREAS`), created on first use."""
        ...

    def close(self) -> None:
        """Release this thread's resources (a backend stays usable: it reopens on the next call)."""
        ...


def key_of(kind: str, row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The key values of ``row`` for ``kind``."""
    return tuple(row[c] for c in KEYS.get(kind, ("id",)))


def key_tuple(kind: str, key: Key) -> tuple[Any, ...]:
    """``key`` as a tuple of the kind's key columns' values, checked for length."""
    cols = KEYS.get(kind, ("id",))
    values = key if isinstance(key, tuple) else (key,)
    if len(values) != len(cols):
        raise ValueError(f"a {kind} key has {len(cols)} parts ({', '.join(cols)}), got {values!r}")
    return values


def check_kind(kind: str) -> None:
    """Raise ``ValueError`` for a kind no backend keeps."""
    if kind not in KINDS:
        raise ValueError(f"unknown record kind {kind!r}; known: {', '.join(KINDS)}")


def check_revised(kinds: Sequence[str]) -> tuple[str, ...]:
    """The kinds to count (default: all), checked."""
    names = tuple(kinds) or REVISED
    unknown = set(names) - set(REVISED)
    if unknown:
        raise ValueError(f"unknown tables {sorted(unknown)}; known: {', '.join(REVISED)}")
    return names


def iter_conditions(where: Where | None) -> Iterator[tuple[str, str | None, list[Any]]]:
    """``(column, json_field_or_None, allowed_values)`` for each condition of ``where``."""
    for name, value in drop_none(where).items():
        column, _, field = name.partition(".")
        values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        yield column, field or None, values


def rebase(stored: str, area: Path) -> Path:
    """A stored file's path in this data directory's ``area``, where the file is there under its stored name.

    Rows keep absolute paths (as every version did); a data directory copied or moved elsewhere
    still reads its own files, because each sits in its area under the same (generated) name.
    """
    path = Path(stored)
    here = area / path.name
    return here if here.exists() else path


def last_alive(row: Mapping[str, Any]) -> float:
    """A job's last sign of life, as :meth:`Backend.stale` reads it: its heartbeat, else its start, else its queueing."""
    for col in ("heartbeat_at", "started_at", "queued_at"):
        if row.get(col) is not None:
            return float(row[col])
    return 0.0
