"""The metric catalogue, latency records, and records stored before them (flat Metrics fields) read back.

``data/legacy_metrics.json`` was written by running the code before the runtime registry
(git dbf1cb7): ``execute`` of magnitude pruning 0.5 on the digits MLP, saved by
``SqliteStore.save_result``, plus ``measure_baseline``'s payload and that store's results frame
row. Every figure stored then must load into the new structure with the same numbers.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from lwdash.analysis.frame import load_results_frame, measured_columns
from lwdash.jobs.runner import RunOutput, render_model_card
from lwdash.jobs.spec import JobSpec
from lwdash.measure.catalogue import (
    PRIMARY_RUNTIME,
    catalogue,
    latency_metrics,
    metric,
    metrics_for,
    objectives,
    speedups,
    table_text,
    table_value,
)
from lwdash.measure.metrics import LatencyRecord, Metrics, flatten, latency_key, parse_latency_key
from lwdash.runtimes import LATENCY_BATCHES, list_runtimes
from lwdash.search import KnobRange, SearchConfig, objective_values, search_summary
from lwdash.store.records import SearchTrialRecord
from lwdash.workspace import SqliteStore

LEGACY = json.loads((Path(__file__).parent / "data" / "legacy_metrics.json").read_text())
LEGACY_LATENCY = [k for k in LEGACY["store_row"]["baseline"] if k.endswith("_ms")]


def test_legacy_layout_is_the_flat_one() -> None:
    # The fixture really is the old shape: 8 flat latency fields, no records.
    assert sorted(LEGACY_LATENCY) == sorted(f"{rt}_b{b}_{s}_ms" for rt in ("ort", "torch") for b in (1, 32)
                                            for s in ("median", "p90"))
    assert "latency" not in LEGACY["store_row"]["baseline"]


@pytest.mark.parametrize("where", ["result_json", "store_row"])
@pytest.mark.parametrize("which", ["baseline", "compressed"])
def test_flat_records_load_with_the_same_numbers(where: str, which: str) -> None:
    old = LEGACY[where][which]
    m = Metrics.from_dict(old)
    for key, value in old.items():
        assert m.value(key) == value, key  # exact: nothing is recomputed
    for key in LEGACY_LATENCY:
        runtime, batch, stat = parse_latency_key(key)  # type: ignore[misc]
        assert m.latency_ms(runtime, batch, stat) == old[key]
    assert {(r.runtime, r.batch) for r in m.latency} == {(rt, b) for rt in ("ort", "torch") for b in (1, 32)}
    flat = m.flat()
    assert {k: flat[k] for k in old} == old  # the flat view of the new record is the old record, key for key,
    best = min(("ort", "torch"), key=lambda rt: old[f"{rt}_b32_median_ms"])
    assert set(flat) - set(old) == {f"best_b{b}_{s}" for b in (1, 32) for s in ("median_ms", "p90_ms", "runtime")}
    assert flat["best_b32_runtime"] == best and flat["best_b32_median_ms"] == old[f"{best}_b32_median_ms"]
    assert flat["best_b32_p90_ms"] == old[f"{best}_b32_p90_ms"]  # plus the fastest runtime's figures
    again = Metrics.from_dict(m.to_dict())  # and today's stored shape round-trips
    assert again == m and "latency" in m.to_dict() and not any(k.endswith("_ms") for k in m.to_dict())


def test_baseline_analysis_payload_loads() -> None:
    old = LEGACY["baseline_analysis"]["metrics"]
    m = Metrics.from_dict(old)
    assert m.latency_ms("ort", 32) == old["ort_b32_median_ms"] and m.top1_acc == old["top1_acc"]


def test_store_row_in_the_old_shape_gives_the_old_frame_row(tmp_path: Path) -> None:
    """A result stored by the old code (flat JSON in the results table) reads back as the old frame row showed it."""
    store = SqliteStore(tmp_path / "data")
    spec = JobSpec("sample/digits_mlp", "digits", {"type": "magnitude_pruning", "version": 1, "data": {"amount": 0.5}})
    out = store.tmp_dir / "run"
    out.mkdir(parents=True)
    (out / "result.json").write_text("{}")
    new = Metrics.from_dict(LEGACY["store_row"]["baseline"])
    rid = store.save_result(None, spec, RunOutput(new, new, {}, {}, (), (), {}, {"result.json": out / "result.json"}), out)
    with store.backend._write() as conn:  # the row exactly as the old code wrote it
        conn.execute("UPDATE results SET baseline = ?, compressed = ? WHERE id = ?",
                     (json.dumps(LEGACY["store_row"]["baseline"]), json.dumps(LEGACY["store_row"]["compressed"]), rid))
    rec = store.get_result(rid)
    assert rec.compressed == Metrics.from_dict(LEGACY["store_row"]["compressed"])
    row = load_results_frame(store).iloc[0]
    old_row: dict[str, Any] = LEGACY["results_frame_row"]
    numeric = [c for c in LEGACY["results_frame_columns"] if c in old_row and isinstance(old_row[c], (int, float))
               and c not in ("seed", "threads")]
    assert len(numeric) > 50  # every measured, baseline, ratio and speed-up column
    for col in numeric:
        assert row[col] == pytest.approx(old_row[col], rel=1e-12), col
    # The old frame's columns are all still there (order of the latency blocks: registry order).
    assert set(LEGACY["results_frame_columns"]) <= set(row.index)


def _card_input(b: dict[str, Any], c: dict[str, Any]) -> dict[str, Any]:
    return {
        "technique": {"type": "magnitude_pruning", "version": 1, "data": {"amount": 0.5}}, "label": "x",
        "family": "pruning", "notes": [], "steps": [], "environment": {}, "baseline": b, "compressed": c, "seed": 0,
        "threads": 1, "model": {"id": "sample/digits_mlp", "source_format": "sample", "arch": "mlp",
                                "input_shape": [1, 8, 8], "num_classes": 10},
        "data": {"ref": "digits", "name": "digits", "test_samples": 360, "train_samples": 1, "calib_samples": 1},
    }


def test_model_card_of_an_old_result_json() -> None:
    b, c = LEGACY["result_json"]["baseline"], LEGACY["result_json"]["compressed"]
    card = render_model_card(_card_input(b, c))
    speed = b["ort_b32_median_ms"] / c["ort_b32_median_ms"]
    assert (f"| ONNX Runtime latency, batch 32 (median) | {b['ort_b32_median_ms']:.3f} ms | "
            f"{c['ort_b32_median_ms']:.3f} ms | {speed:.2f}x faster |") in card
    assert f"| PyTorch latency, batch 32 (median) | {b['torch_b32_median_ms']:.3f} ms |" in card
    best_b = min(b["ort_b32_median_ms"], b["torch_b32_median_ms"])
    assert f"| Best runtime latency, batch 32 (median) | {best_b:.3f} ms |" in card
    # every runtime at both batches, median / p90, in the latency matrix; the runtimes it predates have none
    assert (f"| PyTorch eager | - | {c['torch_b1_median_ms']:.3f} / {c['torch_b1_p90_ms']:.3f} | "
            f"{b['torch_b1_median_ms']:.3f} / {b['torch_b1_p90_ms']:.3f} |") in card
    assert "| OpenVINO | on | - / - | - / - | - |" in card
    # The same result stored in today's shape renders the same card.
    new = _card_input(Metrics.from_dict(b).to_dict(), Metrics.from_dict(c).to_dict())
    assert render_model_card(new) == card


def test_search_reads_old_and_new_trial_records() -> None:
    cfg = SearchConfig(technique="magnitude_pruning", space=(KnobRange("amount", 0.1, 0.9),),
                       objectives=("top1_acc", "ort_b32_median_ms"), trials=2)
    old_b, old_c = LEGACY["store_row"]["baseline"], LEGACY["store_row"]["compressed"]
    want = [old_c["top1_acc"], old_c["ort_b32_median_ms"]]
    trials = [
        SearchTrialRecord("s", 0, "j0", {"amount": 0.5}, {}, "done", "r0", metrics=old_c, baseline=old_b),
        SearchTrialRecord("s", 1, "j1", {"amount": 0.5}, {}, "done", "r1",
                          metrics=Metrics.from_dict(old_c).to_dict(), baseline=Metrics.from_dict(old_b).to_dict()),
    ]
    assert objective_values(cfg, trials[0]) == want == objective_values(cfg, trials[1])
    summary = search_summary(cfg, trials)
    assert summary["measured"] == 2
    ratio = old_c["ort_b32_median_ms"] / old_b["ort_b32_median_ms"]
    assert summary["hypervolume"][0] == pytest.approx(old_c["top1_acc"] * (1 - ratio))


def test_catalogue_covers_every_field_and_every_runtime() -> None:
    keys = [s.key for s in catalogue()]
    assert len(keys) == len(set(keys))
    matrix_only = {f"{rt.key}_b{b}_compile_s" for rt in list_runtimes() for b in LATENCY_BATCHES} | {
        f"best_b{b}_runtime" for b in LATENCY_BATCHES}  # frame / CSV columns of the latency matrix, not metrics
    assert matrix_only <= set(measured_columns())
    scalars = [c for c in measured_columns() if c not in ("threads", "test_samples", *matrix_only)
               and parse_latency_key(c) is None]
    assert set(scalars) <= set(keys)
    assert {s.key for s in latency_metrics()} == {latency_key(rt, b, s) for rt in ["best", *(r.key for r in list_runtimes())]
                                                  for b in LATENCY_BATCHES for s in ("median", "p90")}
    assert [rt.key for rt in list_runtimes()][:2] == ["ort", "ort_nofusion"] and PRIMARY_RUNTIME == "ort"
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        metric("nope")
    with pytest.raises(ValueError, match="unknown view"):
        metrics_for("nope")


def test_built_in_labels_are_the_ones_every_view_showed() -> None:
    """The strings the five hand-written tables had, now derived from one declaration each."""
    spec = metric("torch_b32_p90_ms")
    assert (spec.label, spec.axis_unit, spec.short, spec.row) == (
        "PyTorch eager latency, batch 32", "p90, ms", "PyTorch b32 p90", "PyTorch batch 32, p90 (ms)")
    assert metric("ort_b1_median_ms").card == "ONNX Runtime latency, batch 1 (median)"
    runtimes = [rt.key for rt in list_runtimes()]
    assert [s.key for s in metrics_for("compare")][11:] == ["best_b1_median_ms", "best_b32_median_ms",
                                                            *(f"{rt}_b32_median_ms" for rt in runtimes)]
    # the result detail: the best runtime's figures; each runtime's are in the latency matrix beside the table
    assert [s.key for s in metrics_for("detail")][11:] == [f"best_b{b}_{s}_ms" for b in (1, 32) for s in ("median", "p90")]
    assert len(metrics_for("card")) == 11 + 2 + len(runtimes)
    assert metric("best_b32_median_ms").objective == "Best runtime latency, batch 32"
    assert {s.key: s.objective for s in objectives()}["ort_b32_median_ms"] == "ONNX Runtime latency, batch 32"
    assert [s.key for s in objectives()][:5] == ["top1_acc", "onnx_bytes", "compressed_bytes", "sparse_bytes", "macs"]
    assert speedups()["ort_b32_speedup"].key == "ort_b32_median_ms"
    assert table_text(metric("onnx_bytes"), table_value(metric("onnx_bytes"), 102_400)) == "100.0"
    assert table_text(metric("top1_acc"), table_value(metric("top1_acc"), 0.975)) == "97.50"
    assert table_text(metric("loss"), math.nan) == "-"


def test_best_latency_and_missing_records() -> None:
    m = Metrics.from_dict({**LEGACY["store_row"]["compressed"]})
    best = m.best_latency(32)
    assert best is not None and best.median_ms == min(m.latency_ms(rt, 32) for rt in ("ort", "torch"))
    assert m.best_latency(32, "p90") == min((r for r in m.latency if r.batch == 32), key=lambda r: r.p90_ms)
    assert m.best_latency(7) is None
    assert math.isnan(m.latency_ms("nope", 32)) and m.latency_record("nope", 32) is None
    with pytest.raises(KeyError):
        m.value("nope")
    partial = flatten({"top1_acc": 0.5, "latency": [LatencyRecord("ort", 1, 1.0, 2.0).to_dict()]})
    assert partial == {"top1_acc": 0.5, "ort_b1_median_ms": 1.0, "ort_b1_p90_ms": 2.0, "best_b1_median_ms": 1.0,
                       "best_b1_p90_ms": 2.0, "best_b1_runtime": "ort"}
    assert parse_latency_key("ort_nofusion_b32_p90_ms") == ("ort_nofusion", 32, "p90")
    assert parse_latency_key("top1_acc") is None
    with pytest.raises(TypeError):
        Metrics.from_dict({"top1_acc": 0.5})  # a scalar field missing: not a record
