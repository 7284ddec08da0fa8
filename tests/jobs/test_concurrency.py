"""Concurrency of the store's queue: WAL mode, and an atomic claim under real multi-process contention."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from _jobs_harness import ROOT, fast

from lwdash.jobs.spec import JobStatus
from lwdash.store.sqlite import DB_FILENAME
from lwdash.workspace import SqliteStore

CLAIMERS = 4
JOBS = 200

# Each claimer process: say it is ready (imports done, store open), wait for the "go" file so all
# start together, then claim until the queue is empty, yielding the CPU after each claim as a worker
# running the job would (on 2 cores, one claimer could otherwise drain the queue in one time slice).
_CLAIMER = """
import json, os, sys, time
from pathlib import Path
from lwdash.workspace import SqliteStore
data_dir, go, name = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
store = SqliteStore(data_dir)
(go.parent / f"ready-{name}").touch()
while not go.exists():
    time.sleep(0.005)
got = []
while (job := store.claim(name)) is not None:
    got.append(job.id)
    time.sleep(0.002)
print(json.dumps(got))
"""


def test_store_uses_wal_journal(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "data")
    with sqlite3.connect(tmp_path / "data" / DB_FILENAME) as conn:  # a fresh connection: the file's mode
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_concurrent_claimers_never_take_the_same_job(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "data")
    ids = store.submit_many([fast(f"c{i}") for i in range(JOBS)])
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", _CLAIMER, str(store.data_dir), str(go), f"claimer-{i}"],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(CLAIMERS)
    ]
    deadline = time.monotonic() + 120
    while sum(1 for _ in tmp_path.glob("ready-*")) < CLAIMERS and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()
    claimed: dict[str, list[str]] = {}
    for i, p in enumerate(procs):
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        claimed[f"claimer-{i}"] = json.loads(out)

    every = [job_id for got in claimed.values() for job_id in got]
    assert len(every) == len(set(every)) == JOBS  # each job claimed once, none lost
    assert set(every) == set(ids)
    assert sum(1 for got in claimed.values() if got) >= 2, "no contention happened"
    for name, got in claimed.items():
        for job_id in got:
            job = store.get_job(job_id)
            assert job.status is JobStatus.RUNNING and job.worker == name and job.attempts == 1
    assert store.claim("late") is None
