"""OpenVINO: pinned f32 precision (read back from the compiled model), fp32 and QDQ int8 timed, the IR download."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
from conftest import FAST

from lwdash.data import Dataset
from lwdash.measure.runtime_timing import export_runtime_artifacts, measure_latencies
from lwdash.runtimes import get_runtime
from lwdash.runtimes.onnx_runtime import make_ort_session
from lwdash.runtimes.openvino_runtime import compile_openvino


def test_the_compiled_model_computes_in_f32_at_the_thread_count(fp32_onnx: Path) -> None:
    for threads in (1, 2):
        compiled = compile_openvino(fp32_onnx, threads, batch=32)
        assert compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32  # not the CPU's bf16 default
        assert compiled.get_property("INFERENCE_NUM_THREADS") == threads
        assert compiled.get_property("NUM_STREAMS") == 1
        assert str(compiled.get_property("PERFORMANCE_HINT")) == "LATENCY"
        assert compiled.input(0).get_partial_shape().to_shape()[0] == 32  # compiled for the batch's static shape
    assert get_runtime("openvino").isolated and get_runtime("openvino").default


def test_fp32_and_qdq_int8_are_timed_in_a_child_process(fp32_onnx: Path, qdq_onnx: Path, digits: Dataset) -> None:
    for artifact in (fp32_onnx, qdq_onnx):
        records, notes = measure_latencies({"onnx": artifact}, digits.test, policy=FAST, runtimes=("openvino",))
        assert "openvino" not in notes, notes
        assert [(r.runtime, r.batch) for r in records] == [("openvino", 1), ("openvino", 32)]
        assert all(0 < r.median_ms <= r.p90_ms and r.compile_s > 0 for r in records)


def _ort_logits(path: Path, x: np.ndarray) -> np.ndarray:
    s = make_ort_session(path, 1)
    return np.asarray(s.run(None, {s.get_inputs()[0].name: x})[0])


def test_ir_download_loads_and_reproduces_onnx_runtime(fp32_onnx: Path, qdq_onnx: Path, digits: Dataset,
                                                       tmp_path: Path) -> None:
    x = digits.test.x.numpy()
    for name, artifact, agreement in (("fp32", fp32_onnx, 1.0), ("int8", qdq_onnx, 0.98)):
        out = tmp_path / name
        out.mkdir()
        files, notes = export_runtime_artifacts({"onnx": artifact}, out, runtimes=("openvino", "ort"))
        assert notes == {} and sorted(files) == ["model.bin", "model.xml"]
        assert files["model.xml"].parent == out and files["model.bin"].stat().st_size > 0
        compiled = ov.Core().compile_model(str(files["model.xml"]), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        got = np.asarray(compiled(x)[compiled.output(0)])
        want = _ort_logits(artifact, x)
        assert (got.argmax(1) == want.argmax(1)).mean() >= agreement
        if name == "fp32":  # the IR keeps f32 weights (compress_to_fp16=False): the same logits
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
