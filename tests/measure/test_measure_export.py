"""ONNX export, .pt2 export and writing technique-built ONNX models."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from _measure_models import INPUT_SHAPE, SmallCNN, make_cnn
from torch import nn

from lwdash.data import Dataset
from lwdash.measure.accuracy import evaluate_onnx, evaluate_torch, make_session
from lwdash.measure.export import ExportError, export_onnx, save_pt2, write_onnx


def _ort_logits(path: Path, x: torch.Tensor) -> np.ndarray:
    sess = make_session(path, 1)
    return sess.run(None, {"input": x.numpy()})[0]


class _NumpyRoundTrip(nn.Module):
    """Leaves the graph through numpy: no exporter can keep its batch dimension dynamic."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(x.numpy().reshape(2, -1)[:, :10].copy())


class _DataDependent(nn.Module):
    """Branches on a tensor value: torch.export cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x.flatten(1))
        if h.sum() > 0:
            return h
        return -h


def test_export_round_trip_matches_torch(cnn: SmallCNN, cnn_onnx: Path, data: Dataset) -> None:
    # one self-contained file, nothing beside it
    assert sorted(p.name for p in cnn_onnx.parent.iterdir()) == ["model.onnx"]
    model = onnx.load(str(cnn_onnx))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["logits"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)

    ort_eval = evaluate_onnx(cnn_onnx, data.test)
    torch_eval = evaluate_torch(cnn, data.test)
    assert torch.equal(ort_eval.preds, torch_eval.preds)
    with torch.inference_mode():
        expected = cnn(data.test.x[:7]).numpy()
    np.testing.assert_allclose(_ort_logits(cnn_onnx, data.test.x[:7]), expected, atol=1e-4, rtol=1e-4)


def test_export_does_not_change_the_module(tmp_path: Path) -> None:
    model = make_cnn(1).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_onnx(model, INPUT_SHAPE, tmp_path / "m.onnx")
    assert model.training and model.features[1].training  # modes restored
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_export_pt2e_int8_graph_and_pt2(
    pt2e_int8: torch.fx.GraphModule, pt2e_onnx: Path, data: Dataset, tmp_path: Path
) -> None:
    path = pt2e_onnx
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "Gemm"} <= ops
    assert sorted(p.name for p in path.parent.iterdir()) == ["q.onnx"]
    # the artifact takes any batch although the graph was traced at batch 4
    assert _ort_logits(path, data.test.x[:1]).shape == (1, 10)
    ort_preds = evaluate_onnx(path, data.test).preds
    with torch.inference_mode():
        torch_preds = torch.cat([pt2e_int8(data.test.x[i : i + 4]).argmax(1) for i in range(0, 120, 4)])
    assert float((ort_preds == torch_preds).float().mean()) >= 0.95

    assert save_pt2(pt2e_int8, INPUT_SHAPE, tmp_path / "q.pt2")
    loaded = torch.export.load(tmp_path / "q.pt2").module()
    with torch.inference_mode():
        assert loaded(data.test.x[:1]).shape == (1, 10)
        np.testing.assert_allclose(loaded(data.test.x[:4]).numpy(), pt2e_int8(data.test.x[:4]).numpy(), atol=1e-5)


def test_export_structurally_pruned_model(cnn: SmallCNN, data: Dataset, tmp_path: Path) -> None:
    import torch_pruning as tp

    pruned = copy.deepcopy(cnn)
    pruner = tp.pruner.MetaPruner(
        pruned,
        data.test.x[:1],
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=0.5,
        ignored_layers=[pruned.fc],
    )
    pruner.step()
    assert pruned.features[0].out_channels == 4  # tensors really shrank
    path = export_onnx(pruned, INPUT_SHAPE, tmp_path / "pruned.onnx")
    assert torch.equal(evaluate_onnx(path, data.test).preds, evaluate_torch(pruned, data.test).preds)


def test_export_onnx2torch_graph_module(cnn: SmallCNN, data: Dataset, tmp_path: Path) -> None:
    import onnx2torch

    legacy = tmp_path / "legacy.onnx"  # onnx2torch reads opset 17 graphs
    torch.onnx.export(
        make_cnn(0),
        (data.test.x[:2],),
        str(legacy),
        dynamo=False,
        opset_version=17,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "b"}, "logits": {0: "b"}},
    )
    converted = onnx2torch.convert(onnx.load(str(legacy)))
    assert isinstance(converted, torch.fx.GraphModule)
    path = export_onnx(converted, INPUT_SHAPE, tmp_path / "again.onnx")
    assert torch.equal(evaluate_onnx(path, data.test).preds, evaluate_torch(cnn, data.test).preds)


def test_export_failure_raises_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "bad.onnx"
    with pytest.raises(ExportError, match="dynamic batch") as info:
        export_onnx(_NumpyRoundTrip(), INPUT_SHAPE, target)
    assert "dynamo exporter" in str(info.value) and "legacy exporter" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # no partial or temporary file left


def test_export_rejects_bad_input_shape(cnn: SmallCNN, tmp_path: Path) -> None:
    for bad in [(), (1, 0, 8), (1, -8, 8), ("a", 8)]:
        with pytest.raises(ValueError, match="input_shape"):
            export_onnx(cnn, bad, tmp_path / "x.onnx")  # type: ignore[arg-type]


def test_save_pt2_round_trip(cnn: SmallCNN, data: Dataset, tmp_path: Path) -> None:
    path = tmp_path / "model.pt2"
    assert save_pt2(cnn, INPUT_SHAPE, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt2"]
    loaded = torch.export.load(path).module()
    with torch.inference_mode():
        for batch in (1, 5):
            x = data.test.x[:batch]
            np.testing.assert_allclose(loaded(x).numpy(), cnn(x).numpy(), atol=1e-5)


def test_save_pt2_failure_leaves_no_file(tmp_path: Path) -> None:
    assert save_pt2(_DataDependent(), (1, 8, 8), tmp_path / "model.pt2") is False
    assert list(tmp_path.iterdir()) == []


def test_write_onnx_orders_nodes_and_rejects_invalid(cnn: SmallCNN, cnn_onnx: Path, data: Dataset, tmp_path: Path) -> None:
    model = onnx.load(str(cnn_onnx))
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(reversed(nodes))  # as some graph rewriters leave it
    with pytest.raises(onnx.checker.ValidationError):
        onnx.checker.check_model(model)
    path = write_onnx(model, tmp_path / "sorted.onnx", INPUT_SHAPE)
    onnx.checker.check_model(str(path))
    assert torch.equal(evaluate_onnx(path, data.test).preds, evaluate_torch(cnn, data.test).preds)

    broken = onnx.load(str(cnn_onnx))
    broken.graph.node[0].input[0] = "no_such_tensor"
    with pytest.raises(ExportError):
        write_onnx(broken, tmp_path / "broken.onnx")
    assert not (tmp_path / "broken.onnx").exists()
