"""torch.compile (Inductor) on the .pt2 program: a PT2E int8 program compiled with freezing, compile time recorded."""
from __future__ import annotations

from pathlib import Path

from conftest import FAST

from lwdash.data import Dataset
from lwdash.measure.runtime_timing import measure_latencies
from lwdash.runtimes import get_runtime


def test_pt2e_int8_is_compiled_per_batch_with_its_compile_time(pt2e_pt2: Path, digits: Dataset) -> None:
    rt = get_runtime("inductor")
    assert (rt.artifact, rt.isolated, rt.default, rt.fusion) == ("pt2", True, False, "on")
    records, notes = measure_latencies({"pt2": pt2e_pt2}, digits.test, policy=FAST, runtimes=("inductor",))
    assert "inductor" not in notes, notes
    assert [(r.runtime, r.batch) for r in records] == [("inductor", 1), ("inductor", 32)]
    for r in records:
        assert 0 < r.median_ms <= r.p90_ms
        # compiling (C++ code generation and a compiler run) takes far longer than one compiled run
        assert r.compile_s > 0.5 and r.compile_s * 1000 > 20 * r.median_ms, r


def test_no_program_to_compile_is_one_line(digits: Dataset, fp32_onnx: Path) -> None:
    records, notes = measure_latencies({"onnx": fp32_onnx, "pt2": None}, digits.test, policy=FAST,
                                       runtimes=("inductor",))
    assert records == () and notes["inductor"] == "torch.compile (Inductor): no pt2 artifact to run"
