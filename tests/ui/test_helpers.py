"""Pure helpers of the UI layer: metrics-vs-baseline table, layer table, chart selection parsing."""
from __future__ import annotations

import math

import pytest
from torch import nn

from lwdash.measure.catalogue import catalogue
from lwdash.measure.metrics import Metrics
from lwdash.ui.charts import selected_result_id
from lwdash.ui.panels import comparison_view, layer_table, metrics_comparison


def _metrics(**over: float) -> Metrics:
    # every scalar metric under its flat key (the stored shape before records), latency on ONNX Runtime only
    base: dict[str, float] = {s.key: 1.0 for s in catalogue() if s.runtime is None}
    base.update(top1_acc=0.98, onnx_bytes=102_400, ort_b32_median_ms=4.0, threads=1, test_samples=360)
    base.update(over)
    return Metrics.from_dict(base)


def test_metrics_comparison_rows_change_ratio_and_speedup() -> None:
    table = metrics_comparison(_metrics(), _metrics(top1_acc=0.975, onnx_bytes=25_600, ort_b32_median_ms=2.0))
    rows = table.set_index("metric")
    acc = rows.loc["Top-1 accuracy, ONNX Runtime (%)"]
    assert acc["baseline"] == pytest.approx(98.0) and acc["compressed"] == pytest.approx(97.5)
    assert acc["change"] == pytest.approx(-0.5) and math.isnan(acc["ratio"])
    size = rows.loc["ONNX file (KiB)"]
    assert (size["baseline"], size["compressed"]) == (pytest.approx(100.0), pytest.approx(25.0))
    assert size["ratio"] == pytest.approx(0.25)
    lat = rows.loc["Best runtime batch 32, median (ms)"]  # each runtime's own figures: the latency matrix
    assert lat["ratio"] == pytest.approx(0.5) and lat["speed-up"] == pytest.approx(2.0)
    assert "ONNX Runtime batch 32, median (ms)" not in rows.index
    assert math.isnan(size["speed-up"])


def test_comparison_view_formats_each_row_in_its_unit() -> None:
    view = comparison_view(metrics_comparison(_metrics(params_count=17_230), _metrics(params_count=4_119)))
    rows = view.set_index("metric")
    assert rows.loc["Parameters"].tolist() == ["17,230", "4,119", "-13,111", "0.239x", ""]
    assert rows.loc["Top-1 accuracy, ONNX Runtime (%)"].tolist() == ["98.00", "98.00", "+0.00", "", ""]
    assert rows.loc["Best runtime batch 32, median (ms)"].tolist() == ["4", "4", "+0", "1.000x", "1.00x"]


def test_layer_table_lists_parameter_holding_layers() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    table = layer_table(model)
    assert table["layer"].tolist() == ["0", "3"]
    assert table["type"].tolist() == ["Conv2d", "Linear"]
    assert table["params"].tolist() == [4 * 9 + 4, 144 * 10 + 10]
    assert table["weight shape"].tolist() == ["(4, 1, 3, 3)", "(10, 144)"]


def test_selected_result_id_reads_customdata() -> None:
    event = {"selection": {"points": [{"customdata": ""}, {"customdata": "abc123", "x": 1}]}}
    assert selected_result_id(event) == "abc123"  # the baseline star's empty id is skipped
    assert selected_result_id({"selection": {"points": [{"customdata": ["r9", 3]}]}}) == "r9"
    assert selected_result_id({"selection": {"points": []}}) is None
    assert selected_result_id(None) is None
