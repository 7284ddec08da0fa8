"""Immediate mode: claim -> compute -> record in the calling process, stored exactly as a worker stores it."""
from __future__ import annotations

from pathlib import Path

import pytest
from _jobs_harness import scan, spec

from lwdash.jobs import run_inline, run_queued
from lwdash.jobs.compute import job_kinds, register_job_kind
from lwdash.jobs.spec import JobSpec, JobStatus
from lwdash.workspace import SqliteStore


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "data")


def test_run_inline_runs_a_real_job_and_stores_its_result_as_a_worker_would(store: SqliteStore) -> None:
    assert run_inline(store) is None  # nothing queued
    job_id = store.submit(spec("magnitude_pruning", amount=0.5))

    job = run_inline(store, job_id)

    assert job is not None and job.id == job_id
    assert job.status is JobStatus.DONE, job.error
    assert (job.worker, job.attempts, job.progress, job.message) == ("inline", 1, 1.0, "done")
    result = store.get_result(job.result_id or "")
    assert result.job_id == job_id and result.artifact_dir.parent == store.artifacts_dir
    assert result.artifacts["model.onnx"].stat().st_size > 1000 and result.artifacts["model_card.md"].is_file()
    assert result.compressed.nonzero_params_count < 0.7 * result.baseline.nonzero_params_count
    assert list(store.tmp_dir.iterdir()) == []  # the run's folder was moved into artifacts/
    assert run_inline(store) is None


def test_run_queued_records_failures_in_order_and_run_inline_refuses_a_job_out_of_turn(store: SqliteStore) -> None:
    bad, unknown, measured = store.submit_many([
        spec("magnitude_pruning", amount=1.5),
        JobSpec(model_id="sample/digits_mlp", data_ref="digits", technique={"type": "x", "data": {}}, kind="nope"),
        scan(),
    ])
    with pytest.raises(ValueError, match=f"job {measured} is not next in the queue \\(job {bad} is\\)"):
        run_inline(store, measured)
    assert [store.get_job(j).attempts for j in (bad, unknown, measured)] == [0, 0, 0]  # nothing was claimed

    jobs = run_queued(store)

    assert [j.id for j in jobs] == [bad, unknown, measured]  # oldest first, as a worker claims them
    first = jobs[0]
    assert first.status is JobStatus.FAILED and first.error.startswith("ValueError: ") and "amount" in first.error
    assert "Traceback (most recent call last)" in first.error
    second = jobs[1]
    assert second.status is JobStatus.FAILED
    assert second.error.startswith("ValueError: unknown job kind 'nope'; accepted: baseline, compress, sensitivity")
    third = jobs[2]
    assert third.status is JobStatus.DONE, third.error
    assert store.get_analysis(third.result_id or "").kind == "sensitivity"
    assert store.list_results() == []  # no result for the failures, and a scan is an analysis
    with pytest.raises(ValueError, match="is done, not queued"):
        run_inline(store, measured)


def test_job_kinds_are_a_registry_that_refuses_duplicates() -> None:
    assert {"compress", "sensitivity", "baseline"} <= set(job_kinds())
    with pytest.raises(ValueError, match="job kind 'compress' is already registered"):
        register_job_kind("compress", lambda spec, out_dir, progress, inputs: {})
