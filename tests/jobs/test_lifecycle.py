"""Job lifecycle on a real worker: cancel (queued), crashes, errors, memory and time limits, retry.

One worker serves every case at once (concurrency 3), and must still be serving at the end.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from _jobs_harness import Worker, fast, spec, wait_all_terminal, wait_job

from lwdash.jobs.spec import JobStatus
from lwdash.workspace import SqliteStore

pytestmark = pytest.mark.slow


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "data")



def test_every_way_a_job_can_end_and_the_worker_survives(
    store: SqliteStore, workers: list[Worker], tmp_path: Path
) -> None:
    # Cancel of a queued job: immediate, and no worker ever runs it.
    never = store.submit(fast("never"))
    assert store.cancel(never) is JobStatus.CANCELLED

    flaky_flag = tmp_path / "flaky-ran-once"
    segv, broken, hog, huge, slow, flaky = store.submit_many([
        spec("test_segfault"),
        spec("test_raise"),
        spec("test_alloc", chunk_mb=64, total_mb=8192, pause_s=0.25),  # slow growth, caught by the worker's RSS check (polled every 0.5 s) before the address-space cap
        spec("test_alloc", chunk_mb=20000, total_mb=20000),  # one 20 GB allocation: the address-space cap
        spec("test_sleep", seconds=600),
        fast("flaky", fail_once=str(flaky_flag)),
    ])
    w = Worker(store.data_dir, concurrency=3, LWDASH_JOB_MEMORY_MB="1500", LWDASH_JOB_TIMEOUT_S="10")
    workers.append(w)
    jobs = {j.id: j for j in wait_all_terminal(store, [segv, broken, hog, huge, slow, flaky], 120)}

    assert store.get_job(never).status is JobStatus.CANCELLED and store.get_job(never).attempts == 0

    job = jobs[segv]
    assert job.status is JobStatus.FAILED
    assert job.error.startswith("the job's process was killed by signal 11 (SIGSEGV) — a crash in native code")

    job = jobs[broken]  # the error, then the traceback text
    assert job.status is JobStatus.FAILED
    assert job.error.startswith("RuntimeError: test: the technique broke")
    assert "Traceback (most recent call last)" in job.error and "apply_raise" in job.error

    job = jobs[hog]
    assert job.status is JobStatus.FAILED
    assert job.error.startswith("the job exceeded the memory limit of 1500 MB (LWDASH_JOB_MEMORY_MB): its processes held")

    job = jobs[huge]
    assert job.status is JobStatus.FAILED
    assert job.error.startswith("the job exceeded the memory limit of 1500 MB (LWDASH_JOB_MEMORY_MB): an allocation failed")

    job = jobs[slow]
    assert job.status is JobStatus.FAILED
    assert job.error.startswith("the job ran past its time limit of 10 s (LWDASH_JOB_TIMEOUT_S)")
    assert job.finished_at - job.started_at >= 10  # type: ignore[operator]

    # Retry re-queues a failed job; it runs again and this time succeeds, with exactly one result.
    job = jobs[flaky]
    assert job.status is JobStatus.FAILED and "fails on its first run" in job.error
    store.retry(flaky)
    assert store.get_job(flaky).status is JobStatus.QUEUED
    job = wait_job(store, flaky, lambda j: j.status.terminal, 60)
    assert job.status is JobStatus.DONE and job.attempts == 2 and job.error == ""
    assert [r.id for r in store.list_results() if r.job_id == flaky] == [job.result_id]
    with pytest.raises(ValueError, match="only failed or cancelled"):
        store.retry(flaky)

    # Through all of that the worker stayed up, and left no temp files behind.
    assert w.alive(), w.log.read_text()[-3000:]
    assert list(store.tmp_dir.iterdir()) == []
    assert w.stop() == 0
