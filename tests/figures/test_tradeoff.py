"""Trade-off extractor: points, Pareto flags, baselines, ratio mode and axis titles; the figure is only built."""
from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
import pytest

from lwdash.figures import METRICS, latency_choices, latency_metric, plot_tradeoff, tradeoff_info

BASE = {"baseline_top1_acc": 0.98, "baseline_onnx_bytes": 100_000, "baseline_ort_b32_median_ms": 4.0,
        "baseline_macs": 1_000_000}


def _row(rid: str, technique: str, family: str, acc: float, size: int, ms: float, **extra: object) -> dict[str, object]:
    return {"id": rid, "model_id": "sample/cnn", "technique": technique, "family": family, "label": f"{technique} {rid}",
            "top1_acc": acc, "onnx_bytes": size, "ort_b32_median_ms": ms, "macs": 500_000, **BASE, **extra}


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        [
            _row("a", "magnitude_pruning", "pruning", 0.97, 60_000, 4.1, **{"cfg.amount": 0.5}),
            _row("b", "magnitude_pruning", "pruning", 0.90, 70_000, 4.0, **{"cfg.amount": 0.3}),  # dominated by a
            _row("c", "dynamic_int8", "quantization", 0.975, 30_000, 2.0),  # front
            _row("d", "svd", "low_rank", 0.80, 20_000, 1.5),  # front (smallest)
            _row("e", "fp16", "precision", 0.95, 50_000, 6.0),  # dominated by c
        ]
    )


def test_size_front_flags_and_baseline(frame: pd.DataFrame) -> None:
    info = tradeoff_info(frame, "onnx_bytes")
    flags = {p.result_id: p.on_front for p in info.points}
    assert flags == {"a": False, "b": False, "c": True, "d": True, "e": False}
    # a (97 %, 60 kB) is beaten by c (97.5 %, 30 kB); the baseline (98 %, 100 kB) is the most accurate: on the front
    assert len(info.baselines) == 1
    base = info.baselines[0]
    assert base.model_id == "sample/cnn" and base.on_front and base.runs == 5
    assert base.x == pytest.approx(100_000 / 1024) and base.y == pytest.approx(98.0)
    # the step line runs from the smallest model to the largest front point
    assert [round(x * 1024) for x, _ in info.front] == [20_000, 30_000, 100_000]
    assert info.directions == ("min", "max")
    assert info.x_title == "ONNX file size (KiB)"
    assert info.y_title == "Top-1 accuracy, ONNX Runtime, test split (%)"
    assert info.skipped == 0


def test_latency_axis_names_runtime_and_batch(frame: pd.DataFrame) -> None:
    info = tradeoff_info(frame, "ort_b32_median_ms")
    assert info.x_title == "ONNX Runtime latency, batch 32 (median, ms)"
    assert tradeoff_info(frame, "torch_b1_median_ms").x_title == "PyTorch eager latency, batch 1 (median, ms)"
    flags = {p.result_id: p.on_front for p in info.points}
    # by latency: d fastest, c next; a (4.1 ms, 97 %) is slower and less accurate than the baseline (4.0 ms, 98 %)
    assert flags == {"a": False, "b": False, "c": True, "d": True, "e": False}


def test_ratio_mode_uses_each_results_own_baseline(frame: pd.DataFrame) -> None:
    info = tradeoff_info(frame, "onnx_bytes", ratio_to_baseline=True)
    pts = {p.result_id: p for p in info.points}
    assert pts["c"].x == pytest.approx(0.3)
    assert pts["c"].y == pytest.approx(-0.5)  # 97.5 % vs 98 %: -0.5 points
    assert [(b.x, b.y, b.name) for b in info.baselines] == [(1.0, 0.0, "sample/cnn")]
    assert info.x_title == "ONNX file size: ratio to baseline (x)"
    assert info.y_title == "Top-1 accuracy, ONNX Runtime, test split: change vs baseline (points)"
    assert tradeoff_info(frame, "ort_b1_median_ms", ratio_to_baseline=True).x_title == (
        "ONNX Runtime latency, batch 1 (median): ratio to baseline (x)"
    )


def test_hover_names_technique_config_and_metrics(frame: pd.DataFrame) -> None:
    info = tradeoff_info(frame, "onnx_bytes")
    hover = next(p.hover for p in info.points if p.result_id == "a")
    assert "magnitude_pruning (pruning)" in hover
    assert "amount=0.5" in hover
    assert "0.60x baseline" in hover  # 60 kB of 100 kB
    assert "-1.00 pts vs baseline" in hover


def test_missing_metrics_are_skipped_not_plotted(frame: pd.DataFrame) -> None:
    frame.loc[frame["id"] == "e", "onnx_bytes"] = math.nan
    info = tradeoff_info(frame, "onnx_bytes")
    assert info.skipped == 1
    assert {p.result_id for p in info.points} == {"a", "b", "c", "d"}


def test_baselines_per_model_use_the_median_of_their_runs(frame: pd.DataFrame) -> None:
    other = _row("z", "fp16", "precision", 0.5, 10_000, 1.0, model_name="tiny mlp")
    other.update(model_id="upload/x", baseline_top1_acc=0.6, baseline_onnx_bytes=20_480)
    frame.loc[0, "baseline_onnx_bytes"] = 999_999  # an outlier run does not move the median
    info = tradeoff_info(pd.concat([frame, pd.DataFrame([other])], ignore_index=True), "onnx_bytes")
    by_model = {b.model_id: b for b in info.baselines}
    assert set(by_model) == {"sample/cnn", "upload/x"}
    assert by_model["sample/cnn"].x == pytest.approx(100_000 / 1024)
    assert by_model["upload/x"].x == pytest.approx(20.0) and by_model["upload/x"].name == "tiny mlp"
    # in ratio mode every result is measured against its own baseline: one reference point at (1x, 0 points)
    ratio = tradeoff_info(pd.concat([frame, pd.DataFrame([other])], ignore_index=True), "onnx_bytes", ratio_to_baseline=True)
    assert [(b.x, b.y, b.runs) for b in ratio.baselines] == [(1.0, 0.0, 6)]


def test_empty_frame_and_unknown_metric() -> None:
    info = tradeoff_info(pd.DataFrame(columns=["id", "top1_acc", "onnx_bytes"]), "onnx_bytes")
    assert info.points == () and info.baselines == () and info.front == ()
    assert len(plot_tradeoff(info).data) == 0
    with pytest.raises(ValueError, match="unknown metric 'bogus'"):
        tradeoff_info(pd.DataFrame(), "bogus")


def test_every_metric_has_a_titled_axis() -> None:
    for name, m in METRICS.items():
        assert m.unit and m.direction in ("max", "min"), name
    # every runtime x batch x statistic of every registered runtime, and of each result's best runtime
    runtimes = ("best", "ort", "ort_nofusion", "openvino", "torch", "inductor", "tvm")
    assert {k for k in METRICS if k.endswith("_ms")} == {f"{rt}_b{b}_{s}_ms" for rt in runtimes for b in (1, 32)
                                                         for s in ("median", "p90")}
    assert METRICS["best_b32_median_ms"].title == "Best runtime latency, batch 32"


def test_latency_axis_choices_are_the_registered_runtimes() -> None:
    choices = latency_choices()
    assert choices.runtimes == {"ort": "ONNX Runtime", "ort_nofusion": "ONNX Runtime, fusion off",
                                "openvino": "OpenVINO", "torch": "PyTorch eager", "inductor": "torch.compile (Inductor)",
                                "tvm": "TVM (Relax, untuned)", "best": "Best runtime (each result's fastest)"}
    assert latency_metric("best", 32) == "best_b32_median_ms"
    assert (choices.batches, choices.default_batch) == ((1, 32), 32)
    assert latency_metric("torch", 1) == "torch_b1_median_ms"
    with pytest.raises(ValueError, match="unknown metric"):
        latency_metric("nope", 32)


def test_figure_has_one_trace_per_family_plus_front_and_baseline(frame: pd.DataFrame) -> None:
    info = tradeoff_info(frame, "onnx_bytes")
    fig = plot_tradeoff(info)
    assert isinstance(fig, go.Figure)
    # front traces (quantization c, low_rank d) + dominated traces (pruning a+b, precision e) + step line + baseline
    assert len(fig.data) == 6
    legend = [tr.name for tr in fig.data if tr.showlegend is not False]
    assert sorted(legend) == ["Pareto front", "baseline", "low_rank", "precision", "pruning", "quantization"]
    ids = [cid for tr in fig.data if tr.customdata is not None for cid in tr.customdata]
    assert sorted(i for i in ids if i) == ["a", "b", "c", "d", "e"]
    assert fig.layout.xaxis.title.text == info.x_title


def test_front_points_are_labelled_when_few_enough(frame: pd.DataFrame) -> None:
    from lwdash.figures.tradeoff import MAX_FRONT_LABELS, short_label

    info = tradeoff_info(frame, "onnx_bytes")
    assert info.label_front
    fig = plot_tradeoff(info)
    texts = sorted(a.text for a in fig.layout.annotations if not a.text.startswith("baseline"))
    assert texts == ["dynamic_int8 c", "svd d"]  # the two front results, nothing for the dominated ones
    many = pd.DataFrame([_row(f"r{i}", "svd", "low_rank", 0.5 + 0.01 * i, 10_000 + 1_000 * i, 1.0)
                         for i in range(MAX_FRONT_LABELS + 1)])
    assert not tradeoff_info(many, "onnx_bytes").label_front  # nine on the front: no labels, hover only
    assert short_label("search 5ce922 trial 3/6: structured_pruning ratio=0.8675") == "structured_pruning ratio=0.8675"
    long = short_label("pipeline structured_pruning > fine_tune > int8_static")
    assert len(long) == 34 and long.endswith("…")


def test_axes_never_run_below_zero_and_baseline_labels_lean_inwards(frame: pd.DataFrame) -> None:
    small = frame.assign(model_id="sample/tiny", baseline_onnx_bytes=1_000)
    fig = plot_tradeoff(tradeoff_info(pd.concat([frame, small], ignore_index=True), "onnx_bytes"))
    assert fig.layout.xaxis.rangemode == "nonnegative" and fig.layout.yaxis.rangemode == "nonnegative"
    arrows = {a.text: a.ax for a in fig.layout.annotations if a.text.startswith("baseline")}
    assert arrows == {"baseline: sample/cnn": -70, "baseline: sample/tiny": 70}  # right-hand one left, left one right
    ratio = plot_tradeoff(tradeoff_info(frame, "onnx_bytes", ratio_to_baseline=True))
    assert ratio.layout.yaxis.rangemode is None  # accuracy changes can be negative


def test_hover_configs_show_integer_knobs_as_integers() -> None:
    import pandas as pd

    from lwdash.figures.tradeoff import config_texts

    # Two techniques in one frame: pandas stores epochs as float (NaN where a technique has no such knob).
    frame = pd.DataFrame({"cfg.epochs": [15, None], "cfg.temperature": [4.0, None], "cfg.amount": [None, 0.5],
                          "cfg.lr": [0.003, None]})
    assert frame["cfg.epochs"].dtype == float
    assert config_texts(frame) == ["epochs=15, temperature=4, lr=0.003", "amount=0.5"]


def test_each_model_gets_its_own_front_and_colour(frame: pd.DataFrame) -> None:
    from lwdash.figures.tradeoff import MODEL_COLOURS, family_symbol

    other = pd.DataFrame([  # a weaker model: every result below the first model's front
        _row("f", "magnitude_pruning", "pruning", 0.78, 25_000, 1.8, model_id="sample/mlp",
             baseline_top1_acc=0.86, baseline_onnx_bytes=40_000),
        _row("g", "fp16", "precision", 0.84, 45_000, 3.0, model_id="sample/mlp",
             baseline_top1_acc=0.86, baseline_onnx_bytes=40_000),
    ])
    both = pd.concat([frame, other], ignore_index=True)
    across = tradeoff_info(both, "onnx_bytes")
    assert not {p.result_id for p in across.points if p.on_front} & {"f", "g"}  # across models: f, g dominated
    info = tradeoff_info(both, "onnx_bytes", per_model=True)
    flags = {p.result_id: p.on_front for p in info.points}
    assert flags == {"a": False, "b": False, "c": True, "d": True, "e": False, "f": True, "g": False}
    assert info.front == () and [m for m, _ in info.fronts] == ["sample/cnn", "sample/mlp"]
    mlp_front = dict(info.fronts)["sample/mlp"]
    assert [round(x * 1024) for x, _ in mlp_front] == [25_000, 40_000]  # f, then the mlp's own baseline
    fig = plot_tradeoff(info)
    markers = [t for t in fig.data if t.mode == "markers" and t.name != "baseline"]
    assert {t.marker.color for t in markers if t.legendgroup == "sample/cnn"} == {MODEL_COLOURS[0]}
    assert {t.marker.color for t in markers if t.legendgroup == "sample/mlp"} == {MODEL_COLOURS[1]}
    assert {t.marker.symbol for t in markers if t.name == "quantization"} == {family_symbol("quantization")}
    lines = [t for t in fig.data if t.mode == "lines"]
    assert sorted(t.line.color for t in lines) == sorted(MODEL_COLOURS[:2])  # one front line per model, its colour


def test_a_long_y_axis_title_is_wrapped_so_it_stays_beside_the_plot(frame: pd.DataFrame) -> None:
    from lwdash.figures.tradeoff_plot import AXIS_TITLE_CHARS, wrap_title

    info = tradeoff_info(frame, "onnx_bytes", "top1_acc")
    assert plot_tradeoff(info).layout.yaxis.title.text == wrap_title(info.y_title) != info.y_title

    title = "Top-1 accuracy, ONNX Runtime, test split (%)"
    lines = wrap_title(title).split("<br>")
    assert len(lines) == 2 and all(len(line) <= AXIS_TITLE_CHARS for line in lines)
    assert " ".join(lines) == title and wrap_title("Top-1 (%)") == "Top-1 (%)"
