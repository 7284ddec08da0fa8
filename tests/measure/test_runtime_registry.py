"""A runtime registered from outside the library shows up on every view with no other edit.

The test runtime times the ONNX artifact in ONNX Runtime with basic graph optimisation only
(``ORT_ENABLE_BASIC``, a real session option the built-in entry does not use). It is registered
by a fixture and removed afterwards; the views read the catalogue and the registry, nothing here
edits them.
"""
from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _measure_models import SmallCNN

from lwdash.analysis.frame import load_results_frame
from lwdash.data import Dataset
from lwdash.figures import METRICS, latency_choices, latency_metric, short_axis_title, tradeoff_info
from lwdash.figures.comparison import comparison_info
from lwdash.jobs.runner import RunOutput, render_model_card
from lwdash.jobs.spec import JobSpec
from lwdash.measure import measure_model
from lwdash.measure.catalogue import catalogue, latency_metrics, metric
from lwdash.measure.latency import TimingPolicy
from lwdash.measure.metrics import Metrics
from lwdash.measure.runtime_timing import measure_latencies
from lwdash.report import build_report_html, results_csv, with_model_names
from lwdash.runtimes import (
    Runner,
    Runtime,
    UnsupportedArtifact,
    get_runtime,
    list_runtimes,
    register_runtime,
    unregister_runtime,
)
from lwdash.runtimes.onnx_runtime import session_runner
from lwdash.search import OBJECTIVES, KnobRange, SearchConfig, objective_values
from lwdash.store.records import SearchTrialRecord
from lwdash.workspace import SqliteStore

FAST = TimingPolicy(warmup_runs=1, min_runs=10, min_time_s=0.02, max_runs=40, max_time_s=0.2, floor_runs=5)
KEY = "ort_basic"
TITLE = "ONNX Runtime (basic optimisation)"


def _load_basic(path: Any, threads: int) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.log_severity_level = 3
    return session_runner(ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]))


@pytest.fixture(scope="module")
def basic_runtime() -> Iterator[Runtime]:
    rt = register_runtime(Runtime(key=KEY, title=TITLE, short="ORT-basic", artifact="onnx", load=_load_basic))
    try:
        yield rt
    finally:
        unregister_runtime(KEY)
    assert KEY not in [r.key for r in list_runtimes()] and f"{KEY}_b32_median_ms" not in METRICS


@pytest.fixture(scope="module")
def measured(basic_runtime: Runtime, cnn: SmallCNN, cnn_onnx: Path, data: Dataset) -> tuple[Metrics, Metrics]:
    runtimes = ("ort", "torch", KEY)
    base, preds = measure_model(cnn, cnn_onnx, None, data, reference_preds=None, timing=FAST, runtimes=runtimes)
    again, _ = measure_model(cnn, cnn_onnx, None, data, reference_preds=preds, timing=FAST, runtimes=runtimes)
    return base, again


@pytest.fixture(scope="module")
def store(measured: tuple[Metrics, Metrics], tmp_path_factory: pytest.TempPathFactory) -> SqliteStore:
    s = SqliteStore(tmp_path_factory.mktemp("runtime-store"))
    spec = JobSpec("sample/digits_cnn", "digits", {"type": "magnitude_pruning", "version": 1, "data": {"amount": 0.5}})
    out = s.tmp_dir / "run"
    out.mkdir(parents=True)
    (out / "result.json").write_text("{}")
    s.save_result(None, spec, RunOutput(measured[0], measured[1], {}, {}, ("test runtime",), (), {"threads": 1},
                                        {"result.json": out / "result.json"}), out)
    return s


def test_measured_in_the_same_process_at_every_batch(measured: tuple[Metrics, Metrics]) -> None:
    base, again = measured
    for m in (base, again):
        assert m.runtimes == ("ort", "torch", KEY)
        for batch in (1, 32):
            assert 0 < m.latency_ms(KEY, batch) <= m.latency_ms(KEY, batch, "p90")
    assert Metrics.from_dict(base.to_dict()) == base


def test_catalogue(basic_runtime: Runtime) -> None:
    keys = [s.key for s in latency_metrics(runtime=KEY)]
    assert keys == [f"{KEY}_b1_median_ms", f"{KEY}_b1_p90_ms", f"{KEY}_b32_median_ms", f"{KEY}_b32_p90_ms"]
    spec = metric(f"{KEY}_b32_median_ms")
    assert (spec.label, spec.runtime, spec.batch, spec.direction, spec.kind) == (
        f"{TITLE} latency, batch 32", KEY, 32, "min", "ms")
    assert catalogue()[-1].key == f"{KEY}_b32_p90_ms"  # after the built-ins: registry order


def test_compare_figures_axis_choices(store: SqliteStore, measured: tuple[Metrics, Metrics]) -> None:
    choices = latency_choices()
    assert choices.runtimes[KEY] == TITLE and list(choices.runtimes)[:2] == ["ort", "ort_nofusion"]
    assert list(choices.runtimes)[-1] == "best"  # every runtime, then each result's fastest
    key = latency_metric(KEY, 32)
    assert METRICS[key].title == f"{TITLE} latency, batch 32"
    frame = load_results_frame(store)
    info = tradeoff_info(frame, key)
    assert info.x_title == f"{TITLE} latency, batch 32 (median, ms)"
    assert [p.x for p in info.points] == [pytest.approx(measured[1].latency_ms(KEY, 32))]
    assert tradeoff_info(frame, key, ratio_to_baseline=True).points[0].x == pytest.approx(
        measured[1].latency_ms(KEY, 32) / measured[0].latency_ms(KEY, 32))
    assert short_axis_title(latency_metric(KEY, 1, "p90"), False) == "ORT-basic b1 p90 (ms)"
    (rec,) = store.list_results(with_weights=False)
    side = comparison_info([rec, dataclasses.replace(rec, id="another-result", label="copy")])
    assert f"{TITLE} batch 32, median (ms)" in side.table.index


def test_search_objectives(measured: tuple[Metrics, Metrics]) -> None:
    key = f"{KEY}_b32_median_ms"
    assert OBJECTIVES[key] == ("min", f"{TITLE} latency, batch 32") and f"{KEY}_b32_p90_ms" not in OBJECTIVES
    cfg = SearchConfig(technique="magnitude_pruning", space=(KnobRange("amount", 0.1, 0.9),),
                       objectives=("top1_acc", key), trials=2)
    assert SearchConfig.from_dict(cfg.to_dict()) == cfg and cfg.directions == ("max", "min")
    trial = SearchTrialRecord("s", 0, "j", {"amount": 0.5}, {}, "done", "r", metrics=measured[1].to_dict(),
                              baseline=measured[0].to_dict())
    assert objective_values(cfg, trial) == [measured[1].top1_acc, measured[1].latency_ms(KEY, 32)]


def test_report_and_csv(store: SqliteStore, measured: tuple[Metrics, Metrics]) -> None:
    frame = with_model_names(store, load_results_frame(store))
    base, comp = measured
    speedup = base.latency_ms(KEY, 32) / comp.latency_ms(KEY, 32)
    assert frame.loc[0, f"{KEY}_b32_speedup"] == pytest.approx(speedup)
    html = build_report_html(store, frame, figures={})
    assert "<th>ORT-basic b32 speed-up</th>" in html and f"{speedup:.2f}x" in html
    back = pd.read_csv(io.StringIO(results_csv(frame)))
    for col in (f"{KEY}_b1_median_ms", f"{KEY}_b32_p90_ms", f"baseline_{KEY}_b32_median_ms", f"{KEY}_b1_speedup"):
        assert col in back.columns, col
    assert back.loc[0, f"{KEY}_b1_median_ms"] == pytest.approx(comp.latency_ms(KEY, 1))
    assert back.loc[0, f"baseline_{KEY}_b32_p90_ms"] == pytest.approx(base.latency_ms(KEY, 32, "p90"))


def test_model_card_and_detail_table(measured: tuple[Metrics, Metrics]) -> None:
    from lwdash.ui.panels import metrics_comparison

    base, comp = measured
    card = render_model_card({
        "technique": {"type": "magnitude_pruning", "version": 1, "data": {}}, "label": "x", "family": "pruning",
        "notes": [], "steps": [], "environment": {}, "baseline": base.to_dict(), "compressed": comp.to_dict(),
        "seed": 0, "threads": 1, "model": {"id": "m", "source_format": "onnx", "input_shape": [1, 16, 16],
                                           "num_classes": 10},
        "data": {"ref": "d", "name": "d", "test_samples": 120, "train_samples": 1, "calib_samples": 1},
    })
    assert f"| {TITLE} latency, batch 32 (median) | {base.latency_ms(KEY, 32):.3f} ms |" in card
    assert f"| {TITLE} | - | {comp.latency_ms(KEY, 1):.3f} / {comp.latency_ms(KEY, 1, 'p90'):.3f} |" in card  # matrix
    rows = metrics_comparison(base, comp).set_index("metric")
    assert f"{TITLE} batch 1, p90 (ms)" not in rows.index  # each runtime's figures are in the latency matrix
    from lwdash.analysis.latency_matrix import matrix_frame

    matrix = matrix_frame(base, comp).set_index("runtime")
    assert matrix.loc[TITLE, "b1 p90 ms"] == comp.latency_ms(KEY, 1, "p90")
    assert matrix.loc[TITLE, "baseline b1 p90 ms"] == base.latency_ms(KEY, 1, "p90")


def test_unavailable_and_refusing_runtimes_say_why(cnn: SmallCNN, cnn_onnx: Path, data: Dataset) -> None:
    def refuse(artifact: Any, threads: int) -> Runner:
        raise UnsupportedArtifact("int8 graphs are not supported by this runtime\nsecond line dropped")

    register_runtime(Runtime(key="test_absent", title="Absent", artifact="onnx", load=_load_basic,
                             available=lambda: "the test_absent package is not installed"))
    register_runtime(Runtime(key="test_refuses", title="Refuses", artifact="pytorch", load=refuse))
    try:
        records, notes = measure_latencies({"onnx": cnn_onnx, "pytorch": cnn}, data.test, policy=FAST,
                                           runtimes=("ort", "torch", "test_absent", "test_refuses"))
    finally:
        unregister_runtime("test_absent")
        unregister_runtime("test_refuses")
    notes = {k: v for k, v in notes.items() if k in ("test_absent", "test_refuses")}
    assert notes == {"test_absent": "the test_absent package is not installed",
                     "test_refuses": "int8 graphs are not supported by this runtime"}
    timed = {r.runtime for r in records}
    assert {"ort", "torch"} <= timed and not timed & {"test_absent", "test_refuses"}
    assert all(math.isfinite(r.median_ms) for r in records)


def test_registry_rejects_bad_entries() -> None:
    ort_entry = get_runtime("ort")
    with pytest.raises(ValueError, match="registered already"):
        register_runtime(ort_entry)
    for bad in ("Ort", "ort-x", "ort_b32", "1ort", ""):
        with pytest.raises(ValueError, match="snake_case"):
            Runtime(key=bad, title="x", artifact="onnx", load=_load_basic)
    with pytest.raises(ValueError, match="artifact must be one of"):
        Runtime(key="x", title="x", artifact="tflite", load=_load_basic)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown runtime 'nope'"):
        get_runtime("nope")
    with pytest.raises(KeyError):
        unregister_runtime("nope")
    assert ort_entry.short == "ORT" and ort_entry.row_title == "ONNX Runtime"
    assert get_runtime("torch").row_title == "PyTorch" and get_runtime("torch").title == "PyTorch eager"
