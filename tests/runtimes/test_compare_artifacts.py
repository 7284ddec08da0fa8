"""Timing several artifacts on one runtime, interleaved (what int8's activation choice uses), and the
headline of a result that is slower than its baseline on every runtime."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from conftest import FAST, SCALARS

from lwdash.analysis.latency_matrix import best_runtime
from lwdash.data import Dataset
from lwdash.measure.latency import batch_from_split
from lwdash.measure.metrics import LatencyRecord, Metrics
from lwdash.measure.runtime_timing import compare_artifacts


def test_every_artifact_is_timed_on_the_same_batch(fp32_onnx: Path, qdq_onnx: Path, digits: Dataset) -> None:
    x = batch_from_split(digits.test, 32)
    for runtime in ("ort", "openvino"):  # in-process, and in a child process (isolated)
        ms = compare_artifacts(runtime, {"fp32": fp32_onnx, "int8": qdq_onnx}, x, rounds=2, policy=FAST)
        assert sorted(ms) == ["fp32", "int8"] and all(math.isfinite(v) and v > 0 for v in ms.values())


def test_a_runtime_that_cannot_time_says_why(fp32_onnx: Path, digits: Dataset, tmp_path: Path) -> None:
    x = batch_from_split(digits.test, 4)
    with pytest.raises(ValueError, match="unknown runtime 'nope'"):
        compare_artifacts("nope", {"a": fp32_onnx}, x)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(RuntimeError, match="ONNX Runtime"):
        compare_artifacts("ort", {"a": garbage}, x, policy=FAST)


def _metrics(ms: dict[str, float]) -> Metrics:
    latency = [LatencyRecord(rt, b, v, v * 1.1, 0.01).to_dict() for rt, v in ms.items() for b in (1, 32)]
    return Metrics.from_dict({"latency": latency, **SCALARS})


def test_the_headline_says_when_a_result_is_slower_on_every_runtime() -> None:
    base = _metrics({"ort": 2.0, "openvino": 1.0})
    slower = best_runtime(base, _metrics({"ort": 3.0, "openvino": 1.5}))
    assert slower is not None and slower.slower_everywhere
    assert slower.slower_text() == ("Slower than its baseline on every runtime measured at batch 32 (ONNX Runtime and "
                                    "OpenVINO): this result saves size or MACs, not time, on this machine.")
    mixed = best_runtime(base, _metrics({"ort": 1.5, "openvino": 1.2}))  # faster on ONNX Runtime
    assert mixed is not None and not mixed.slower_everywhere and mixed.slower_text() == ""
    assert mixed.runtime == "openvino" and mixed.speedup == pytest.approx(1.0 / 1.2)
