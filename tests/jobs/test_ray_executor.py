"""The Ray executor against a real local Ray started by this module (one ray.init for all tests).

The driver loop runs on a thread of this process, connected to that Ray; its tasks run in Ray's
own worker processes, which register the test-only techniques through the ``worker_process_setup_hook``
this module passes to ``ray.init`` (a Ray feature: nothing in lwdash reads a test setting).
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from _jobs_harness import wait_job as _wait

from lwdash.config import get_settings
from lwdash.jobs.spec import JobSpec, JobStatus
from lwdash.workspace import SqliteStore

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def _spec(technique: str, **data: object) -> JobSpec:
    return JobSpec(model_id="sample/digits_mlp", data_ref="digits",
                   technique={"type": technique, "version": 1, "data": dict(data)})


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    import ray

    env = {
        "RAY_AUTH_MODE": "disabled",  # no token written under the home directory
        "RAY_USAGE_STATS_ENABLED": "0",
        # Ray's worker processes inherit this environment: lwdash and the test-only techniques importable.
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    temp_dir = tmp_path_factory.mktemp("ray")  # short: Ray's socket paths live under it
    # Every Ray worker process of this test runs the hook first: importing the module registers the techniques.
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=str(temp_dir), log_to_driver=False,
             runtime_env={"worker_process_setup_hook": "_worker_test_techniques.ray_worker_setup"})
    try:
        yield
    finally:
        ray.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def served(ray_local: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    """A store served by a Ray driver (on a thread) with a 1500 MB per-job memory limit."""
    from lwdash.jobs.ray_executor import run_ray_worker

    data_dir = tmp_path_factory.mktemp("data")
    settings = replace(get_settings(data_dir), heartbeat_interval_s=0.5, job_memory_mb=1500)
    stop = threading.Event()
    driver = threading.Thread(target=run_ray_worker, args=(settings,),
                              kwargs={"poll_s": 0.1, "concurrency": 2, "stop_event": stop}, daemon=True)
    driver.start()
    try:
        yield SqliteStore(data_dir)
    finally:
        stop.set()
        driver.join(60)
        assert not driver.is_alive(), "the Ray driver did not stop"


def test_the_ray_executor_satisfies_the_protocol_and_runs_a_job_through_the_shared_loop(
    ray_local: None, tmp_path: Path
) -> None:
    from lwdash.jobs.loop import Executor, serve
    from lwdash.jobs.ray_executor import RayExecutor

    store = SqliteStore(tmp_path / "data")
    settings = replace(get_settings(store.data_dir), heartbeat_interval_s=0.5)
    executor = RayExecutor(settings, store)
    assert isinstance(executor, Executor) and executor.name == "ray"
    job_id = store.submit(_spec("test_raise"))  # registered in the Ray workers by the setup hook only
    assert serve(store, executor, settings, worker_id="protocol-ray", concurrency=1, once=True, poll_s=0.05) == 0
    job = store.get_job(job_id)
    assert job.status is JobStatus.FAILED and job.worker == "protocol-ray"
    assert job.error.startswith("RuntimeError: test: the technique broke") and "Traceback" in job.error
    assert store.live_workers() == [] and executor.in_flight == {}


def test_ray_job_runs_and_its_artifacts_come_back_as_bytes(served: SqliteStore) -> None:
    store = served
    job_id = store.submit(_spec("magnitude_pruning", amount=0.5))
    job = _wait(store, job_id, lambda j: j.status.terminal, 180)
    assert job.status is JobStatus.DONE, job.error
    result = store.get_result(job.result_id)  # type: ignore[arg-type]
    # Written by the driver from the task's bytes, inside the store's artifacts folder.
    assert result.artifact_dir.parent == store.artifacts_dir
    assert result.artifacts["model.onnx"].stat().st_size > 1000
    on_disk = json.loads(result.artifacts["result.json"].read_text())
    assert on_disk["compressed"]["nonzero_params_count"] == result.compressed.nonzero_params_count
    assert result.compressed.nonzero_params_count < 0.7 * result.baseline.nonzero_params_count
    assert list(store.tmp_dir.iterdir()) == []
    assert [w.id for w in store.live_workers()] == [job.worker] and "-ray-" in job.worker


def test_ray_progress_reaches_the_store_and_cancel_stops_the_task(served: SqliteStore) -> None:
    store = served
    job_id = store.submit(_spec("test_sleep"))
    # The task's own progress, relayed by the driver while the task runs.
    job = _wait(store, job_id, lambda j: j.message == "test: sleeping", 120)
    assert job.status is JobStatus.RUNNING and 0.0 < job.progress < 1.0
    t0 = time.monotonic()
    assert store.cancel(job_id) is JobStatus.RUNNING
    job = _wait(store, job_id, lambda j: j.status.terminal, 20)
    assert job.status is JobStatus.CANCELLED and time.monotonic() - t0 < 10


def test_ray_task_crash_and_memory_limit_fail_the_job_with_the_reason(served: SqliteStore) -> None:
    store = served
    crash, hog, after = store.submit_many(
        [_spec("test_segfault"), _spec("test_alloc", chunk_mb=32, total_mb=4096), _spec("test_raise")]
    )
    job = _wait(store, crash, lambda j: j.status.terminal, 120)
    assert job.status is JobStatus.FAILED and "Ray worker process running the job died" in job.error
    job = _wait(store, hog, lambda j: j.status.terminal, 120)
    assert job.status is JobStatus.FAILED, job.error
    assert "exceeded the memory limit of 1500 MB (LWDASH_JOB_MEMORY_MB)" in job.error
    # The driver keeps serving: an error raised inside the task comes back with its traceback.
    job = _wait(store, after, lambda j: j.status.terminal, 120)
    assert job.status is JobStatus.FAILED
    assert job.error.startswith("RuntimeError: test: the technique broke") and "Traceback" in job.error


def test_the_ray_driver_advances_searches(served: SqliteStore) -> None:
    """A search's trials are proposed by the driver and run as Ray tasks; the search ends with its front."""
    from lwdash.search import KnobRange, SearchConfig

    store = served
    cfg = SearchConfig(technique="magnitude_pruning", space=(KnobRange("amount", low=0.3, high=0.8),), trials=2,
                       parallel=2, sampler="random")
    search_id = store.create_search("sample/digits_mlp", "digits", cfg.to_dict())
    deadline = time.monotonic() + 180
    while store.get_search(search_id).status == "running":
        assert time.monotonic() < deadline, store.get_search(search_id).message
        time.sleep(0.2)
    search = store.get_search(search_id)
    assert search.status == "done" and search.summary["measured"] == 2, search.message
    for t in store.search_trials(search_id):
        job = store.get_job(t.job_id)
        assert "-ray-" in job.worker and job.spec.search_id == search_id
        assert store.get_result(t.result_id).config["data"]["amount"] == t.params["amount"]  # type: ignore[arg-type]
