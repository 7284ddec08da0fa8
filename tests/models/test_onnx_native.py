"""An ONNX upload is measured, quantized and cast as the graph it is: not as a re-export of its PyTorch conversion."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torchvision

from lwdash.cli import main
from lwdash.models import load_model_file
from lwdash.techniques.base import UPLOADED_GRAPH_NOTE

SHAPE = (3, 32, 32)


def _onnx(module: torch.nn.Module, path: Path, *, dynamic: bool = True) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.randn(2, *SHAPE),), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}} if dynamic else None)
    return path


@pytest.fixture(scope="module")
def shufflenet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    net = torchvision.models.get_model("shufflenet_v2_x0_5", weights=None, num_classes=10)
    return _onnx(net, tmp_path_factory.mktemp("onnx") / "shufflenet.onnx")


@pytest.fixture(scope="module")
def eval_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("npz") / "eval.npz"
    np.savez(path, x=rng.standard_normal((96, *SHAPE)).astype(np.float32), y=rng.integers(0, 10, 96))
    return path


def test_the_uploaded_graph_is_kept_when_onnx_runtime_reproduces_it(shufflenet: Path, tmp_path: Path) -> None:
    loaded = load_model_file(shufflenet)
    assert loaded.onnx_graph is not None
    assert [n.op_type for n in loaded.onnx_graph.graph.node] == [n.op_type for n in onnx.load(str(shufflenet)).graph.node]
    torch.manual_seed(0)
    fixed = load_model_file(_onnx(torchvision.models.get_model("squeezenet1_1", weights=None, num_classes=10),
                                  tmp_path / "fixed.onnx", dynamic=False))
    assert fixed.onnx_graph is None  # a fixed batch of 2 cannot be timed at 1 and 32: the re-export is used


@pytest.mark.parametrize("technique", ["int8_static", "fp16"])
def test_onnx_techniques_act_on_the_uploaded_shufflenet(technique: str, shufflenet: Path, eval_npz: Path,
                                                        tmp_path: Path) -> None:
    # int8_static on this upload used to end in a traceback: re-exporting the onnx2torch conversion failed.
    out = tmp_path / technique
    rc = main(["run", "--model", str(shufflenet), "--data", str(eval_npz), "--technique", technique,
               "--out", str(out), "--quiet", "--runtimes", "ort"])
    assert rc == 0
    result = json.loads((out / "result.json").read_text())
    assert UPLOADED_GRAPH_NOTE in result["notes"]
    graph = onnx.load(str(out / "model.onnx"))
    ops = {n.op_type for n in graph.graph.node}
    assert ("QuantizeLinear" in ops) if technique == "int8_static" else any(
        i.data_type == onnx.TensorProto.FLOAT16 for i in graph.graph.initializer)
    assert result["compressed"]["agreement"] > 0.8  # the same model, up to its precision


def test_an_onnx_resnet_prunes_though_its_export_baked_the_channel_count_into_a_reshape(tmp_path: Path) -> None:
    from lwdash.data import Dataset, Split
    from lwdash.measure.macs import count_macs
    from lwdash.techniques import RunContext, get_technique
    from lwdash.techniques._common import export_onnx_proto

    torch.manual_seed(0)
    net = torchvision.models.get_model("resnet18", weights=None, num_classes=10)
    loaded = load_model_file(_onnx(net, tmp_path / "r18.onnx"))  # holds Reshape(x, [-1, 512]) before the head
    g = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        return Split(torch.randn(n, *SHAPE, generator=g), torch.randint(0, 10, (n,), generator=g))

    tech = get_technique("structured_pruning")
    out = tech.apply(loaded.module, tech.config_type(ratio=0.5, fine_tune_epochs=0),
                     RunContext(data=Dataset("random", SHAPE, 10, split(32), split(16), split(16))))
    with torch.no_grad():
        assert out.module(torch.randn(3, *SHAPE)).shape == (3, 10)  # was: shape '[-1, 512]' is invalid
    base, pruned = (count_macs(export_onnx_proto(m, SHAPE)) for m in (loaded.module, out.module))
    assert pruned < base / 3
