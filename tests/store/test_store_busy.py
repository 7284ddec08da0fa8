"""A database locked past the busy timeout surfaces as the store's own StoreBusy, never as sqlite3's error."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import lwdash.store.sqlite as sqlite_store
from lwdash.jobs.spec import JobSpec, JobStatus
from lwdash.store import StoreBusy
from lwdash.workspace import SqliteStore

SPEC = JobSpec(model_id="sample/digits_mlp", data_ref="digits", technique={"type": "magnitude_pruning", "data": {}})


def test_a_write_blocked_past_the_busy_timeout_raises_store_busy_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_MS", 100)
    store = SqliteStore(tmp_path / "data")
    kept = store.submit(SPEC)
    other = sqlite3.connect(store.db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process mid-write, for longer than the timeout
    try:
        for call in (lambda: store.submit(SPEC), lambda: store.claim("w"), lambda: store.fail(kept, "x")):
            with pytest.raises(StoreBusy, match="database is locked") as err:
                call()
            assert not isinstance(err.value, sqlite3.Error)  # the store's own type, not sqlite3's
        assert [j.id for j in store.list_jobs()] == [kept]  # reads still answer (WAL), nothing was written
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.claim("w").id == kept  # type: ignore[union-attr]  # once the lock is gone the same calls work
    assert store.get_job(kept).status is JobStatus.RUNNING


def test_other_sqlite_errors_are_not_store_busy(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "data")
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        store.backend._conn().execute("SELECT * FROM no_such_table")
