"""A runtime that segfaults, hangs or raises fails its own measurement; the other runtimes and the job go on."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from _crash_runtimes import CRASHING, HANGING, RAISING
from conftest import FAST

from lwdash.data import Dataset
from lwdash.measure.runtime_timing import measure_latencies
from lwdash.runtimes import Runtime, register_runtime, unregister_runtime


@pytest.fixture
def broken() -> Iterator[tuple[Runtime, ...]]:
    for rt in (CRASHING, HANGING, RAISING):
        register_runtime(rt)
    try:
        yield CRASHING, HANGING, RAISING
    finally:
        for rt in (CRASHING, HANGING, RAISING):
            unregister_runtime(rt.key)


def test_a_crash_a_hang_and_an_error_each_fail_only_their_measurement(
    broken: tuple[Runtime, ...], fp32_onnx: Path, digits: Dataset
) -> None:
    records, notes = measure_latencies({"onnx": fp32_onnx}, digits.test, policy=FAST, timeout_s=5,
                                       runtimes=("ort", "test_crash", "test_hang", "test_raise", "ort_nofusion"))
    assert "SIGSEGV" in notes["test_crash"] and notes["test_crash"].startswith("Crashing runtime crashed:")
    assert notes["test_hang"].startswith("Hanging runtime hung: it took longer than 5 s")
    assert notes["test_raise"] == "Raising runtime failed: RuntimeError: kernel not implemented for this layer"
    # the runtimes before and after the broken ones were measured
    assert sorted({r.runtime for r in records}) == ["ort", "ort_nofusion"] and len(records) == 4


def test_a_job_with_a_crashing_runtime_completes(broken: tuple[Runtime, ...], tmp_path: Path) -> None:
    from lwdash.data import load_dataset
    from lwdash.jobs.runner import clear_baseline_cache, execute
    from lwdash.jobs.spec import JobSpec
    from lwdash.models import load_sample

    clear_baseline_cache()
    spec = JobSpec("sample/digits_cnn", "digits", {"type": "magnitude_pruning", "version": 1, "data": {"amount": 0.5}},
                   runtimes=("ort", "test_crash"))
    out = execute(spec, load_sample("digits_cnn"), load_dataset("digits"), tmp_path / "run", lambda f, m: None)
    for m in (out.baseline, out.compressed):
        assert m.runtimes == ("ort",) and "SIGSEGV" in m.latency_notes["test_crash"]
        assert m.latency_notes["torch"].startswith("not measured in this job")
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["runtimes"] == ["ort", "test_crash"]
    card = (tmp_path / "run" / "model_card.md").read_text()
    assert "| Crashing runtime | - | - / - |" in card and "SIGSEGV" in card
