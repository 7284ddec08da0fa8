"""weight_summary: exact statistics, zeros apart from histograms, shared ranges, quantized graphs."""
from __future__ import annotations

import copy
import json

import pytest
import torch
from _measure_models import SmallCNN
from torch import nn

from lwdash.measure.weights import UNIQUE_COUNT_CAP, summary_ranges, weight_summary


def _known_linear() -> nn.Module:
    lin = nn.Linear(4, 3)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.0, 1.0, -1.0, 0.5], [0.0, 0.0, 2.0, 0.5], [-2.0, 0.0, 1.0, 1.0]]))
        lin.bias.fill_(3.0)
    return nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.Flatten(), lin)


def _layer(summary: dict, name: str) -> dict:
    return next(layer for layer in summary["layers"] if layer["name"] == name)


def test_exact_statistics_and_zeros_apart() -> None:
    model = _known_linear()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([0.0, 4.0]).reshape(2, 1, 1, 1))
    summary = weight_summary(model, bins=4)
    json.dumps(summary)  # JSON-safe
    assert [layer["name"] for layer in summary["layers"]] == ["0.weight", "2.weight"]  # biases (1-D) left out
    lin = _layer(summary, "2.weight")
    assert lin["kind"] == "linear" and _layer(summary, "0.weight")["kind"] == "conv"
    assert lin["shape"] == [3, 4] and lin["numel"] == 12 and lin["zeros"] == 4
    assert lin["min"] == -2.0 and lin["max"] == 2.0
    assert lin["mean"] == pytest.approx(3.0 / 12)
    assert lin["unique_count"] == 6  # -2, -1, 0, 0.5, 1, 2
    assert lin["dtype"] == "float32"
    hist = lin["hist"]
    assert sum(hist["counts"]) == lin["numel"] - lin["zeros"] == 8
    assert hist["edges"][0] == -2.0 and hist["edges"][-1] == 2.0 and len(hist["edges"]) == 5
    assert hist["counts"] == [1, 1, 2, 4]  # [-2,-1) [-1,0) [0,1) [1,2]: the 4 zeros are in no bin
    total = summary["total"]
    assert total["numel"] == 14 and total["zeros"] == 5 and sum(total["hist"]["counts"]) == 9


def test_shared_ranges_align_edges_and_clip_into_outer_bins(cnn: SmallCNN) -> None:
    base = weight_summary(cnn, bins=20)
    ranges = summary_ranges(base)
    changed = copy.deepcopy(cnn)
    with torch.no_grad():
        changed.fc.weight.mul_(3.0)  # now far outside the baseline's range
        changed.fc.weight[0, :10] = 0.0
    summary = weight_summary(changed, bins=20, ranges=ranges)
    for a, b in zip(base["layers"], summary["layers"], strict=True):
        assert a["name"] == b["name"] and a["hist"]["edges"] == b["hist"]["edges"]
    fc = _layer(summary, "fc.weight")
    assert fc["zeros"] == 10
    assert fc["hist"]["below_range"] > 0 and fc["hist"]["above_range"] > 0
    assert sum(fc["hist"]["counts"]) == fc["numel"] - fc["zeros"]


def test_ranges_match_across_a_wrapper_prefix(cnn: SmallCNN) -> None:
    class Wrapper(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

    ranges = {"fc.weight": (-1.0, 1.0)}
    summary = weight_summary(Wrapper(copy.deepcopy(cnn)), bins=8, ranges=ranges)
    fc = _layer(summary, "inner.fc.weight")
    assert (fc["hist"]["edges"][0], fc["hist"]["edges"][-1]) == (-1.0, 1.0)


def test_unique_count_is_capped() -> None:
    torch.manual_seed(0)
    big = nn.Linear(100, 50)  # 5000 distinct values > cap
    small = nn.Linear(10, 10)
    summary = weight_summary(nn.Sequential(big, small))
    assert summary["layers"][0]["unique_count"] is None
    assert summary["layers"][1]["unique_count"] == 100 <= UNIQUE_COUNT_CAP


def test_pt2e_int8_weights_are_dequantized_under_baseline_names(cnn: SmallCNN, pt2e_int8: torch.fx.GraphModule) -> None:
    base = weight_summary(cnn)
    quant = weight_summary(pt2e_int8, ranges=summary_ranges(base))
    assert [layer["name"] for layer in quant["layers"]] == [layer["name"] for layer in base["layers"]]
    for b, q in zip(base["layers"], quant["layers"], strict=True):
        assert q["dtype"].startswith("int8") and b["dtype"] == "float32"
        assert q["numel"] == b["numel"]
        assert q["hist"]["edges"] == b["hist"]["edges"]
        assert sum(q["hist"]["counts"]) == q["numel"] - q["zeros"]
        # per-channel int8 holds at most 256 levels a channel
        assert q["unique_count"] is not None and q["unique_count"] <= 256 * q["shape"][0]
    # the fc layer is not BN-folded: dequantized values stay within half a quantization step
    fc_q, fc_b = _layer(quant, "fc.weight"), _layer(base, "fc.weight")
    step = (fc_b["max"] - fc_b["min"]) / 255
    assert abs(fc_q["max"] - fc_b["max"]) <= step and abs(fc_q["min"] - fc_b["min"]) <= step


def test_bins_must_be_positive(cnn: SmallCNN) -> None:
    with pytest.raises(ValueError, match="bins"):
        weight_summary(cnn, bins=0)
