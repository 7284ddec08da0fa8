"""fp16 / bf16 casts and weight-only int8 / int4 on real digits, in PyTorch and in ONNX Runtime."""
from __future__ import annotations

import copy

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto
from torch import nn

from lwdash.data import Dataset
from lwdash.data.digits import load_digits
from lwdash.techniques import CompressedModel, RunContext, get_technique
from lwdash.techniques.precision import (
    Bf16Config,
    Fp16Config,
    HalfPrecisionModel,
    WeightOnlyInt4Config,
    WeightOnlyInt8Config,
    _export_fp32_onnx,
    apply_bf16,
    apply_fp16,
    apply_weight_only_int4,
    apply_weight_only_int8,
)

INPUT_SHAPE = (1, 8, 8)


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def _cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 16, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def _train(model: nn.Module, data: Dataset, epochs: int) -> nn.Module:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(data.train), generator=gen)
        for i in range(0, len(perm), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            F.cross_entropy(model(data.train.x[idx]), data.train.y[idx]).backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits(seed=0)


@pytest.fixture(scope="module")
def mlp(digits: Dataset) -> nn.Module:
    torch.manual_seed(0)
    return _train(_mlp(), digits, epochs=12)


@pytest.fixture(scope="module")
def cnn(digits: Dataset) -> nn.Module:
    torch.manual_seed(0)
    return _train(_cnn(), digits, epochs=4)


@pytest.fixture(scope="module")
def ctx(digits: Dataset) -> RunContext:
    return RunContext(data=digits, seed=0)


def _preds_torch(module: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        y = module(x)
    assert y.dtype == torch.float32
    return y.argmax(1).numpy()


def _preds_onnx(model: onnx.ModelProto, x: torch.Tensor) -> np.ndarray:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    assert inp.type == "tensor(float)", "the artifact must take float32 input"
    return np.asarray(sess.run(None, {inp.name: x.numpy()})[0]).argmax(1)


def _check_untouched(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) and before[k].dtype == after[k].dtype for k in before)


@pytest.fixture(scope="module")
def fp32_bytes(cnn: nn.Module, mlp: nn.Module) -> dict[str, int]:
    return {
        "cnn": _export_fp32_onnx(cnn, INPUT_SHAPE).ByteSize(),
        "mlp": _export_fp32_onnx(mlp, INPUT_SHAPE).ByteSize(),
    }


@pytest.fixture(scope="module")
def fp16_out(cnn: nn.Module, ctx: RunContext) -> CompressedModel:
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    out = apply_fp16(cnn, Fp16Config(), ctx)
    _check_untouched(cnn, before)
    return out


def test_registered_in_the_quantization_family() -> None:
    for key in ("fp16", "bf16", "weight_only_int8", "weight_only_int4"):
        assert get_technique(key).family == "quantization"
    assert "size only" in get_technique("weight_only_int4").description


def test_fp16_onnx_is_half_the_bytes_and_agrees(
    fp16_out: CompressedModel, cnn: nn.Module, digits: Dataset, fp32_bytes: dict[str, int]
) -> None:
    assert fp16_out.onnx_model is not None
    ratio = fp16_out.onnx_model.ByteSize() / fp32_bytes["cnn"]
    assert 0.4 < ratio < 0.6, ratio
    assert any(i.data_type == TensorProto.FLOAT16 for i in fp16_out.onnx_model.graph.initializer)
    ref = _preds_torch(cnn, digits.test.x)
    assert (_preds_onnx(fp16_out.onnx_model, digits.test.x) == ref).mean() >= 0.99
    assert (_preds_torch(fp16_out.module, digits.test.x) == ref).mean() >= 0.99
    assert any("half the bytes" in n for n in fp16_out.notes)


def test_fp16_module_takes_float32_at_any_batch(fp16_out: CompressedModel, digits: Dataset) -> None:
    module = fp16_out.module
    assert isinstance(module, HalfPrecisionModel)
    assert all(p.dtype == torch.float16 for p in module.parameters())
    for b in (1, 5):
        y = module(digits.test.x[:b])
        assert y.shape == (b, 10) and y.dtype == torch.float32


def test_bf16_forms_run_and_agree(cnn: nn.Module, ctx: RunContext, digits: Dataset, fp32_bytes: dict[str, int]) -> None:
    out = apply_bf16(cnn, Bf16Config(keep_norms_fp32=True), ctx)
    assert out.onnx_model is not None
    # bf16 storage, fp32 arithmetic in ONNX Runtime (its CPU provider has no bf16 kernels): say so
    assert any(i.data_type == TensorProto.BFLOAT16 for i in out.onnx_model.graph.initializer)
    assert any("computes in float32" in n for n in out.notes)
    assert 0.4 < out.onnx_model.ByteSize() / fp32_bytes["cnn"] < 0.65
    ref = _preds_torch(cnn, digits.test.x)
    assert (_preds_onnx(out.onnx_model, digits.test.x) == ref).mean() >= 0.99
    assert (_preds_torch(out.module, digits.test.x) == ref).mean() >= 0.98
    # norms kept in float32 inside an otherwise bf16 model
    dtypes = {n: p.dtype for n, p in out.module.named_parameters()}
    assert any("inner" in n and d == torch.float32 for n, d in dtypes.items())  # BatchNorm weights
    assert dtypes["inner.0.weight"] == torch.bfloat16


@pytest.fixture(scope="module")
def int8_out(mlp: nn.Module, ctx: RunContext) -> CompressedModel:
    before = {k: v.clone() for k, v in mlp.state_dict().items()}
    out = apply_weight_only_int8(mlp, WeightOnlyInt8Config(), ctx)
    _check_untouched(mlp, before)
    return out


@pytest.fixture(scope="module")
def int4_out(mlp: nn.Module, ctx: RunContext) -> CompressedModel:
    return apply_weight_only_int4(mlp, WeightOnlyInt4Config(), ctx)


def test_weight_only_int8_agrees_and_shrinks(
    int8_out: CompressedModel, mlp: nn.Module, digits: Dataset, fp32_bytes: dict[str, int]
) -> None:
    ref = _preds_torch(mlp, digits.test.x)
    assert (_preds_torch(int8_out.module, digits.test.x) == ref).mean() >= 0.98
    assert int8_out.onnx_model is not None
    assert (_preds_onnx(int8_out.onnx_model, digits.test.x) == ref).mean() >= 0.98
    graph = int8_out.onnx_model.graph
    assert sum(n.op_type == "DequantizeLinear" for n in graph.node) == 3  # one per Linear weight
    assert sum(i.data_type == TensorProto.INT8 for i in graph.initializer) >= 3
    assert int8_out.onnx_model.ByteSize() < 0.45 * fp32_bytes["mlp"]
    assert int8_out.steps[0]["linear_layers_quantized"] == 3


def test_weight_only_int4_runs_and_agrees_on_an_mlp(
    int4_out: CompressedModel, int8_out: CompressedModel, mlp: nn.Module, digits: Dataset
) -> None:
    ref = _preds_torch(mlp, digits.test.x)
    assert (_preds_torch(int4_out.module, digits.test.x) == ref).mean() >= 0.8
    assert int4_out.onnx_model is not None
    assert (_preds_onnx(int4_out.onnx_model, digits.test.x) == ref).mean() >= 0.8
    assert sum(n.op_type == "MatMulNBits" for n in int4_out.onnx_model.graph.node) == 3
    assert int4_out.onnx_model.ByteSize() < int8_out.onnx_model.ByteSize()  # type: ignore[union-attr]
    assert any("size only" in n for n in int4_out.notes)


@pytest.mark.parametrize("which", ["int8", "int4"])
def test_weight_only_modules_export_with_a_dynamic_batch(
    which: str, int8_out: CompressedModel, int4_out: CompressedModel, digits: Dataset
) -> None:
    module = (int8_out if which == "int8" else int4_out).module
    ep = torch.export.export(module, (digits.test.x[:2],), dynamic_shapes=({0: torch.export.Dim("batch")},))
    x = digits.test.x[:7]
    with torch.no_grad():
        assert torch.allclose(ep.module()(x), module(x), atol=1e-5)
        assert module(digits.test.x[:1]).shape == (1, 10)


def test_int4_group_size_skips_and_rejects_layers(mlp: nn.Module, ctx: RunContext, digits: Dataset) -> None:
    # fc1 has in_features 64: not a multiple of 128, so it stays float32 and the note says so
    out = apply_weight_only_int4(mlp, WeightOnlyInt4Config(group_size=128, skip_classifier=True), ctx)
    assert out.steps[0]["linear_layers_quantized"] == 1  # only the 128-wide layer
    assert any("1 (in_features=64 is not a multiple of group_size=128)" in n for n in out.notes)
    assert any("5 (the classifier is kept in float32" in n for n in out.notes)
    assert out.onnx_model is not None
    assert sum(n.op_type == "MatMulNBits" for n in out.onnx_model.graph.node) == 1
    assert (_preds_onnx(out.onnx_model, digits.test.x) == _preds_torch(mlp, digits.test.x)).mean() >= 0.9
    odd = nn.Sequential(nn.Flatten(), nn.Linear(64, 40), nn.ReLU(), nn.Linear(40, 10))
    with pytest.raises(ValueError, match=r"no Linear layer can be quantized.*not a multiple of group_size=128"):
        WeightOnlyInt4Config(group_size=128).validate_for(odd, INPUT_SHAPE)


def test_weight_only_int8_on_a_cnn_quantizes_only_linears(cnn: nn.Module, ctx: RunContext, digits: Dataset) -> None:
    out = apply_weight_only_int8(cnn, WeightOnlyInt8Config(), ctx)
    assert out.steps[0]["linear_layers_quantized"] == 2
    assert any("convolutions" in n for n in out.notes)
    assert out.onnx_model is not None
    assert (_preds_onnx(out.onnx_model, digits.test.x) == _preds_torch(cnn, digits.test.x)).mean() >= 0.98


def test_model_without_linear_layers_is_rejected(ctx: RunContext) -> None:
    conv_only = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 10, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    for cfg in (WeightOnlyInt8Config(), WeightOnlyInt4Config()):
        with pytest.raises(ValueError, match="applies to Linear layers and this model has none"):
            cfg.validate_for(conv_only, INPUT_SHAPE)
    with pytest.raises(ValueError, match="has none"):
        apply_weight_only_int8(copy.deepcopy(conv_only), WeightOnlyInt8Config(), ctx)
