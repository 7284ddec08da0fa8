"""The real worker process: runs jobs in child processes, survives their crashes, cancels, times out."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lwdash.jobs.spec import JobRecord, JobSpec, JobStatus
from lwdash.store import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
TEST_TECHNIQUES = "_worker_test_techniques"  # tests/jobs/_worker_test_techniques.py


def _spec(technique: str, **data: object) -> JobSpec:
    return JobSpec(model_id="sample/digits_mlp", data_ref="digits",
                   technique={"type": technique, "version": 1, "data": dict(data)})


def _wait(store: SqliteStore, job_id: str, ok: Callable[[JobRecord], bool], timeout_s: float) -> JobRecord:
    deadline = time.monotonic() + timeout_s
    while True:
        job = store.get_job(job_id)
        if ok(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job.status.value} ({job.message!r}) after {timeout_s} s")
        time.sleep(0.1)


class Worker:
    """A real `python -m lwdash worker` process with the test-only techniques importable."""

    def __init__(self, data_dir: Path, *, concurrency: int = 1, **env: str) -> None:
        full_env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]),
            "LWDASH_TEST_TECHNIQUES": TEST_TECHNIQUES,
            "LWDASH_HEARTBEAT_S": "0.5",
            **env,
        }
        self.log = data_dir / "test-worker.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lwdash", "worker", "--data-dir", str(data_dir), "--poll", "0.1",
                 "--concurrency", str(concurrency)],
                cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def stop(self, timeout_s: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError("worker did not stop on SIGTERM:\n" + self.log.read_text()[-3000:]) from None


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "data")


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for w in started:
        if w.proc.poll() is None:
            os.killpg(w.proc.pid, signal.SIGKILL)
            w.proc.wait()


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
    assert job.status is JobStatus.FAILED and "time limit of 15 s" in job.error
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
