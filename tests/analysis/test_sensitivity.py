"""Sensitivity scans: the damage functions, a real scan of a sample, and the worker's ``kind="sensitivity"`` path."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lwdash.analysis.sensitivity import ScanConfig, fake_quantize, magnitude_prune, run_scan, scan_technique
from lwdash.data import load_digits
from lwdash.jobs.spec import JobSpec, JobStatus
from lwdash.measure import evaluate_torch
from lwdash.models import load_sample
from lwdash.workspace import SqliteStore

ROOT = Path(__file__).resolve().parents[2]


def test_magnitude_prune_removes_exactly_the_smallest_fraction() -> None:
    w = torch.arange(1, 11, dtype=torch.float32).reshape(2, 5) * torch.tensor([1.0, -1.0]).repeat(5).reshape(2, 5)
    out = magnitude_prune(w, 0.3)
    assert int((out == 0).sum()) == 3
    assert set(w.abs()[out == 0].tolist()) == {1.0, 2.0, 3.0}
    assert torch.equal(out[out != 0], w[out != 0])


def test_fake_quantize_uses_a_per_channel_grid() -> None:
    torch.manual_seed(0)
    w = torch.randn(4, 3, 3, 3)
    q = fake_quantize(w, 4)
    for c in range(4):
        scale = w[c].abs().max() / 7
        levels = torch.unique(torch.round(q[c] / scale))
        assert levels.numel() <= 15 and levels.abs().max() <= 7
    assert (q - w).abs().max() <= (w.abs().amax(dim=(1, 2, 3)) / 7 / 2).max() + 1e-6


def test_bad_scan_configs_say_what_is_accepted() -> None:
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        ScanConfig(mode="prune", levels=(0.5, 1.2))
    with pytest.raises(ValueError, match="integers from 2 to 16"):
        ScanConfig(mode="quantize", levels=(8, 3.5))
    with pytest.raises(ValueError, match="'prune' or 'quantize'"):
        ScanConfig.from_dict({"mode": "shuffle"})
    assert ScanConfig.from_dict({"mode": "quantize"}).levels == (4.0, 6.0, 8.0)


def test_a_real_scan_of_the_mlp_measures_each_layer_alone() -> None:
    sample, data = load_sample("digits_mlp"), load_digits()
    before = {k: v.clone() for k, v in sample.module.state_dict().items()}
    seen: list[float] = []
    scan = run_scan(sample.module, data, scan_technique(ScanConfig("prune", (0.5, 0.99))), lambda f, m: seen.append(f))
    assert all(torch.equal(before[k], v) for k, v in sample.module.state_dict().items())  # the input is untouched
    assert scan["baseline_acc"] == pytest.approx(evaluate_torch(sample.module, data.test).top1_acc)
    names = [r["name"] for r in scan["layers"]]
    assert len(names) == 3 and all(n.endswith(".weight") for n in names)
    for r in scan["layers"]:
        assert len(r["acc"]) == 2 and r["drop_pts"][1] == pytest.approx(100 * (scan["baseline_acc"] - r["acc"][1]))
    assert min(r["acc"][1] for r in scan["layers"]) < scan["baseline_acc"] - 0.2  # 99 % of one layer gone hurts
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)


def test_the_worker_runs_a_scan_job_and_stores_its_curves(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    cfg = ScanConfig("quantize", (4.0, 8.0))
    job_id = store.submit(JobSpec("sample/digits_mlp", "digits", scan_technique(cfg), kind="sensitivity",
                                  label="scan"))
    assert store.get_job(job_id).spec.kind == "sensitivity"
    assert store.claim("test") is not None
    env = {**os.environ, "LWDASH_DATA_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "lwdash.jobs.worker", "--run-job", job_id, "--data-dir", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job = store.get_job(job_id)
    assert job.status is JobStatus.DONE, job.error
    analysis = store.get_analysis(job.result_id or "")
    assert analysis.kind == "sensitivity" and analysis.model_id == "sample/digits_mlp"
    assert analysis.payload["levels"] == [4.0, 8.0] and len(analysis.payload["layers"]) == 3
    assert [a.id for a in store.list_analyses(model_id="sample/digits_mlp", kind="sensitivity")] == [analysis.id]
    assert store.list_results() == []  # a scan is not a compression result
