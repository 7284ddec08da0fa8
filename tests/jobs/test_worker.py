"""The real worker process: runs jobs in child processes, survives their crashes, cancels, times out."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from _jobs_harness import Worker, wait_job
from _jobs_harness import spec as _spec

from lwdash.jobs.spec import JobStatus
from lwdash.workspace import SqliteStore

_wait = wait_job


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "data")



def test_killed_job_fails_with_the_signal_and_the_worker_serves_the_next(
    store: SqliteStore, workers: list[Worker]
) -> None:
    crash, good = store.submit_many([_spec("test_sigkill"), _spec("magnitude_pruning", amount=0.5)])
    w = Worker(store.data_dir)
    workers.append(w)

    job = _wait(store, crash, lambda j: j.status.terminal, 90)
    assert job.status is JobStatus.FAILED
    assert "killed by signal 9 (SIGKILL)" in job.error and "out of memory" in job.error

    job = _wait(store, good, lambda j: j.status.terminal, 90)
    assert job.status is JobStatus.DONE, job.error
    assert w.proc.poll() is None, "the worker died with its job"
    result = store.get_result(job.result_id)  # type: ignore[arg-type]
    assert result.artifacts["model.onnx"].stat().st_size > 0
    assert result.artifacts["result.json"].is_file() and result.artifacts["model_card.md"].is_file()
    assert result.compressed.nonzero_params_count < result.baseline.nonzero_params_count
    assert [x.id for x in store.live_workers()] == [job.worker]
    assert list(store.tmp_dir.iterdir()) == []  # the job's temp dir was moved into artifacts/

    assert w.stop() == 0
    assert store.live_workers() == []  # a clean exit unregisters


def test_cancel_time_limit_and_requeue_on_shutdown(store: SqliteStore, workers: list[Worker]) -> None:
    to_cancel, to_time_out = store.submit_many([_spec("test_sleep"), _spec("test_sleep")])
    w = Worker(store.data_dir, concurrency=2, LWDASH_JOB_TIMEOUT_S="15")
    workers.append(w)

    # Cancel once the job's own process has reported progress (it is really running).
    _wait(store, to_cancel, lambda j: j.status is JobStatus.RUNNING and j.message != "starting", 60)
    t0 = time.monotonic()
    assert store.cancel(to_cancel) is JobStatus.RUNNING
    job = _wait(store, to_cancel, lambda j: j.status.terminal, 10)
    assert job.status is JobStatus.CANCELLED and time.monotonic() - t0 < 5

    job = _wait(store, to_time_out, lambda j: j.status.terminal, 60)
    assert job.status is JobStatus.FAILED and "time limit of 15 s (LWDASH_JOB_TIMEOUT_S)" in job.error
    assert job.finished_at - job.started_at >= 15  # type: ignore[operator]

    # SIGTERM while a job runs: the worker kills it and puts it back in the queue.
    again = store.submit(_spec("test_sleep"))
    _wait(store, again, lambda j: j.status is JobStatus.RUNNING, 30)
    assert w.stop() == 0
    job = store.get_job(again)
    assert job.status is JobStatus.QUEUED and job.attempts == 1 and "worker shut down" in job.message


def test_ensure_worker_starts_one_detached_worker(tmp_path: Path) -> None:
    from lwdash.jobs.worker import ensure_worker

    data_dir = tmp_path / "data"
    os.environ.pop("LWDASH_NO_WORKER", None)
    assert ensure_worker(data_dir) is True
    try:
        assert ensure_worker(data_dir) is False  # recorded at once: no second worker
        store = SqliteStore(data_dir)
        (rec,) = store.live_workers()
        time.sleep(1.5)
        assert store.live_workers()[0].heartbeat_at > rec.heartbeat_at  # the worker itself is heartbeating
        assert (data_dir / "worker.log").exists()
    finally:
        for rec in SqliteStore(data_dir).live_workers():
            os.killpg(rec.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while SqliteStore(data_dir).live_workers():
        assert time.monotonic() < deadline, "worker did not exit on SIGTERM"
        time.sleep(0.1)


def test_a_search_survives_a_killed_trial_and_a_worker_restart(store: SqliteStore, workers: list[Worker]) -> None:
    """The search's trials are ordinary jobs on the real worker: one is SIGKILLed (a failed trial, told to the
    sampler), the worker is stopped mid-trial and another started (the trial is requeued and run once more);
    the search still ends with every trial accounted for and one result per measured trial."""
    from _jobs_harness import job_pid

    from lwdash.search import KnobRange, SearchConfig

    cfg = SearchConfig(technique="magnitude_pruning", space=(KnobRange("amount", low=0.2, high=0.9),), trials=4)
    search_id = store.create_search("sample/digits_mlp", "digits", cfg.to_dict())
    first = Worker(store.data_dir)
    workers.append(first)

    def trial_job(k: int, status: JobStatus) -> str:
        deadline = time.monotonic() + 90
        while True:
            trials = store.search_trials(search_id)
            if len(trials) > k and store.get_job(trials[k].job_id).status is status:
                if status is not JobStatus.RUNNING or job_pid(workers, trials[k].job_id):
                    return trials[k].job_id
            assert time.monotonic() < deadline, f"trial {k} never {status.value}: {trials}"
            time.sleep(0.1)

    killed = trial_job(0, JobStatus.RUNNING)
    os.kill(job_pid(workers, killed) or 0, signal.SIGKILL)
    job = _wait(store, killed, lambda j: j.status.terminal, 60)
    assert job.status is JobStatus.FAILED and "signal 9" in job.error

    interrupted = trial_job(1, JobStatus.RUNNING)
    assert first.stop() == 0
    assert store.get_job(interrupted).status is JobStatus.QUEUED  # requeued by the shutdown
    second = Worker(store.data_dir)
    workers.append(second)

    deadline = time.monotonic() + 240
    while store.get_search(search_id).status == "running":
        assert time.monotonic() < deadline, store.get_search(search_id).message
        time.sleep(0.2)
    search = store.get_search(search_id)
    assert search.status == "done" and search.message == "3 of 4 trials measured"
    trials = store.search_trials(search_id)
    assert [t.job_status for t in trials] == ["failed", "done", "done", "done"]
    results = [r for r in store.list_results(with_weights=False) if r.job_id in {t.job_id for t in trials}]
    assert sorted(r.job_id for r in results) == sorted(t.job_id for t in trials[1:])  # one result each
    assert store.get_job(interrupted).attempts == 2
    assert search.summary["measured"] == 3 and search.summary["failed"] == 1 and search.summary["front"]
