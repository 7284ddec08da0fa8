"""Weight-histogram extractor: per-layer overlays, whole-model pooling, zeros counted apart."""
from __future__ import annotations

import numpy as np
import pytest

from lwdash.figures import histogram_info, layer_names, plot_weight_histogram


def _layer(name: str, values: np.ndarray, edges: np.ndarray, kind: str = "Linear") -> dict[str, object]:
    nz = values[values != 0]
    counts, _ = np.histogram(nz, bins=edges)
    return {"name": name, "kind": kind, "shape": list(values.shape), "numel": int(values.size),
            "zeros": int((values == 0).sum()), "min": float(values.min()), "max": float(values.max()),
            "mean": float(values.mean()), "std": float(values.std()), "unique_count": int(np.unique(values).size),
            "hist": {"edges": edges.tolist(), "counts": counts.tolist()}, "dtype": "float32"}


@pytest.fixture
def summaries() -> tuple[dict[str, object], dict[str, object]]:
    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.1, size=(16, 8))
    w2 = rng.normal(0, 0.5, size=(10, 16))
    e1, e2 = np.linspace(w1.min(), w1.max(), 21), np.linspace(w2.min(), w2.max(), 21)
    pruned = np.where(np.abs(w1) > np.quantile(np.abs(w1), 0.5), w1, 0.0)  # half the weights zeroed
    base = {"layers": [_layer("fc1", w1, e1), _layer("fc2", w2, e2)], "total": {"numel": 288, "zeros": 0}}
    comp = {"layers": [_layer("fc1", pruned, e1), _layer("fc2", w2, e2)], "total": {"numel": 288, "zeros": 64}}
    return base, comp


def test_one_layer_counts_nonzero_weights_and_zeros_apart(summaries) -> None:  # type: ignore[no-untyped-def]
    base, comp = summaries
    info = histogram_info(base, comp, "fc1")
    assert len(info.edges) == 21 and len(info.original_counts) == 20
    assert sum(info.original_counts) == 128 and info.original_zeros == 0
    assert sum(info.compressed_counts or ()) == 64 and info.compressed_zeros == 64
    assert info.compressed_zero_fraction == pytest.approx(0.5)
    # the smallest-magnitude bins (around 0) emptied out after pruning
    mid = len(info.original_counts) // 2
    assert info.compressed_counts[mid] < info.original_counts[mid]
    assert info.note == ""


def test_whole_model_pools_every_layer(summaries) -> None:  # type: ignore[no-untyped-def]
    base, comp = summaries
    info = histogram_info(base, comp, None)
    assert info.layer is None
    assert sum(info.original_counts) == 128 + 160
    assert sum(info.compressed_counts or ()) == 64 + 160
    assert (info.original_zeros, info.compressed_zeros, info.compressed_numel) == (0, 64, 288)
    assert info.edges[0] <= min(base["layers"][1]["hist"]["edges"][0], base["layers"][0]["hist"]["edges"][0])


def test_a_layer_missing_from_the_compressed_model_is_said(summaries) -> None:  # type: ignore[no-untyped-def]
    base, comp = summaries
    comp = {"layers": [comp["layers"][1]], "total": {}}
    info = histogram_info(base, comp, "fc1")
    assert info.compressed_counts is None
    assert "not in the compressed model" in info.note
    assert "layers differ" in histogram_info(base, comp, None).note


def test_unknown_layer_lists_the_known_ones(summaries) -> None:  # type: ignore[no-untyped-def]
    base, comp = summaries
    with pytest.raises(ValueError, match="fc1, fc2"):
        histogram_info(base, comp, "conv9")
    assert layer_names(base) == ["fc1", "fc2"]


def test_figure_overlays_two_bar_traces_and_shows_zeros_apart(summaries) -> None:  # type: ignore[no-untyped-def]
    base, comp = summaries
    info = histogram_info(base, comp, "fc1")
    fig = plot_weight_histogram(info, log_y=True)
    bars = [tr for tr in fig.data if tr.type == "bar"]
    assert [tr.name for tr in bars] == ["original (nonzero)", "compressed (nonzero)", "exact zeros"]
    assert fig.layout.yaxis.type == "log" and fig.layout.barmode == "overlay"
    # the zeros are a separate two-bar panel with their share, not a bin of the histogram
    zeros = bars[2]
    assert list(zeros.x) == ["original", "compressed"] and list(zeros.y) == [0.0, 50.0]
    assert list(zeros.text) == ["0.0 %", "50.0 %"] and zeros.xaxis == "x2"
    assert sum(bars[1].y) == 64  # nonzero weights only
    text = next(a.text for a in fig.layout.annotations if "zeros:" in (a.text or ""))
    assert "compressed zeros: 64 (50.0 %)" in text
    only = plot_weight_histogram(histogram_info(base, None, "fc1"))
    assert [tr.name for tr in only.data] == ["original (nonzero)", "exact zeros"]


def test_quantization_levels_are_drawn_for_a_quantized_layer(summaries) -> None:  # type: ignore[no-untyped-def]
    base, comp = summaries
    rng = np.random.default_rng(1)
    w1 = rng.normal(0, 0.1, size=(16, 8))
    scale = np.abs(w1).max() / 7
    q = np.round(w1 / scale) * scale  # a 4-bit symmetric grid: at most 15 values
    layer = _layer("fc1", q, np.asarray(base["layers"][0]["hist"]["edges"]))
    layer["levels"] = sorted(float(v) for v in np.unique(q) if v != 0)
    info = histogram_info(base, {"layers": [layer, comp["layers"][1]]}, "fc1")
    assert info.compressed_levels == tuple(layer["levels"]) and len(info.compressed_levels) <= 14
    fig = plot_weight_histogram(info)
    grid = next(tr for tr in fig.data if tr.name.startswith("quantization levels"))
    assert grid.name == f"quantization levels ({len(info.compressed_levels)})"
    assert [x for x in grid.x if x is not None][::2] == list(info.compressed_levels)
    # an unquantized layer draws no grid
    assert not any((tr.name or "").startswith("quantization") for tr in plot_weight_histogram(
        histogram_info(base, comp, "fc1")).data)


def test_multi_overlay_of_several_results(summaries) -> None:  # type: ignore[no-untyped-def]
    from lwdash.figures import multi_histogram_info, plot_multi_histogram

    base, comp = summaries
    info = multi_histogram_info(base, [("prune 50%", comp), ("same", base)], "fc1")
    assert [s.label for s in info.series] == ["original", "prune 50%", "same"]
    assert info.series[1].zeros == 64 and sum(info.series[1].counts) == 64
    assert info.series[2].counts == info.series[0].counts
    whole = multi_histogram_info(base, [("prune 50%", comp)], None)
    assert sum(whole.series[1].counts) == 64 + 160
    fig = plot_multi_histogram(info)
    assert [tr.name for tr in fig.data] == ["original · zeros 0.0 %", "prune 50% · zeros 50.0 %", "same · zeros 0.0 %"]
