"""ONNX Runtime with graph optimisation on and off: what fusion changes, on fp32 and on a QDQ int8 model."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from conftest import FAST, SCALARS

from lwdash.analysis.latency_matrix import matrix_caveats
from lwdash.data import Dataset
from lwdash.measure.metrics import Metrics
from lwdash.measure.runtime_timing import measure_latencies
from lwdash.runtimes import get_runtime
from lwdash.runtimes.onnx_runtime import make_ort_session


def _ops(path: Path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def _logits(path: Path, x: np.ndarray, *, fusion: bool) -> np.ndarray:
    s = make_ort_session(path, 1, fusion=fusion)
    return np.asarray(s.run(None, {s.get_inputs()[0].name: x})[0])


def test_fusion_off_runs_qdq_int8_as_fake_quantization(qdq_onnx: Path, digits: Dataset, tmp_path: Path) -> None:
    on, off = tmp_path / "on.onnx", tmp_path / "off.onnx"
    make_ort_session(qdq_onnx, 1, fusion=True, optimized_model_path=on)
    make_ort_session(qdq_onnx, 1, fusion=False, optimized_model_path=off)
    # fusion on: the DequantizeLinear -> Conv -> QuantizeLinear groups become int8 kernels
    assert "QLinearConv" in _ops(on) and "Conv" not in _ops(on)
    # fusion off: the graph runs as written, fp32 Conv between quantize / dequantize nodes
    assert {"Conv", "DequantizeLinear", "QuantizeLinear"} <= _ops(off) and not any(o.startswith("QLinear")
                                                                                   for o in _ops(off))
    x = digits.test.x.numpy()
    agree = (_logits(qdq_onnx, x, fusion=True).argmax(1) == _logits(qdq_onnx, x, fusion=False).argmax(1)).mean()
    assert agree >= 0.98  # the same model either way, up to int8 rounding


def test_both_settings_are_timed_and_the_fake_quant_caveat_is_shown(qdq_onnx: Path, fp32_onnx: Path,
                                                                   digits: Dataset) -> None:
    assert (get_runtime("ort").fusion, get_runtime("ort_nofusion").fusion) == ("on", "off")
    assert get_runtime("ort").engine == get_runtime("ort_nofusion").engine == "ONNX Runtime"
    for artifact in (fp32_onnx, qdq_onnx):
        records, notes = measure_latencies({"onnx": artifact}, digits.test, policy=FAST,
                                           runtimes=("ort", "ort_nofusion"))
        assert [(r.runtime, r.batch) for r in records] == [("ort", 1), ("ort", 32), ("ort_nofusion", 1),
                                                           ("ort_nofusion", 32)]
        assert all(0 < r.median_ms <= r.p90_ms and math.isfinite(r.compile_s) and r.compile_s > 0 for r in records)
        assert "ort" not in notes and "ort_nofusion" not in notes
        m = Metrics.from_dict({"latency": [r.to_dict() for r in records], **SCALARS})
        assert any("fake quantization" in c for c in matrix_caveats(m))


