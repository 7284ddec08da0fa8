"""Apache TVM (Relax, untuned): timed on the digits CNN, its compiled library downloads and reproduces ONNX Runtime."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import FAST

from lwdash.data import Dataset
from lwdash.measure.runtime_timing import export_runtime_artifacts, measure_latencies
from lwdash.runtimes import get_runtime
from lwdash.runtimes.onnx_runtime import make_ort_session


def test_tvm_times_both_batches_with_its_build_time(fp32_onnx: Path, digits: Dataset) -> None:
    assert (get_runtime("tvm").isolated, get_runtime("tvm").default) == (True, False)
    records, notes = measure_latencies({"onnx": fp32_onnx}, digits.test, policy=FAST, runtimes=("tvm",))
    assert "tvm" not in notes, notes
    assert [(r.runtime, r.batch) for r in records] == [("tvm", 1), ("tvm", 32)]
    assert all(0 < r.median_ms <= r.p90_ms and r.compile_s > 0.1 for r in records)


def test_the_library_download_loads_and_reproduces_onnx_runtime(fp32_onnx: Path, digits: Dataset,
                                                                tmp_path: Path) -> None:
    import tvm
    from tvm import relax

    files, notes = export_runtime_artifacts({"onnx": fp32_onnx}, tmp_path, runtimes=("tvm",))
    assert notes == {} and list(files) == ["model_tvm.so"]
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(files["model_tvm.so"])), tvm.cpu())
    x = digits.test.x[:48].numpy()  # a batch size it was never timed at: the library keeps a dynamic batch
    got = vm["main"](tvm.runtime.tensor(x)).numpy()
    s = make_ort_session(fp32_onnx, 1)
    want = np.asarray(s.run(None, {s.get_inputs()[0].name: x})[0])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
