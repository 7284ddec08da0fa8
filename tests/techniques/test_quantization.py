"""int8 static and dynamic: accuracy on real digits, the artifacts' real int8 structure, knob effects,
batch-size freedom of the PyTorch form, and configs rejected before any work."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import pytest
import torch
from _tech_helpers import Applied, accuracy, ort_logits
from onnx import numpy_helper
from torch import nn

from lwdash.data import Dataset
from lwdash.techniques import RunContext, config_from_dict
from lwdash.techniques import quantization as q
from lwdash.techniques._common import top1_agreement
from lwdash.techniques.quantization import (
    EAGER_REFERENCE_NOTE,
    Int8DynamicConfig,
    Int8StaticConfig,
    apply_int8_dynamic,
    apply_int8_static,
)


def _ops(model: onnx.ModelProto) -> set[str]:
    return {n.op_type for n in model.graph.node}


def _weight_scales(model: onnx.ModelProto) -> list[np.ndarray]:
    """Scales of every DequantizeLinear whose input is an int8 initializer (the weights)."""
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    out = []
    for n in model.graph.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].dtype == np.int8 and inits[n.input[0]].ndim >= 2:
            out.append(inits[n.input[1]])
    return out


# --- static -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "per_channel", "samples"),
    [("minmax", True, 128), ("entropy", False, 128), ("percentile", True, 2048)],
)
def test_static_int8_stays_within_two_points_of_fp32(
    method: str,
    per_channel: bool,
    samples: int,
    trained_cnn: nn.Module,
    cnn_logits: torch.Tensor,
    digits: Dataset,
    ctx: RunContext,
    apply_default: Callable[[str], Applied],
) -> None:
    cfg = Int8StaticConfig(calibration_method=method, per_channel=per_channel, calibration_samples=samples)  # type: ignore[arg-type]
    out = apply_default("int8_static").out if cfg == Int8StaticConfig() else apply_int8_static(trained_cnn, cfg, ctx)
    assert out is not None and out.onnx_model is not None
    fp32_acc = accuracy(cnn_logits, digits.test.y)
    ort_acc = accuracy(ort_logits(out.onnx_model, digits.test.x), digits.test.y)
    with torch.no_grad():
        torch_acc = accuracy(out.module(digits.test.x), digits.test.y)
    assert abs(ort_acc - fp32_acc) <= 0.02, (fp32_acc, ort_acc)
    assert abs(torch_acc - fp32_acc) <= 0.02, (fp32_acc, torch_acc)

    # A real QDQ int8 model: int8 weight initializers, one scale per output channel or per tensor.
    assert {"QuantizeLinear", "DequantizeLinear"} <= _ops(out.onnx_model)
    scales = _weight_scales(out.onnx_model)
    assert len(scales) == 4  # 2 convs (BN folded in) + 2 linears
    if per_channel:
        assert sorted(s.size for s in scales) == [10, 16, 32, 64]
    else:
        assert all(s.size == 1 for s in scales)
    assert EAGER_REFERENCE_NOTE in out.notes
    if method != "minmax":
        assert any("histogram observer" in n for n in out.notes)
    short = len(digits.calib) < samples  # 2048 asks for more than the split holds: said, not hidden
    assert any(f"Calibrated on {len(digits.calib)} samples" in n for n in out.notes) == short


def test_static_pytorch_form_is_int8_and_takes_any_batch(apply_default: Callable[[str], Applied], digits: Dataset) -> None:
    a = apply_default("int8_static")
    assert a.out is not None
    gm = a.out.module
    assert isinstance(gm, torch.fx.GraphModule)
    int8 = [b for b in gm.buffers() if b.dtype == torch.int8]
    assert len(int8) == 4, "one int8 weight per Conv/Linear"
    assert not [n for n, p in gm.named_parameters() if p.ndim >= 2], "fp32 weights left behind next to the int8 ones"
    gm.eval()  # the runner calls .eval(): exported graphs refuse it unless allowed
    with torch.no_grad():
        for b in (1, 7, 32):
            assert gm(digits.test.x[:b]).shape == (b, 10)
    # What the runner's save_pt2 does: re-export with a dynamic batch, then run another size.
    ep = torch.export.export(gm, (digits.test.x[:2],), dynamic_shapes=({0: torch.export.Dim("batch")},))
    assert ep.module()(digits.test.x[:5]).shape == (5, 10)


# --- dynamic ----------------------------------------------------------------------------------


def test_dynamic_int8_quantizes_linear_layers_of_an_mlp(trained_mlp: nn.Module, digits: Dataset, ctx: RunContext) -> None:
    out = apply_int8_dynamic(trained_mlp, Int8DynamicConfig(per_channel=True), ctx)
    assert out.onnx_model is not None
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= _ops(out.onnx_model)
    arrays = [numpy_helper.to_array(i) for i in out.onnx_model.graph.initializer]
    assert len([a for a in arrays if a.dtype == np.int8 and a.ndim == 2]) == 3  # the three weight matrices
    with torch.no_grad():
        ref = trained_mlp(digits.test.x)
        torch_out = out.module(digits.test.x)
    ort_out = torch.from_numpy(ort_logits(out.onnx_model, digits.test.x))
    assert top1_agreement(ort_out, ref) >= 0.95
    assert top1_agreement(torch_out, ref) >= 0.95
    assert abs(accuracy(ort_out, digits.test.y) - accuracy(ref, digits.test.y)) <= 0.02
    # torchao swaps every Linear weight for an int8 tensor subclass.
    weights = [m.weight for m in out.module.modules() if isinstance(m, nn.Linear)]
    assert weights and all(getattr(w, "qdata", None) is not None and w.qdata.dtype == torch.int8 for w in weights)
    assert not any("Convolutions carry" in n for n in out.notes)


def test_dynamic_int8_on_a_cnn_leaves_convs_fp32_and_says_so(apply_default: Callable[[str], Applied]) -> None:
    out = apply_default("int8_dynamic").out
    assert out is not None and out.onnx_model is not None
    ops = _ops(out.onnx_model)
    assert "MatMulInteger" in ops and "ConvInteger" not in ops and "Conv" in ops
    assert any("Convolutions carry" in n and "MACs" in n for n in out.notes)


def test_dynamic_int8_all_ops_quantizes_convs_and_warns(trained_cnn: nn.Module, digits: Dataset, ctx: RunContext) -> None:
    out = apply_int8_dynamic(trained_cnn, Int8DynamicConfig(op_types="all"), ctx)
    assert out.onnx_model is not None and "ConvInteger" in _ops(out.onnx_model)
    assert any("ConvInteger" in n for n in out.notes)
    with torch.no_grad():
        ref = trained_cnn(digits.test.x)
    assert top1_agreement(torch.from_numpy(ort_logits(out.onnx_model, digits.test.x)), ref) >= 0.95


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "data", "field"),
    [
        ("int8_static", {"calibration_samples": 0}, "calibration_samples"),
        ("int8_static", {"calibration_samples": 4096}, "calibration_samples"),
        ("int8_static", {"calibration_method": "kl"}, "calibration_method"),
        ("int8_dynamic", {"op_types": "convs"}, "op_types"),
    ],
)
def test_bad_configs_raise_value_error(key: str, data: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        config_from_dict({"type": key, "version": 1, "data": data})
    cfg_type = Int8StaticConfig if key == "int8_static" else Int8DynamicConfig
    with pytest.raises(ValueError, match=field):
        cfg_type(**data)  # type: ignore[arg-type]


def test_configs_a_model_cannot_take_fail_before_any_export(monkeypatch: pytest.MonkeyPatch, ctx: RunContext) -> None:
    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was exported although the config cannot apply")

    monkeypatch.setattr(q, "export_onnx_proto", must_not_run)
    conv_only = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 10, 6), nn.Flatten())
    with pytest.raises(ValueError, match="needs Linear layers"):
        Int8DynamicConfig().validate_for(conv_only, (1, 8, 8))
    with pytest.raises(ValueError, match="int8_static"):
        apply_int8_dynamic(conv_only, Int8DynamicConfig(), ctx)
    no_layers = nn.Sequential(nn.Flatten())
    with pytest.raises(ValueError, match="Conv or Linear"):
        apply_int8_static(no_layers, Int8StaticConfig(), ctx)


# ---------------------------------------------------------------------------------- QAT
def test_qat_artifact_is_an_int8_qdq_graph_with_the_accuracy_kept(
    apply_default: Callable[[str], Applied], cnn_logits: torch.Tensor, digits: Dataset, baseline_onnx: onnx.ModelProto
) -> None:
    out = apply_default("int8_qat").out
    assert out is not None and out.onnx_model is not None
    ops = {n.op_type for n in out.onnx_model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int8_weights = [t for t in out.onnx_model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8_weights) >= 4  # every conv/linear weight stored as int8 (per channel)
    assert out.onnx_model.ByteSize() < 0.5 * baseline_onnx.ByteSize()
    base_acc = accuracy(cnn_logits, digits.test.y)
    assert accuracy(ort_logits(out.onnx_model, digits.test.x), digits.test.y) >= base_acc - 0.02
    assert any("fake-quant" in n for n in out.notes) and q.EAGER_REFERENCE_NOTE in out.notes


def test_qat_rejects_bad_epochs_and_layerless_models(ctx: RunContext) -> None:
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        q.Int8QatConfig(epochs=0)
    with pytest.raises(ValueError, match="int8_qat needs Conv or Linear"):
        q.Int8QatConfig().validate_for(nn.Sequential(nn.Flatten(), nn.ReLU()), (1, 8, 8))


# --- static: the activation type is chosen by measurement --------------------------------------


def _activation_dtype(model: onnx.ModelProto) -> int:
    """The element type of the activation QuantizeLinear zero points (uint8 or int8)."""
    inits = {i.name: i for i in model.graph.initializer}
    kinds = {inits[n.input[2]].data_type for n in model.graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2}
    assert len(kinds) == 1, kinds
    return kinds.pop()


@pytest.mark.parametrize(("fastest", "dtype", "fmt"), [("uint8", onnx.TensorProto.UINT8, "U8S8"),
                                                        ("int8", onnx.TensorProto.INT8, "S8S8")])
def test_auto_ships_the_activation_type_that_timed_fastest(
    fastest: str, dtype: int, fmt: str, trained_cnn: nn.Module, ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lwdash.measure.runtime_timing as timing

    seen: dict[str, object] = {}

    def fake(runtime: str, artifacts: dict[str, object], x: torch.Tensor, **kw: object) -> dict[str, float]:
        seen.update(runtime=runtime, names=sorted(artifacts), batch=tuple(x.shape))
        return {"fp32": 2.0, "uint8": 1.0 if fastest == "uint8" else 3.0, "int8": 1.0 if fastest == "int8" else 3.0}

    monkeypatch.setattr(timing, "compare_artifacts", fake)
    out = apply_int8_static(trained_cnn, Int8StaticConfig(target_runtime="openvino"), ctx)
    assert out.onnx_model is not None and _activation_dtype(out.onnx_model) == dtype
    assert seen == {"runtime": "openvino", "names": ["fp32", "int8", "uint8"], "batch": (32, 1, 8, 8)}
    note = next(n for n in out.notes if n.startswith("Activation type chosen by measurement on OpenVINO"))
    assert f"shipped {fmt} (2.00x fp32's speed)" in note and "fp32 2.00 ms" in note and "slower than fp32" not in note


def test_auto_says_when_every_int8_format_is_slower_than_fp32(
    trained_cnn: nn.Module, ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lwdash.measure.runtime_timing as timing

    monkeypatch.setattr(timing, "compare_artifacts", lambda *a, **k: {"fp32": 1.0, "uint8": 1.5, "int8": 2.0})
    out = apply_int8_static(trained_cnn, Int8StaticConfig(), ctx)
    note = next(n for n in out.notes if n.startswith("Activation type chosen"))
    assert "shipped U8S8 (0.67x fp32's speed)" in note
    assert "Every int8 format ran slower than fp32 on ONNX Runtime here" in note


def test_auto_times_for_real_and_a_fixed_type_is_not_timed(trained_cnn: nn.Module, ctx: RunContext) -> None:
    out = apply_int8_static(trained_cnn, Int8StaticConfig(), ctx)  # real ONNX Runtime timings on this CPU
    note = next(n for n in out.notes if n.startswith("Activation type chosen by measurement on ONNX Runtime"))
    shipped = "U8S8" if "shipped U8S8" in note else "S8S8"
    assert out.onnx_model is not None
    assert _activation_dtype(out.onnx_model) == (onnx.TensorProto.UINT8 if shipped == "U8S8" else onnx.TensorProto.INT8)
    fixed = apply_int8_static(trained_cnn, Int8StaticConfig(activations="int8"), ctx)
    assert fixed.onnx_model is not None and _activation_dtype(fixed.onnx_model) == onnx.TensorProto.INT8
    assert "Activation type S8S8 as configured (activations=int8), not timed." in fixed.notes


def test_an_unmeasurable_target_keeps_uint8_and_says_why(
    trained_cnn: nn.Module, ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lwdash.measure.runtime_timing as timing

    def unavailable(*a: object, **k: object) -> dict[str, float]:
        raise RuntimeError("OpenVINO is not installed here (pip install openvino)")

    monkeypatch.setattr(timing, "compare_artifacts", unavailable)
    out = apply_int8_static(trained_cnn, Int8StaticConfig(target_runtime="openvino"), ctx)
    assert out.onnx_model is not None and _activation_dtype(out.onnx_model) == onnx.TensorProto.UINT8
    assert any(n.startswith("Activation type not measured (OpenVINO is not installed here") for n in out.notes)


def test_records_written_before_the_choice_read_back_as_the_int8_they_ran() -> None:
    _, old = config_from_dict({"type": "int8_static", "version": 2, "data": {"per_channel": True}})
    _, new = config_from_dict({"type": "int8_static", "version": 3, "data": {"per_channel": True}})
    assert isinstance(old, Int8StaticConfig) and old.activations == "int8" and old.target_runtime == "ort"
    assert isinstance(new, Int8StaticConfig) and new.activations == "auto"
