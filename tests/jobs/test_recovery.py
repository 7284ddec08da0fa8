"""Recovery: SIGKILL a worker (and its process group) mid-batch, start a new one.

Every result stored before the kill stays intact (same ids, same artifact bytes), every job the
dead worker was running ends failed with the reason (nothing stuck as running), the rest of the
batch runs on the new worker, and no job gets two results.
"""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from _jobs_harness import Worker, artifact_bytes, fast, job_pid, pid_alive, wait_all_terminal

from lwdash.jobs.spec import JobStatus
from lwdash.workspace import SqliteStore

pytestmark = pytest.mark.slow

BATCH = 12



def test_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(tmp_path: Path, workers: list[Worker]) -> None:
    store = SqliteStore(tmp_path / "data")
    tokens = [f"r{i}" for i in range(BATCH)]
    ids = store.submit_many([fast(t, seconds=0.8) for t in tokens])
    token_of = dict(zip(ids, tokens, strict=True))
    env = {"LWDASH_STALE_TIMEOUT_S": "3"}

    first = Worker(store.data_dir, concurrency=2, **env)
    workers.append(first)
    deadline = time.monotonic() + 90
    while True:  # mid-batch: some results stored, two jobs running in their own processes
        counts = store.count_jobs()
        running = store.list_jobs(status=JobStatus.RUNNING)
        if counts[JobStatus.DONE] >= 4 and len(running) == 2 and all(j.message == "test: fast job" for j in running):
            break
        assert time.monotonic() < deadline, f"batch did not get going: {counts}"
        time.sleep(0.05)
    victims = {j.id: job_pid(workers, j.id) for j in running}
    assert all(victims.values()), victims
    first.kill_group()  # the worker and its zygote; the jobs' processes are in their own sessions

    before = {r.job_id: (r.id, r.artifacts["model.onnx"].read_bytes()) for r in store.list_results()}
    assert len(before) >= 4
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in victims.values() if p):  # orphaned job processes stop by themselves
        assert time.monotonic() < deadline, "a job process outlived its worker"
        time.sleep(0.1)

    second = Worker(store.data_dir, concurrency=2, **env)
    workers.append(second)
    jobs = wait_all_terminal(store, ids, 120)

    # Nothing left running; the jobs the dead worker ran are failed with the reason, the rest done.
    by_status = Counter(j.status for j in jobs)
    assert by_status[JobStatus.DONE] + by_status[JobStatus.FAILED] == BATCH
    for j in jobs:
        if j.status is JobStatus.FAILED:
            assert j.id in victims, j.error
            assert "worker stopped responding" in j.error or "its worker was gone" in j.error, j.error
    assert by_status[JobStatus.DONE] >= BATCH - len(victims)

    # Results stored before the kill: intact (same result ids, same bytes).
    results = store.list_results()
    now = {r.job_id: (r.id, r.artifacts["model.onnx"].read_bytes()) for r in results}
    for job_id, (result_id, data) in before.items():
        assert now[job_id] == (result_id, data)
    # Exactly one result per done job, none for the others, every artifact readable with its bytes.
    per_job = Counter(r.job_id for r in results)
    assert all(n == 1 for n in per_job.values()), per_job
    assert set(per_job) == {j.id for j in jobs if j.status is JobStatus.DONE}
    for r in results:
        assert r.artifacts["model.onnx"].read_bytes() == artifact_bytes(token_of[r.job_id])
        assert r.artifacts["result.json"].is_file()
    assert second.stop() == 0
    assert list(store.tmp_dir.iterdir()) == []
