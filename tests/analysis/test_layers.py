"""Per-layer records on real sample models: MACs per layer, weight error (SQNR), BatchNorm folding, the table."""
from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from lwdash.analysis.layers import bn_folded_weights, layer_frame, layer_macs, layer_report
from lwdash.analysis.sensitivity import fake_quantize
from lwdash.measure import count_macs, export_onnx, weight_summary
from lwdash.models import load_sample


@pytest.fixture(scope="module")
def cnn():  # type: ignore[no-untyped-def]
    return load_sample("digits_cnn")


def test_per_layer_macs_add_up_to_the_onnx_count(cnn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    per_layer = layer_macs(cnn.module, cnn.input_shape)
    onnx = export_onnx(cnn.module, cnn.input_shape, tmp_path / "m.onnx")
    assert sum(per_layer.values()) == count_macs(Path(onnx))
    assert all(v > 0 for v in per_layer.values())


def test_weight_error_of_int8_fake_quant_and_of_unchanged_layers(cnn) -> None:  # type: ignore[no-untyped-def]
    comp = copy.deepcopy(cnn.module)
    with torch.no_grad():
        comp.classifier.weight.copy_(fake_quantize(comp.classifier.weight, 8))
    recs = {r["name"]: r for r in layer_report(cnn.module, comp, cnn.input_shape)}
    fc = recs["classifier.weight"]
    assert 35.0 < fc["sqnr_db"] < 60.0 and fc["mse"] > 0 and fc["note"] == ""  # int8 per channel: ~40-50 dB
    w = cnn.module.classifier.weight.detach().double()
    err = comp.classifier.weight.detach().double() - w
    assert fc["sqnr_db"] == pytest.approx(10 * math.log10(float((w * w).mean() / (err * err).mean())))
    conv = recs["features.0.0.weight"]
    assert conv["mse"] == 0 and conv["sqnr_db"] is None and conv["note"] == "unchanged"
    assert fc["macs"] == fc["compressed_macs"] == 128 * 10


def test_conv_weights_with_batchnorm_folded_are_compared_with_the_folded_original() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)), nn.Flatten(), nn.Linear(4 * 36, 3))
    bn = model[0][1]
    with torch.no_grad():
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
    model.eval()
    folded = bn_folded_weights(model)
    assert set(folded) == {"0.0.weight"}
    fused = copy.deepcopy(model)
    with torch.no_grad():
        fused[0][0].weight.copy_(folded["0.0.weight"].float())
    rec = next(r for r in layer_report(model, fused, (1, 8, 8)) if r["name"] == "0.0.weight")
    assert rec["note"] == "vs the original with its BatchNorm folded in"
    assert rec["sqnr_db"] > 60  # only float rounding left once the fold is accounted for


def test_reshaped_layers_are_named_not_guessed() -> None:
    small = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 36, 3))
    pruned = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 36, 3))
    recs = {r["name"]: r for r in layer_report(small, pruned, (1, 8, 8))}
    assert recs["0.weight"]["note"] == "shape changed (4, 1, 3, 3) -> (2, 1, 3, 3)" and recs["0.weight"]["mse"] is None
    assert recs["0.weight"]["macs"] == 4 * 36 * 9 and recs["0.weight"]["compressed_macs"] == 2 * 36 * 9


def test_layer_frame_joins_summaries_and_records(cnn) -> None:  # type: ignore[no-untyped-def]
    comp = copy.deepcopy(cnn.module)
    with torch.no_grad():
        w = comp.features[3][0].weight
        w.mul_((w.abs() > w.abs().flatten().kthvalue(int(0.8 * w.numel())).values).float())  # 80 % zeros
    base = weight_summary(cnn.module)
    cw = weight_summary(comp)
    cw["per_layer"] = layer_report(cnn.module, comp, cnn.input_shape)
    frame = layer_frame(base, cw).set_index("layer")
    assert frame["params_share"].sum() == pytest.approx(1.0) and frame["macs_share"].sum() == pytest.approx(1.0)
    assert frame.loc["features.3.0.weight", "sparsity_after"] == pytest.approx(0.8, abs=1e-3)
    assert frame.loc["features.0.0.weight", "sparsity_after"] == 0.0
    assert frame.loc["features.3.0.weight", "sqnr_db"] < 20 and frame.loc["classifier.weight", "mse"] == 0
    # a result stored before per-layer records existed: the table still renders, with NaN where nothing was measured
    old = layer_frame(base, weight_summary(comp))
    assert old["mse"].isna().all() and old["macs_share"].isna().all() and len(old) == 4


def test_weight_summary_lists_the_grid_of_quantized_layers_only(cnn) -> None:  # type: ignore[no-untyped-def]
    comp = copy.deepcopy(cnn.module)
    with torch.no_grad():
        w = comp.features[3][0].weight
        scale = w.abs().max() / 7  # one 4-bit grid for the whole tensor: 15 values
        w.copy_(torch.clamp(torch.round(w / scale), -7, 7) * scale)
        comp.classifier.weight.copy_(fake_quantize(comp.classifier.weight, 8))  # per channel: 10 grids
    layers = {x["name"]: x for x in weight_summary(comp)["layers"]}
    q = layers["features.3.0.weight"]
    assert q["levels"] == sorted(float(v) for v in torch.unique(w.detach()) if v != 0) and len(q["levels"]) <= 14
    assert layers["features.1.0.weight"]["levels"] is None  # float weights: no grid drawn
    # per-channel int8 of a 10x128 layer: up to 10 x 255 values, more than a drawable grid; counted, not listed
    assert layers["classifier.weight"]["levels"] is None and layers["classifier.weight"]["unique_count"] > 256
