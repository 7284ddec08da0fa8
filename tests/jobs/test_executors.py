"""The executor protocol and the shared job loop, with the real local executor in this process.

(The Ray executor's protocol test is in ``test_ray_executor.py``, beside the local Ray it needs.)
"""
from __future__ import annotations

import logging
import os
import signal
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from _jobs_harness import scan

from lwdash.config import get_settings
from lwdash.jobs.local import LocalExecutor
from lwdash.jobs.loop import Executor, serve
from lwdash.jobs.spec import JobRecord, JobStatus
from lwdash.store.sqlite import DB_FILENAME
from lwdash.workspace import SqliteStore


@pytest.fixture(scope="module")
def zygote() -> Iterator[None]:
    """The local executor's zygote, started once for this module's tests and stopped after them."""
    from multiprocessing import forkserver

    yield
    # Torch and the engines are loaded in it: not kept for later test modules (killed: its own exit takes seconds).
    pid = forkserver._forkserver._forkserver_pid
    if pid:
        os.kill(pid, signal.SIGKILL)
    forkserver._forkserver._stop()


@pytest.fixture
def store(tmp_path: Path, zygote: None) -> SqliteStore:
    return SqliteStore(tmp_path / "data")


def _serve_once(store: SqliteStore, executor: Executor, worker_id: str) -> int:
    settings = replace(get_settings(store.data_dir), heartbeat_interval_s=0.2)
    return serve(store, executor, settings, worker_id=worker_id, concurrency=1, once=True, poll_s=0.05)


def test_the_local_executor_satisfies_the_protocol_and_runs_a_job_through_the_shared_loop(store: SqliteStore) -> None:
    executor = LocalExecutor(store)
    assert isinstance(executor, Executor) and executor.name == "local"
    assert not isinstance(object(), Executor)
    job_id = store.submit(scan())

    assert _serve_once(store, executor, "protocol-local") == 0

    job = store.get_job(job_id)
    assert job.status is JobStatus.DONE, job.error
    assert job.worker == "protocol-local" and job.attempts == 1 and job.progress == 1.0
    analysis = store.get_analysis(job.result_id or "")
    assert analysis.kind == "sensitivity" and analysis.payload["levels"] == [8.0]
    assert (store.logs_dir / f"job-{job_id}.log").is_file()  # it ran in a process of its own
    assert store.live_workers() == [] and list(store.tmp_dir.iterdir()) == []


class _LocksTheStoreOnStart(LocalExecutor):
    """The real local executor; starting a job also holds the database's write lock for ``hold_s``."""

    def __init__(self, store: SqliteStore, hold_s: float) -> None:
        super().__init__(store)
        self.hold_s = hold_s
        self.released = threading.Event()

    def start(self, job: JobRecord) -> Any:
        handle = super().start(job)
        other = sqlite3.connect(self.store.data_dir / DB_FILENAME, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")

        def release() -> None:
            other.execute("COMMIT")
            other.close()
            self.released.set()

        threading.Timer(self.hold_s, release).start()
        return handle


def test_a_store_busy_past_its_timeout_costs_the_loop_a_pass_not_the_job(
    tmp_path: Path, zygote: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import lwdash.store.sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_MS", 100)  # this process's connections give up after 0.1 s
    store = SqliteStore(tmp_path / "data")
    job_id = store.submit(scan())
    executor = _LocksTheStoreOnStart(store, hold_s=1.5)
    with caplog.at_level(logging.WARNING, logger="lwdash.worker"):
        assert _serve_once(store, executor, "busy-local") == 0
    assert executor.released.is_set()
    busy = [r.getMessage() for r in caplog.records if r.getMessage().startswith("store busy")]
    assert busy and "database is locked" in busy[0]  # StoreBusy, caught by the loop, which went on
    job = store.get_job(job_id)
    assert job.status is JobStatus.DONE, job.error  # the job's own process waited out the lock
    assert store.live_workers() == []
