"""Baseline measurements: the same numbers a compression job measures, as a job of their own and from the CLI."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lwdash.analysis.baseline import BASELINE_KIND, baseline_spec, latest_baseline, measure_baseline
from lwdash.cli import main
from lwdash.jobs.runner import execute
from lwdash.jobs.spec import JobSpec, JobStatus
from lwdash.jobs.worker import compute_job, record_output
from lwdash.measure.metrics import Metrics
from lwdash.workspace import SqliteStore

PRUNE = {"type": "magnitude_pruning", "version": 1, "data": {"amount": 0.5}}


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "data")


def test_a_baseline_job_measures_what_a_compression_job_measures_as_its_baseline(store: SqliteStore,
                                                                                 tmp_path: Path) -> None:
    model, data = store.load_model("sample/digits_mlp"), store.resolve_data("digits")
    job_id = store.submit(baseline_spec("sample/digits_mlp", "digits"))
    job = store.claim("test")
    assert job is not None and job.id == job_id and job.spec.kind == BASELINE_KIND
    out_dir = tmp_path / "work"
    out_dir.mkdir()
    payload = compute_job(job.spec, out_dir, lambda f, m: None, store)
    assert isinstance(payload, dict)
    analysis_id = record_output(store, job_id, job.spec, payload, out_dir)
    assert store.get_job(job_id).status is JobStatus.DONE and store.get_job(job_id).result_id == analysis_id
    assert list(out_dir.iterdir()) == []  # the exports it measured are gone

    run = execute(JobSpec(model_id="sample/digits_mlp", data_ref="digits", technique=PRUNE), model, data,
                  tmp_path / "run", lambda f, m: None)
    measured = payload["metrics"]
    reference = run.baseline.to_dict()
    # Deterministic figures are equal; latency is measured again (noisy), so only its presence is checked.
    for key in ("top1_acc", "torch_top1_acc", "loss", "params_count", "nonzero_params_count", "macs",
                "test_samples", "threads"):
        assert measured[key] == pytest.approx(reference[key], rel=1e-9), key
    assert measured["agreement"] == 1.0
    assert abs(measured["onnx_bytes"] - reference["onnx_bytes"]) <= 64  # the same export, give or take metadata
    timed = Metrics.from_dict(measured).latency
    assert {(r.runtime, r.batch) for r in timed} == {(r.runtime, r.batch) for r in run.baseline.latency}
    assert timed and all(r.median_ms > 0 and r.p90_ms > 0 for r in timed)
    assert payload["environment"]["threads"] == 1 and payload["data"]["test_samples"] == len(data.test)


def test_latest_baseline_is_the_newest_of_measurements_and_results(store: SqliteStore, tmp_path: Path) -> None:
    model, data = store.load_model("sample/digits_mlp"), store.resolve_data("digits")
    assert latest_baseline(store, "sample/digits_mlp", "digits") is None

    spec = JobSpec(model_id="sample/digits_mlp", data_ref="digits", technique=PRUNE)
    job_id = store.submit(spec)
    assert store.claim("test") is not None
    output = execute(spec, model, data, tmp_path / "run", lambda f, m: None)
    result_id = store.save_result(job_id, spec, output, tmp_path / "run")
    found = latest_baseline(store, "sample/digits_mlp", "digits")
    assert found is not None and (found.source, found.source_id) == ("result", result_id)
    assert found.metrics == output.baseline

    time.sleep(0.01)  # a strictly later timestamp
    payload = measure_baseline(model, data, tmp_path, lambda f, m: None)
    analysis_id = store.save_analysis(None, baseline_spec("sample/digits_mlp", "digits"), payload)
    found = latest_baseline(store, "sample/digits_mlp", "digits")
    assert found is not None and (found.source, found.source_id) == (BASELINE_KIND, analysis_id)
    assert found.metrics.top1_acc == output.baseline.top1_acc and found.environment["threads"] == 1

    assert latest_baseline(store, "sample/digits_cnn", "digits") is None  # another model
    assert latest_baseline(store, "sample/digits_mlp", "dataset/other") is None  # another data set


def test_cli_measure_prints_and_writes_the_measurement(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.json"
    assert main(["measure", "--model", "digits_mlp", "--quiet", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    saved = json.loads(out.read_text())
    assert saved["model"] == "sample/digits_mlp"
    assert f"{100 * saved['metrics']['top1_acc']:.2f} %" in text and f"{saved['metrics']['macs']:,}" in text


def test_cli_scan_prints_one_row_per_layer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "scan.json"
    assert main(["scan", "--model", "digits_mlp", "--mode", "quantize", "--levels", "4,8", "--quiet",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    saved = json.loads(out.read_text())
    assert saved["levels"] == [4.0, 8.0] and [r["name"] for r in saved["layers"]] == ["fc1.weight", "fc2.weight",
                                                                                         "fc3.weight"]
    for row in saved["layers"]:
        assert row["name"] in text and f"{100 * row['acc'][0]:.2f}" in text
    assert "most sensitive:" in text


def test_cli_measure_refuses_data_that_does_not_fit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["measure", "--model", "digits_mlp", "--data", "no-such.npz"]) == 2
    err = capsys.readouterr().err
    assert "use a bundled data set (digits, fashion_mnist" in err and "a path to an .npz" in err
