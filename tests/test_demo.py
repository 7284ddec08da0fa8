"""`python -m lwdash demo`: a data directory filled with real, measured results by running the jobs."""
from __future__ import annotations

from pathlib import Path

import pytest

from lwdash.analysis.frame import load_results_frame
from lwdash.cli import main
from lwdash.demo import DEMOS, demo_specs
from lwdash.jobs.spec import JobSpec
from lwdash.techniques import config_from_dict
from lwdash.workspace import SqliteStore


def test_the_digits_demo_runs_its_jobs_and_leaves_their_measured_results(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--set", "digits", "--data-dir", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "[3/3]" in out and "3 of 3 results stored" in out
    store = SqliteStore(tmp_path / "d")
    frame = load_results_frame(store)
    wanted = sorted((m, key) for m, key, _ in DEMOS["digits"][1])
    assert sorted(zip(frame["model_id"], frame["technique"], strict=True)) == wanted
    assert (frame["baseline_top1_acc"] > 0.9).all() and frame["onnx_bytes"].gt(0).all()  # measured, not written
    assert all(j.worker == "inline" and j.status.value == "done" for j in store.list_jobs())


def test_the_demo_refuses_a_directory_whose_queue_is_busy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = SqliteStore(tmp_path / "d")
    store.submit(JobSpec("sample/digits_mlp", "digits", {"type": "fp16", "version": 1, "data": {}}))
    assert main(["demo", "--set", "digits", "--data-dir", str(tmp_path / "d")]) == 2
    assert "1 job(s) are queued or running" in capsys.readouterr().err and len(store.list_results()) == 0


def test_the_fashion_demo_s_configs_fit_its_models() -> None:
    from lwdash.models import load_sample

    for spec in demo_specs("fashion"):
        model = load_sample(spec.model_id.removeprefix("sample/"))
        _, cfg = config_from_dict(spec.technique)
        cfg.validate_for(model.module, model.input_shape)
        assert spec.data_ref == "fashion_mnist_quick"
