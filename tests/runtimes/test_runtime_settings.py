"""Which runtimes a measurement times: the job's, else LWDASH_RUNTIMES, else the registered defaults."""
from __future__ import annotations

from pathlib import Path

import pytest

from lwdash.cli import UsageError, runtimes_arg
from lwdash.config import get_settings
from lwdash.jobs.spec import JobSpec
from lwdash.measure.runtime_timing import selected_runtimes
from lwdash.runtimes import default_runtime_keys, list_runtimes, resolve_runtimes
from lwdash.search import KnobRange, SearchConfig, trial_runtimes
from lwdash.workspace import SqliteStore


def test_defaults_leave_the_compile_heavy_runtimes_out() -> None:
    assert default_runtime_keys() == ("ort", "ort_nofusion", "openvino", "torch")
    assert resolve_runtimes(None) == default_runtime_keys()
    assert resolve_runtimes("all") == tuple(rt.key for rt in list_runtimes())
    assert resolve_runtimes("tvm, default") == ("ort", "ort_nofusion", "openvino", "torch", "tvm")  # registry order
    with pytest.raises(ValueError, match="unknown runtime 'tensorrt'; registered: ort, ort_nofusion"):
        resolve_runtimes(["ort", "tensorrt"])


def test_the_setting_and_the_job_choose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LWDASH_RUNTIMES", raising=False)
    assert get_settings().runtimes is None and selected_runtimes() == default_runtime_keys()
    monkeypatch.setenv("LWDASH_RUNTIMES", "torch,ort")
    assert get_settings().runtimes == ("torch", "ort") and selected_runtimes() == ("ort", "torch")
    assert selected_runtimes(("inductor",)) == ("inductor",) and selected_runtimes(()) == ("ort", "torch")
    monkeypatch.setenv("LWDASH_RUNTIMES", "ort,bogus")
    with pytest.raises(ValueError, match="LWDASH_RUNTIMES: unknown runtime 'bogus'"):
        get_settings()
    monkeypatch.setenv("LWDASH_RUNTIME_TIMEOUT_S", "0")
    monkeypatch.setenv("LWDASH_RUNTIMES", "ort")
    with pytest.raises(ValueError, match="LWDASH_RUNTIME_TIMEOUT_S must be >= 1"):
        get_settings()


def test_the_cli_flag_and_the_stored_spec(tmp_path: Path) -> None:
    assert runtimes_arg(None) == () and runtimes_arg("openvino,ort") == ("ort", "openvino")
    with pytest.raises(UsageError, match="--runtimes: unknown runtime 'ov'"):
        runtimes_arg("ov")
    spec = JobSpec("m", "digits", {"type": "x"}, runtimes=["ort", "tvm"])  # type: ignore[arg-type]  # as stored JSON
    assert spec.runtimes == ("ort", "tvm")
    store = SqliteStore(tmp_path / "data")
    job_id = store.submit(spec)
    assert store.get_job(job_id).spec.runtimes == ("ort", "tvm")  # through the queue's JSON and back


def test_a_search_measures_the_runtime_its_objective_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LWDASH_RUNTIMES", "ort,torch")

    def cfg(*objectives: str) -> SearchConfig:
        return SearchConfig(technique="magnitude_pruning", space=(KnobRange("amount", 0.1, 0.9),),
                            objectives=objectives, trials=2)

    assert trial_runtimes(cfg("top1_acc", "ort_b32_median_ms")) == ()  # the worker's selection has it
    assert trial_runtimes(cfg("top1_acc", "best_b32_median_ms")) == ()  # best of whatever is measured
    assert trial_runtimes(cfg("top1_acc", "inductor_b32_median_ms")) == ("ort", "torch", "inductor")
