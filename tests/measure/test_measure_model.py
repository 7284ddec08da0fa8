"""measure_model fills every Metrics field with measured, consistent values; environment()."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from _measure_models import INPUT_SHAPE, SMALL_CNN_MACS, SmallCNN

from lwdash.data import Dataset
from lwdash.measure import Metrics, environment, measure_model
from lwdash.measure.export import save_pt2
from lwdash.measure.latency import TimingPolicy
from lwdash.measure.runtime_timing import NOT_SELECTED, selected_runtimes
from lwdash.runtimes import LATENCY_BATCHES, list_runtimes

FAST = TimingPolicy(warmup_runs=1, min_runs=10, min_time_s=0.02, max_runs=40, max_time_s=0.2, floor_runs=5)


@pytest.fixture(scope="module")
def measured(cnn: SmallCNN, cnn_onnx: Path, data: Dataset, tmp_path_factory: pytest.TempPathFactory) -> tuple[Metrics, torch.Tensor, Path]:
    pt2 = tmp_path_factory.mktemp("pt2") / "model.pt2"
    assert save_pt2(cnn, INPUT_SHAPE, pt2)
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    metrics, preds = measure_model(cnn, cnn_onnx, pt2, data, reference_preds=None, threads=1, timing=FAST)
    assert all(torch.equal(before[k], v) for k, v in cnn.state_dict().items())  # not mutated
    return metrics, preds, pt2


def test_every_field_is_filled_and_sane(measured: tuple[Metrics, torch.Tensor, Path], cnn: SmallCNN, cnn_onnx: Path, data: Dataset) -> None:
    m, preds, pt2 = measured
    for f in dataclasses.fields(Metrics):
        if f.name in ("latency", "latency_notes"):
            continue
        value = getattr(m, f.name)
        assert isinstance(value, (int, float)) and math.isfinite(value), f.name
    # every selected runtime (the suite's LWDASH_RUNTIMES) timed at every batch, nothing skipped; the others say why
    chosen = selected_runtimes()
    assert set(chosen) == {"ort", "ort_nofusion", "torch"}
    assert [(r.runtime, r.batch) for r in m.latency] == [(k, b) for k in chosen for b in LATENCY_BATCHES]
    assert m.latency_notes == {rt.key: NOT_SELECTED for rt in list_runtimes() if rt.key not in chosen}
    assert all(r.compile_s > 0 and math.isfinite(r.compile_s) for r in m.latency)
    with torch.inference_mode():
        logits = cnn(data.test.x)
    assert torch.equal(preds, logits.argmax(1))
    assert m.top1_acc == pytest.approx(float((logits.argmax(1) == data.test.y).float().mean()))
    assert m.torch_top1_acc == pytest.approx(m.top1_acc)
    assert m.loss == pytest.approx(float(F.cross_entropy(logits, data.test.y)), rel=1e-4)
    assert m.agreement == 1.0
    assert m.onnx_bytes == cnn_onnx.stat().st_size and m.pt2_bytes == pt2.stat().st_size > 0
    assert m.params_count == sum(p.numel() for p in cnn.parameters())
    assert 0 < m.nonzero_params_count <= m.params_count
    assert 0 < m.sparse_bytes <= 4 * m.params_count
    assert 0 < m.compressed_bytes < m.onnx_bytes
    assert m.macs == SMALL_CNN_MACS
    for runtime in ("torch", "ort"):
        for batch in (1, 32):
            median, p90 = m.latency_ms(runtime, batch, "median"), m.latency_ms(runtime, batch, "p90")
            assert 0 < median <= p90, (runtime, batch)
            assert m.value(f"{runtime}_b{batch}_median_ms") == median  # the flat key reads the same record
    assert m.threads == 1 and m.test_samples == len(data.test) == 120
    assert Metrics.from_dict(m.to_dict()) == m


def test_agreement_against_reference_and_bad_reference(
    measured: tuple[Metrics, torch.Tensor, Path], cnn: SmallCNN, cnn_onnx: Path, data: Dataset
) -> None:
    _, preds, _ = measured
    reference = preds.clone()
    reference[:12] = (reference[:12] + 1) % 10  # 12 of 120 disagree
    m, again = measure_model(cnn, cnn_onnx, None, data, reference_preds=reference, timing=FAST)
    assert m.agreement == pytest.approx(1 - 12 / 120)
    assert m.pt2_bytes == 0
    assert torch.equal(again, preds)  # deterministic
    with pytest.raises(ValueError, match="reference_preds"):
        measure_model(cnn, cnn_onnx, None, data, reference_preds=preds[:5], timing=FAST)
    with pytest.raises(ValueError, match="threads"):
        measure_model(cnn, cnn_onnx, None, data, reference_preds=None, threads=0, timing=FAST)


def test_measure_model_on_pt2e_graph(
    pt2e_int8: torch.fx.GraphModule, pt2e_onnx: Path, data: Dataset, measured: tuple[Metrics, torch.Tensor, Path]
) -> None:
    base, preds, _ = measured
    m, _ = measure_model(pt2e_int8, pt2e_onnx, None, data, reference_preds=preds, timing=FAST)
    assert m.agreement >= 0.9
    assert abs(m.top1_acc - base.top1_acc) <= 0.1
    assert m.macs == base.macs  # quantization does not change the count of multiply-accumulates
    assert m.sparse_bytes < base.sparse_bytes / 3  # int8 weights
    assert m.test_samples == base.test_samples


def test_environment_describes_this_machine() -> None:
    env = environment(2)
    assert env["threads"] == 2
    assert env["torch"] == torch.__version__.split("+")[0] or env["torch"] == torch.__version__
    assert isinstance(env["cpu_model"], str) and env["cpu_model"]
    assert env["logical_cores"] >= 1
    for key in ("onnxruntime", "onnx", "torchao", "torch_pruning", "python", "platform", "timestamp"):
        assert env[key], key
    import json

    json.dumps(env)
