"""MACs from the ONNX graph against hand-computed numbers."""
from __future__ import annotations

import copy
from pathlib import Path

import onnx
import pytest
import torch
from _measure_models import INPUT_SHAPE, SMALL_CNN_MACS, SmallCNN
from onnx import TensorProto, helper, numpy_helper
from torch import nn

import lwdash.measure.macs as macs_mod
from lwdash.data import Dataset
from lwdash.measure.export import export_onnx
from lwdash.measure.macs import MacsError, count_macs


def _hand_graph() -> onnx.ModelProto:
    """X (N, 5) -> Gemm(transB, W 7x5) -> (N, 7) -> MatMul(7x3) -> (N, 3) -> Relu."""
    w1 = numpy_helper.from_array(torch.randn(7, 5).numpy(), "w1")
    w2 = numpy_helper.from_array(torch.randn(7, 3).numpy(), "w2")
    nodes = [
        helper.make_node("Gemm", ["x", "w1"], ["h"], transB=1),
        helper.make_node("MatMul", ["h", "w2"], ["y0"]),
        helper.make_node("Relu", ["y0"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "hand",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=[w1, w2],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_hand_built_gemm_matmul_graph() -> None:
    assert count_macs(_hand_graph()) == 5 * 7 + 7 * 3


def test_fallback_runs_the_graph_when_inference_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no shape inference for this graph")

    monkeypatch.setattr(macs_mod.shape_inference, "infer_shapes", refuse)
    assert count_macs(_hand_graph()) == 5 * 7 + 7 * 3


def test_small_cnn_macs_equal_hand_count(cnn_onnx: Path) -> None:
    assert count_macs(cnn_onnx) == SMALL_CNN_MACS == 4608 + 18432 + 2560


def test_conv_linear_stack_with_groups_and_stride(tmp_path: Path) -> None:
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),  # 4 * 8*8 * 1*9  = 2304
        nn.Conv2d(4, 6, 3, stride=2, padding=1),  # 6 * 4*4 * 4*9  = 3456
        nn.Conv2d(6, 6, 3, padding=1, groups=3),  # 6 * 4*4 * 2*9  = 1728
        nn.Flatten(),
        nn.Linear(96, 10),  # 960
    ).eval()
    path = export_onnx(model, INPUT_SHAPE, tmp_path / "stack.onnx")
    assert count_macs(path) == 2304 + 3456 + 1728 + 960


def _hooked_macs(model: nn.Module, x: torch.Tensor) -> int:
    """MACs from the real output shapes of every Conv2d / Linear in a forward pass."""
    total = 0

    def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        w = mod.weight
        total += out[0].numel() * (w[0].numel())  # per-sample outputs x (in_per_group * k*k) or in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.inference_mode():
        model(x)
    for h in handles:
        h.remove()
    return total


def test_structured_pruning_lowers_macs_unstructured_zeros_do_not(
    cnn: SmallCNN, cnn_onnx: Path, data: Dataset, tmp_path: Path
) -> None:
    import torch_pruning as tp

    pruned = copy.deepcopy(cnn)
    tp.pruner.MetaPruner(
        pruned,
        data.test.x[:1],
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=0.5,
        ignored_layers=[pruned.fc],
    ).step()
    pruned_macs = count_macs(export_onnx(pruned, INPUT_SHAPE, tmp_path / "pruned.onnx"))
    assert pruned_macs == _hooked_macs(pruned, data.test.x[:1])
    assert pruned_macs < 0.5 * count_macs(cnn_onnx)

    zeroed = copy.deepcopy(cnn)
    with torch.no_grad():
        for m in zeroed.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight[m.weight.abs() < m.weight.abs().median()] = 0.0
    assert count_macs(export_onnx(zeroed, INPUT_SHAPE, tmp_path / "zeroed.onnx")) == SMALL_CNN_MACS


def test_unreadable_file_raises(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(MacsError, match="cannot read"):
        count_macs(bad)
