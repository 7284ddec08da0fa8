"""A data directory written before the storage interface (schema 1, commit 1c74eb1) opens with every record.

The archive was made by ``make_v1_datadir.py`` under ``/tmp/v1out/v1``; it is opened here at
another path, as a user's data directory is after a copy or a move.
"""
from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from lwdash.jobs import run_inline
from lwdash.jobs.spec import JobStatus
from lwdash.workspace import SqliteStore

ARCHIVE = Path(__file__).parent / "data" / "v1-datadir.tar.gz"


@pytest.fixture
def old(tmp_path: Path) -> tuple[SqliteStore, dict]:
    with tarfile.open(ARCHIVE) as tar:
        tar.extractall(tmp_path, filter="data")
    facts = json.loads((tmp_path / "v1" / "facts.json").read_text())
    assert facts["data_dir"] != str(tmp_path / "v1")  # opened somewhere else than where it was written
    return SqliteStore(tmp_path / "v1"), facts


def test_every_model_data_set_job_result_analysis_and_search_is_still_there(old: tuple[SqliteStore, dict]) -> None:
    store, facts = old
    upload = store.get_model(facts["models"][0])
    assert (upload.name, upload.source_format, upload.input_shape, upload.num_classes) == (
        "tiny linear.pt2", "pt2", (1, 8, 8), 10)
    assert upload.path.is_file() and upload.path.is_relative_to(store.models_dir)
    assert store.load_model(upload.id).num_classes == 10
    assert [m.id for m in store.list_models() if m.kind == "upload"] == facts["models"]

    data = store.get_dataset(facts["datasets"][0])
    assert (data.name, data.samples_count, data.input_shape) == ("forty digits.npz", 40, (1, 8, 8))
    assert len(store.resolve_data(data.id).test) > 0

    jobs = facts["jobs"]
    status = {name: store.get_job(job_id).status for name, job_id in jobs.items()}
    assert status == {"done": JobStatus.DONE, "failed": JobStatus.FAILED, "scan": JobStatus.DONE,
                      "cancelled": JobStatus.CANCELLED, "queued": JobStatus.QUEUED, "trial": JobStatus.QUEUED}
    assert "amount" in store.get_job(jobs["failed"]).error
    assert len(store.list_jobs()) == 6 and store.count_jobs()[JobStatus.QUEUED] == 2

    (result,) = store.list_results()
    assert result.id == facts["results"][0] and result.job_id == jobs["done"] and result.label == "kept result"
    assert store.get_job(jobs["done"]).result_id == result.id
    assert result.compressed.top1_acc > 0.5 and result.baseline.top1_acc > 0.9
    assert result.artifact_dir.is_relative_to(store.artifacts_dir)
    assert all(p.is_file() for p in result.artifacts.values()) and "model.onnx" in result.artifacts
    assert store.get_result(result.id).compressed_weights  # weight summaries kept

    (analysis,) = store.list_analyses()
    assert analysis.id == facts["analyses"][0] and analysis.kind == "sensitivity" and analysis.payload

    (search,) = store.list_searches()
    assert search.id == facts["searches"][0] and search.status == "running"
    (trial,) = store.search_trials(search.id)
    assert (trial.trial, trial.job_id, trial.params, trial.job_status) == (0, jobs["trial"], {"amount": 0.3}, "queued")


def test_the_old_directory_keeps_working_new_jobs_run_and_old_results_delete_cleanly(
    old: tuple[SqliteStore, dict],
) -> None:
    store, facts = old
    job = run_inline(store, facts["jobs"]["queued"])  # queued by the old version, run by this one
    assert job is not None and job.status is JobStatus.DONE, job and job.error
    assert len(store.list_results()) == 2
    old_result = store.get_result(facts["results"][0])
    store.delete_result(old_result.id)
    assert not old_result.artifact_dir.exists() and store.get_job(facts["jobs"]["done"]).result_id is None
