"""runner.execute end to end on a real sample, the real digits data and the real magnitude_pruning."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lwdash.data import DataError, load_digits
from lwdash.jobs.runner import clear_baseline_cache, execute, job_label, render_model_card
from lwdash.jobs.spec import JobSpec
from lwdash.models import load_sample

PRUNE_HALF = {"type": "magnitude_pruning", "version": 1, "data": {"amount": 0.5}}


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return load_digits()


def test_execute_prunes_measures_and_writes_artifacts(tmp_path: Path, digits) -> None:  # type: ignore[no-untyped-def]
    clear_baseline_cache()
    model = load_sample("digits_mlp")
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    spec = JobSpec(model_id="sample/digits_mlp", data_ref="digits", technique=PRUNE_HALF, seed=0)
    events: list[tuple[float, str]] = []
    out = execute(spec, model, digits, tmp_path / "run", lambda f, m: events.append((f, m)))

    # The caller's model is untouched.
    for k, v in model.module.state_dict().items():
        assert torch.equal(v, before[k]), k

    # Measured, same test split for both, pruning removed about half the prunable weights.
    b, c = out.baseline, out.compressed
    assert b.test_samples == c.test_samples == len(digits.test)
    assert b.agreement == 1.0 and 0.5 <= c.agreement <= 1.0
    assert c.params_count == b.params_count
    assert c.nonzero_params_count < 0.7 * b.nonzero_params_count
    assert c.top1_acc > 0.5 and b.top1_acc > 0.9

    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"model.onnx", "model.pt2", "result.json", "model_card.md", "model_card.json"} <= files
    assert set(out.artifacts) >= {"model.onnx", "result.json", "model_card.md"}
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["baseline"]["nonzero_params_count"] == b.nonzero_params_count
    assert result["compressed"]["top1_acc"] == c.top1_acc
    assert result["technique"] == PRUNE_HALF and result["model"]["id"] == "sample/digits_mlp"
    assert result["data"]["test_samples"] == len(digits.test)
    assert any("dense kernels" in n for n in result["notes"])
    card = (tmp_path / "run" / "model_card.md").read_text()
    assert "magnitude_pruning" in card and "| Top-1 accuracy (ONNX Runtime) |" in card and "x |" in card

    fractions = [f for f, _ in events]
    assert fractions[-1] == 1.0 and all(0.0 <= f <= 1.0 for f in fractions)
    assert fractions == sorted(fractions)  # progress never goes backwards

    # A second run in this process on the same model and data reuses the baseline measurement.
    events.clear()
    again = execute(spec, model, digits, tmp_path / "run2", lambda f, m: events.append((f, m)))
    assert again.baseline == b
    assert any("reusing" in m for _, m in events)
    assert not (tmp_path / "run" / "_baseline").exists()


def test_execute_rejects_bad_config_and_mismatched_data(tmp_path: Path, digits) -> None:  # type: ignore[no-untyped-def]
    from lwdash.data import Dataset

    model = load_sample("digits_mlp")
    bad = JobSpec(model_id="m", data_ref="digits",
                  technique={"type": "magnitude_pruning", "version": 1, "data": {"amount": 1.5}})
    with pytest.raises(ValueError, match="amount"):
        execute(bad, model, digits, tmp_path / "a", lambda f, m: None)
    unknown = JobSpec(model_id="m", data_ref="digits",
                      technique={"type": "magnitude_pruning", "version": 1, "data": {"amont": 0.5}})
    with pytest.raises(ValueError, match="unknown fields"):
        execute(unknown, model, digits, tmp_path / "b", lambda f, m: None)

    small = Dataset(name="small", input_shape=(1, 4, 4), num_classes=10,
                    train=_split(digits.train), calib=_split(digits.calib), test=_split(digits.test))
    ok = JobSpec(model_id="m", data_ref="digits", technique=PRUNE_HALF)
    with pytest.raises(DataError, match=r"\(1, 8, 8\)"):
        execute(ok, model, small, tmp_path / "c", lambda f, m: None)
    assert not (tmp_path / "c" / "model.onnx").exists()


def _split(s):  # type: ignore[no-untyped-def]
    from lwdash.data import Split

    return Split(x=s.x[:, :, :4, :4].contiguous(), y=s.y)


def test_job_label_shows_sweepable_and_changed_knobs() -> None:
    # amount is sweepable: shown even at its default, so the points of a sweep are told apart
    assert job_label(PRUNE_HALF) == "magnitude_pruning amount=0.5"
    assert job_label({"type": "magnitude_pruning", "data": {"amount": 0.7, "scope": "global"}}) == (
        "magnitude_pruning amount=0.7"
    )
    assert job_label({"type": "magnitude_pruning", "data": {"amount": 0.7, "scope": "per_layer"}}) == (
        "magnitude_pruning amount=0.7 scope=per_layer"
    )


def test_model_card_shows_ratios() -> None:
    m = {"top1_acc": 0.9, "onnx_bytes": 2048, "ort_b32_median_ms": 2.0}
    c = {"top1_acc": 0.85, "onnx_bytes": 1024, "ort_b32_median_ms": 1.0}
    card = render_model_card({
        "technique": PRUNE_HALF, "label": "x", "family": "pruning", "notes": ["a note"], "steps": [],
        "environment": {"cpu": "test"}, "baseline": m, "compressed": c, "seed": 0, "threads": 1,
        "model": {"id": "sample/x", "source_format": "sample", "arch": "x", "input_shape": [1, 8, 8], "num_classes": 10},
        "data": {"ref": "digits", "name": "digits", "test_samples": 360, "train_samples": 1, "calib_samples": 1},
    })
    assert "| model.onnx size | 2.0 KiB | 1.0 KiB | 0.500x |" in card
    assert "-5.00 pts" in card and "2.00x faster" in card and "- a note" in card
