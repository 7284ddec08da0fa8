"""Load and faults, bounded: 50 queued jobs over 2 workers (2 job processes each), 3 job processes
SIGKILLed mid-job. Loopback only (one SQLite file, local processes).

Every job ends terminal, the killed ones failed with the signal, every other one done with one
readable result whose bytes are right; no job ran twice (each run logs itself); both workers
survive. The figures are printed (run with ``-s`` to see them).
"""
from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from _jobs_harness import Worker, artifact_bytes, fast, job_pid, wait_all_terminal

from lwdash.jobs.spec import JobStatus
from lwdash.workspace import SqliteStore

pytestmark = pytest.mark.slow

JOBS = 50
KILLED = 3



def test_fifty_jobs_two_workers_three_job_processes_killed(tmp_path: Path, workers: list[Worker]) -> None:
    t0 = time.monotonic()
    store = SqliteStore(tmp_path / "data")
    runs_log = tmp_path / "runs.log"
    tokens = [f"j{i:02d}" for i in range(JOBS)]
    # Three of them last long enough to be caught mid-job (spread over the queue); the rest are quick.
    slow_at = {5, 20, 35}
    ids = store.submit_many([
        fast(t, seconds=6.0 if i in slow_at else 0.3, runs_log=str(runs_log)) for i, t in enumerate(tokens)
    ])
    token_of = dict(zip(ids, tokens, strict=True))
    targets = [ids[i] for i in sorted(slow_at)]

    workers.extend([Worker(store.data_dir, concurrency=2), Worker(store.data_dir, concurrency=2)])
    killed: list[str] = []
    deadline = time.monotonic() + 90
    while len(killed) < KILLED:  # kill each target's process once it is inside its run
        for job_id in targets:
            if job_id in killed:
                continue
            job = store.get_job(job_id)
            pid = job_pid(workers, job_id)
            if job.status is JobStatus.RUNNING and job.message == "test: fast job" and pid:
                os.kill(pid, signal.SIGKILL)
                killed.append(job_id)
            assert not job.status.terminal, f"{job_id} ended before it could be killed: {job.status}"
        assert time.monotonic() < deadline, "the targets never ran"
        time.sleep(0.05)

    jobs = wait_all_terminal(store, ids, 120)
    elapsed_s = time.monotonic() - t0

    by_status = Counter(j.status for j in jobs)
    assert by_status == {JobStatus.DONE: JOBS - KILLED, JobStatus.FAILED: KILLED}, by_status
    for j in jobs:
        if j.status is JobStatus.FAILED:
            assert j.id in killed and "killed by signal 9 (SIGKILL)" in j.error, j.error
    # Both workers took part; each job was claimed once and ran once (the claim is atomic).
    assert len({j.worker for j in jobs}) == 2
    assert all(j.attempts == 1 for j in jobs)
    runs = Counter(line.split()[0] for line in runs_log.read_text().splitlines())
    assert runs == Counter(tokens), "some job ran twice or never"

    results = store.list_results()
    per_job = Counter(r.job_id for r in results)
    assert set(per_job) == {j.id for j in jobs if j.status is JobStatus.DONE}
    assert max(per_job.values()) == 1
    for r in results:
        assert r.artifacts["model.onnx"].read_bytes() == artifact_bytes(token_of[r.job_id])
    lost = sum(1 for j in jobs if j.status is JobStatus.DONE and j.result_id not in {r.id for r in results})
    assert lost == 0
    assert all(w.alive() for w in workers)
    assert all(w.stop() == 0 for w in workers)
    assert list(store.tmp_dir.iterdir()) == []
    print(f"\nload/fault: {JOBS} jobs over 2 workers x 2 processes; {len(killed)} job processes SIGKILLed;"
          f" {by_status[JobStatus.DONE]} done, {by_status[JobStatus.FAILED]} failed (the killed ones);"
          f" results {len(results)}, duplicates 0, lost {lost}; {elapsed_s:.1f} s")
