"""A worker the app starts exits once idle with no app alive; a worker started by hand keeps serving."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _jobs_harness import ROOT, Worker, fast, pid_alive, scan, wait_job, worker_env

from lwdash.jobs.spec import JobStatus
from lwdash.workspace import SqliteStore

pytestmark = pytest.mark.slow

IDLE_S = "1"

# A stand-in for the Streamlit server: asks for a worker (as app.py does), prints its pid, lives N s.
_APP = """
import sys, time
from lwdash.jobs.worker import ensure_worker
from lwdash.workspace import SqliteStore
assert ensure_worker(sys.argv[1]) is True
print(SqliteStore(sys.argv[1]).live_workers()[0].pid, flush=True)
time.sleep(float(sys.argv[2]))
"""


def _env() -> dict[str, str]:
    env = worker_env(LWDASH_WORKER_IDLE_EXIT_S=IDLE_S)
    env.pop("LWDASH_NO_WORKER", None)
    return env


def _wait_gone(pid: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still running after {timeout_s} s"
        time.sleep(0.1)


@pytest.fixture
def pids() -> Iterator[list[int]]:
    started: list[int] = []
    yield started
    for pid in started:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_app_started_worker_exits_when_idle_and_orphaned(tmp_path: Path, pids: list[int]) -> None:
    store = SqliteStore(tmp_path / "data")
    job_id = store.submit(scan())  # a real job: the app starts the real `python -m lwdash worker`, no test code
    app = subprocess.Popen([sys.executable, "-c", _APP, str(store.data_dir), "120"], cwd=ROOT, env=_env(),
                           stdout=subprocess.PIPE, text=True, start_new_session=True)
    pids.append(app.pid)
    assert app.stdout is not None
    worker_pid = int(app.stdout.readline())
    pids.append(worker_pid)

    # It serves the queue, and stays while its app lives, although idle for longer than IDLE_S.
    assert wait_job(store, job_id, lambda j: j.status.terminal, 60).status is JobStatus.DONE
    time.sleep(3 * float(IDLE_S))
    assert app.poll() is None and pid_alive(worker_pid)

    # The app is gone: the idle worker exits by itself, cleanly (its row unregistered).
    app.kill()
    app.wait()
    _wait_gone(worker_pid, 20)
    assert store.live_workers() == []


def test_hand_started_worker_keeps_serving_without_an_app(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "data")
    w = Worker(store.data_dir, LWDASH_WORKER_IDLE_EXIT_S=IDLE_S)
    try:
        time.sleep(4 * float(IDLE_S))
        assert w.alive()
        job_id = store.submit(fast("b"))
        assert wait_job(store, job_id, lambda j: j.status.terminal, 60).status is JobStatus.DONE
    finally:
        assert w.stop() == 0
