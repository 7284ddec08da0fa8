"""3-D front, per-layer bar records, sensitivity curves and the side-by-side table, on their info records."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from lwdash.figures import plot_tradeoff, plot_tradeoff_3d, tradeoff3d_info, tradeoff_info
from lwdash.figures.comparison import comparison_info
from lwdash.figures.layers import (
    layer_error_info,
    layer_share_info,
    layer_sparsity_info,
    plot_layer_bars,
    plot_sensitivity,
    sensitivity_info,
)
from lwdash.measure.catalogue import catalogue
from lwdash.measure.metrics import Metrics

BASE = {"baseline_top1_acc": 0.98, "baseline_onnx_bytes": 100_000, "baseline_ort_b32_median_ms": 4.0}


def _row(rid: str, family: str, acc: float, size: int, ms: float) -> dict[str, object]:
    return {"id": rid, "model_id": "sample/cnn", "technique": f"t_{rid}", "family": family, "label": f"r {rid}",
            "top1_acc": acc, "onnx_bytes": size, "ort_b32_median_ms": ms, **BASE}


# acc (max), size (min), latency (min):
#   a: 0.97, 60k, 1.0  -> front (fastest)
#   b: 0.975, 30k, 2.0 -> front (smallest of the accurate ones)
#   c: 0.96, 70k, 3.0  -> dominated by a in all three
#   d: 0.80, 20k, 5.0  -> front (smallest)
FRAME = pd.DataFrame([_row("a", "pruning", 0.97, 60_000, 1.0), _row("b", "quantization", 0.975, 30_000, 2.0),
                      _row("c", "pruning", 0.96, 70_000, 3.0), _row("d", "low_rank", 0.80, 20_000, 5.0)])


def test_3d_front_is_non_dominated_in_all_three_objectives() -> None:
    info = tradeoff3d_info(FRAME)
    flags = {p.result_id: p.on_front for p in info.points}
    assert flags == {"a": True, "b": True, "c": False, "d": True}
    # b is dominated on the 2-D size front by nothing, a is dominated there by b: the 3-D front keeps a (fastest)
    size2d = {p.result_id: p.on_front for p in tradeoff_info(FRAME, "onnx_bytes").points}
    assert size2d["a"] is False and size2d["b"] is True
    assert info.baselines == (("sample/cnn", pytest.approx(100_000 / 1024), 4.0, pytest.approx(98.0)),)
    assert info.titles == ("ONNX size (KiB)", "ORT b32 latency (ms)", "top-1 ORT (%)")  # short: 3-D titles collide
    fig = plot_tradeoff_3d(info)
    ids = sorted(i for tr in fig.data if tr.customdata is not None for i in tr.customdata)
    assert ids == ["a", "b", "c", "d"]
    assert fig.layout.scene.zaxis.title.text == info.titles[2]


def test_3d_ratio_mode_puts_the_baseline_at_one_and_zero() -> None:
    info = tradeoff3d_info(FRAME, ratio_to_baseline=True)
    pts = {p.result_id: p for p in info.points}
    assert (pts["b"].x, pts["b"].y, pts["b"].z) == (pytest.approx(0.3), pytest.approx(0.5), pytest.approx(-0.5))
    assert info.baselines[0][1:] == (1.0, 1.0, 0.0)
    assert info.titles == ("ONNX size (x baseline)", "ORT b32 latency (x baseline)", "Δ top-1 ORT (pts)")


def test_dominated_points_stay_readable_and_the_front_is_joined() -> None:
    fig = plot_tradeoff(tradeoff_info(FRAME, "onnx_bytes"))
    dominated = [tr for tr in fig.data if tr.marker and tr.marker.symbol == "circle-open"]
    assert dominated and all(tr.opacity >= 0.5 for tr in dominated)
    line = next(tr for tr in fig.data if tr.name == "Pareto front")
    assert line.line.shape == "hv" and len(line.x) == 3  # d, b, then the baseline


def _layer_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "layer": ["conv1.weight", "fc.weight"], "kind": ["conv", "linear"], "shape": ["8x1x3x3", "10x8"],
        "params": [72, 80], "params_share": [72 / 152, 80 / 152], "macs": [4608.0, 80.0],
        "macs_share": [4608 / 4688, 80 / 4688], "compressed_params": [72, 80], "compressed_macs": [4608.0, 80.0],
        "sparsity_before": [0.0, 0.0], "sparsity_after": [0.5, 0.801], "unique_after": [np.nan, np.nan],
        "dtype_after": ["float32", "float32"], "mse": [1e-4, 0.0], "sqnr_db": [20.0, np.nan], "note": ["", "unchanged"],
    })


def test_layer_bar_records_are_percentages_in_model_order() -> None:
    frame = _layer_frame()
    sp = layer_sparsity_info(frame)
    assert sp.layers == ("conv1.weight", "fc.weight")
    assert sp.series[1][1] == (50.0, pytest.approx(80.1)) and sp.series[1][3] == ("50.0 %", "80.1 %")
    share = layer_share_info(frame)
    assert sum(share.series[0][1]) == pytest.approx(100.0) and sum(share.series[1][1]) == pytest.approx(100.0)
    err = layer_error_info(frame)
    assert err.series[0][1][0] == 20.0 and err.series[0][3] == ("20.0 dB · MSE 1.00e-04", "unchanged")
    assert "Unchanged (infinite SQNR): fc.weight." in err.note and not err.empty
    fig = plot_layer_bars(sp)
    assert [tr.name for tr in fig.data] == ["original", "compressed"] and fig.data[0].orientation == "h"
    assert fig.layout.xaxis.range[1] > 80.1  # room for the printed value


def test_layer_error_without_records_says_so() -> None:
    frame = _layer_frame().assign(mse=np.nan, sqnr_db=np.nan, note="", macs=np.nan, macs_share=np.nan)
    err = layer_error_info(frame)
    assert err.note.startswith("No per-layer weight error was recorded") and err.empty  # a message, not empty axes
    pruned = _layer_frame().assign(mse=np.nan, sqnr_db=np.nan, note=["shape changed (16 -> 8 channels);", ""])
    note = layer_error_info(pruned).note
    assert ".;" not in note and note.endswith("conv1.weight: shape changed (16 -> 8 channels).")
    assert "No per-layer MACs" in layer_share_info(frame).note


SCAN = {"mode": "prune", "levels": [0.3, 0.6, 0.9], "baseline_acc": 0.98, "metric": "top-1 accuracy",
        "layers": [{"name": "conv1.weight", "acc": [0.98, 0.95, 0.50]}, {"name": "fc.weight", "acc": [0.98, 0.97, 0.90]}]}


def test_sensitivity_curves_and_most_sensitive_layer() -> None:
    info = sensitivity_info(SCAN)
    assert info.levels == (0.3, 0.6, 0.9) and info.baseline_acc == pytest.approx(98.0)
    assert info.curves[0] == ("conv1.weight", (pytest.approx(98.0), pytest.approx(95.0), pytest.approx(50.0)))
    assert [n for n, _ in info.most_sensitive] == ["conv1.weight", "fc.weight"]
    assert info.most_sensitive[0][1] == pytest.approx(48.0)
    assert info.summary.startswith("Most sensitive at 0.9 removed: conv1.weight (-48.0 pts)")
    fig = plot_sensitivity(info)
    assert [tr.name for tr in fig.data] == ["conv1.weight", "fc.weight"]
    q = sensitivity_info({**SCAN, "mode": "quantize", "levels": [4, 6, 8],
                          "layers": [{"name": "conv1.weight", "acc": [0.90, 0.97, 0.98]},
                                     {"name": "fc.weight", "acc": [0.60, 0.98, 0.98]}]})
    assert q.most_sensitive[0] == ("fc.weight", pytest.approx(38.0))  # 4 bits (index 0) is the strongest level
    with pytest.raises(ValueError, match="not a sensitivity scan"):
        sensitivity_info({"x": 1})


def test_a_layer_that_gains_reads_as_a_gain_and_the_axis_stops_near_100() -> None:
    info = sensitivity_info({**SCAN, "mode": "quantize", "levels": [4, 8],
                             "layers": [{"name": "conv1.weight", "acc": [0.90, 0.98]},
                                        {"name": "fc.weight", "acc": [0.983, 0.98]}]})  # 4 bits: +0.3 points
    assert info.summary == ("Most sensitive at 4 bits: conv1.weight (-8.0 pts), fc.weight (+0.3 pts). "
                            "Least: fc.weight (+0.3 pts).")
    assert "--" not in info.summary
    top = plot_sensitivity(info).layout.yaxis.range[1]
    assert 100 <= top < 102


@dataclasses.dataclass
class _Rec:
    id: str
    label: str
    model_id: str
    baseline: Metrics
    compressed: Metrics


def _m(**over: float) -> Metrics:
    vals = {s.key: 1.0 for s in catalogue()}  # every metric under its flat key
    vals.update(top1_acc=0.98, onnx_bytes=102_400, ort_b32_median_ms=4.0, threads=1, test_samples=360)
    vals.update(over)
    return Metrics.from_dict(vals)


def test_side_by_side_table_ratios_and_best() -> None:
    recs = [_Rec("aaaaaa1", "prune", "m", _m(), _m(top1_acc=0.97, onnx_bytes=51_200, ort_b32_median_ms=4.4)),
            _Rec("bbbbbb2", "int8", "m", _m(), _m(top1_acc=0.975, onnx_bytes=25_600, ort_b32_median_ms=2.0))]
    info = comparison_info(recs)
    assert info.columns == ("baseline: m", "prune · aaaaaa", "int8 · bbbbbb")
    t = info.table
    assert t.loc["ONNX file (KiB)", "prune · aaaaaa"] == "50.0 (0.50x)"
    assert t.loc["Top-1 accuracy, ONNX Runtime (%)", "int8 · bbbbbb"] == "97.50 (-0.50 pts)"
    assert info.best["Top-1 accuracy, ONNX Runtime (%)"] == "int8 · bbbbbb"
    assert info.best["ONNX Runtime batch 32, median (ms)"] == "int8 · bbbbbb"
    assert info.values.loc["ONNX file (KiB)", "baseline: m"] == pytest.approx(100.0)
    assert info.note == ""
    with pytest.raises(ValueError, match="2 to 4"):
        comparison_info(recs[:1])
    other = _Rec("cccccc3", "x", "other", _m(), _m())
    assert "2 different models" in comparison_info([*recs, other]).note
    assert not math.isnan(info.values.loc["Parameters", "int8 · bbbbbb"])
