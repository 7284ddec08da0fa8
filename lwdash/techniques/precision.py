"""Reduced precision: fp16 / bf16 casts and weight-only int8 / int4 quantization of Linear layers.

Each technique returns two forms of the same model:

* the PyTorch form (``CompressedModel.module``) takes float32 input of any batch size and
  returns float32 logits: half-precision models are wrapped in :class:`HalfPrecisionModel`,
  weight-only models hold torchao tensor subclasses (``quantize_``);
* the ONNX artifact (``CompressedModel.onnx_model``), built from the fp32 ONNX export:
  ``convert_float_to_float16`` for fp16, bf16-stored weights for bf16 (ONNX Runtime's CPU
  provider has no bf16 MatMul/Gemm/Conv kernels), and an int8 ``DequantizeLinear`` per weight
  or ONNX Runtime's 4-bit ``MatMulNBits`` for the weight-only modes.

Latency is never assumed here: the runner measures both forms against the baseline.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from lwdash.techniques.base import UPLOADED_GRAPH_NOTE, CompressedModel, RunContext, TechniqueConfig, knob, register
from lwdash.techniques.precision_onnx import _bf16_weight_storage_onnx, _fp16_onnx
from lwdash.techniques.precision_onnx import _export_fp32_onnx as _export_fp32_onnx
from lwdash.techniques.weight_only import _plan_linears, _weight_only

__all__ = [
    "Bf16Config",
    "Fp16Config",
    "HalfPrecisionModel",
    "WeightOnlyInt4Config",
    "WeightOnlyInt8Config",
    "apply_bf16",
    "apply_fp16",
    "apply_weight_only_int4",
    "apply_weight_only_int8",
]

_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
)
_FP16_MAX = 65504.0


# --------------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fp16Config(TechniqueConfig):
    """Cast weights and compute to float16: half the bytes; the speed-up on this CPU is measured, not assumed."""

    keep_norms_fp32: bool = knob(
        False,
        help="Keep normalization layers (BatchNorm, LayerNorm, GroupNorm) in float32 for numerical safety",
    )


@dataclass(frozen=True)
class Bf16Config(TechniqueConfig):
    """Cast weights and compute to bfloat16 (PyTorch form); the ONNX artifact stores bf16 weights, computes fp32."""

    keep_norms_fp32: bool = knob(
        False,
        help="Keep normalization layers (BatchNorm, LayerNorm, GroupNorm) in float32 for numerical safety",
    )


@dataclass(frozen=True)
class WeightOnlyInt8Config(TechniqueConfig):
    """Store Linear weights as int8 (one scale per output row); activations and convolutions stay float32."""

    skip_classifier: bool = knob(
        False, help="Keep the last Linear layer (usually the classifier, often the most sensitive) in float32"
    )

    def validate_for(self, model: nn.Module, input_shape: tuple[int, ...]) -> None:
        """Raise ``ValueError`` when the model has no Linear layer this config would quantize."""
        del input_shape
        _plan_linears(model, skip_classifier=self.skip_classifier, group_size=None)


@dataclass(frozen=True)
class WeightOnlyInt4Config(TechniqueConfig):
    """Store Linear weights as grouped int4 - for size only: int4 runs slower than fp32 on this CPU."""

    group_size: Literal[32, 64, 128] = knob(
        32, help="Weights per int4 group, each group with its own scale; smaller groups are more accurate"
    )
    skip_classifier: bool = knob(
        False, help="Keep the last Linear layer (usually the classifier, often the most sensitive) in float32"
    )

    def validate_for(self, model: nn.Module, input_shape: tuple[int, ...]) -> None:
        """Raise ``ValueError`` when no Linear layer can take int4 groups of ``group_size``."""
        del input_shape
        _plan_linears(model, skip_classifier=self.skip_classifier, group_size=self.group_size)


# --------------------------------------------------------------------------------------------
# PyTorch forms
# --------------------------------------------------------------------------------------------
class HalfPrecisionModel(nn.Module):
    """Runs a half-precision module on float32 input and returns float32 output.

    Args:
        inner: the module, already cast to ``dtype``.
        dtype: ``torch.float16`` or ``torch.bfloat16``.
    """

    def __init__(self, inner: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.inner = inner
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.inner(x.to(self.dtype))
        return y.float()


class _Float32Island(nn.Module):
    """Runs ``inner`` (kept in float32) inside a half-precision model, casting in and out."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.inner(x.float())
        return y.to(x.dtype)


def _to_half(model: nn.Module, dtype: torch.dtype, keep_norms_fp32: bool) -> HalfPrecisionModel:
    inner = copy.deepcopy(model).eval().to(dtype)
    if keep_norms_fp32:
        for parent in list(inner.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, _NORM_TYPES):
                    setattr(parent, name, _Float32Island(child.float()))
    wrapped = HalfPrecisionModel(inner, dtype)
    wrapped.eval()
    return wrapped


def _count_out_of_fp16_range(model: nn.Module) -> int:
    n = 0
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            n += int((t.detach().abs() > _FP16_MAX).sum())
    return n


# --------------------------------------------------------------------------------------------
# Registered techniques
# --------------------------------------------------------------------------------------------
_WHEN_FP16 = (
    "To halve the file, or for a GPU or CPU with fast float16 arithmetic; on CPUs without it, fp16 is "
    "often no faster (the result's latency matrix says)."
)


@register("fp16", Fp16Config, family="quantization", title="fp16 (half precision)", when=_WHEN_FP16)
def apply_fp16(model: nn.Module, cfg: Fp16Config, ctx: RunContext) -> CompressedModel:
    """Cast the model to float16.

    The PyTorch form is wrapped so it takes and returns float32; the ONNX artifact is the
    fp32 export converted by ``onnxruntime.transformers.float16`` with float32 inputs and outputs.
    """
    ctx.progress(0.05, "casting to float16")
    clamped = _count_out_of_fp16_range(model)
    module = _to_half(model, torch.float16, cfg.keep_norms_fp32)
    ctx.progress(0.3, "exporting the fp32 model to ONNX")
    fp32, uploaded = ctx.input_onnx(model)
    ctx.progress(0.7, "converting the ONNX model to float16")
    onnx_model = _fp16_onnx(fp32, cfg.keep_norms_fp32)
    notes = [
        "half the bytes; this CPU has no dependable fp16 speed-up (latency is measured, not assumed: "
        "the ONNX artifact takes float32 input and casts at its edges)",
        *([UPLOADED_GRAPH_NOTE] if uploaded else []),
    ]
    if cfg.keep_norms_fp32:
        notes.append("normalization layers kept in float32 (PyTorch form and ONNX artifact)")
    if clamped:
        notes.append(f"{clamped} weight value(s) exceed the float16 range (+-65504) and saturate")
    ctx.progress(1.0, "fp16 done")
    return CompressedModel(module=module, onnx_model=onnx_model, notes=tuple(notes))


_WHEN_BF16 = (
    "For hardware with bfloat16 arithmetic (recent CPUs and GPUs): half the bytes of the PyTorch form, "
    "with fp32's range; the ONNX artifact still computes in fp32."
)


@register("bf16", Bf16Config, family="quantization", title="bf16 (bfloat16)", when=_WHEN_BF16)
def apply_bf16(model: nn.Module, cfg: Bf16Config, ctx: RunContext) -> CompressedModel:
    """Cast the model to bfloat16.

    The PyTorch form computes in bfloat16 (float32 in and out). ONNX Runtime's CPU provider has
    no bfloat16 MatMul/Gemm/Conv kernels, so the ONNX artifact stores bf16-rounded weights (half
    the bytes) and casts them to float32 when the session loads: its arithmetic is float32.
    """
    ctx.progress(0.05, "casting to bfloat16")
    module = _to_half(model, torch.bfloat16, cfg.keep_norms_fp32)
    ctx.progress(0.3, "exporting the fp32 model to ONNX")
    fp32, uploaded = ctx.input_onnx(model)
    ctx.progress(0.7, "storing ONNX weights as bfloat16")
    onnx_model, converted = _bf16_weight_storage_onnx(fp32, cfg.keep_norms_fp32)
    notes = [
        *([UPLOADED_GRAPH_NOTE] if uploaded else []),
        "half the bytes; latency is measured, not assumed (bf16 arithmetic is fast only on CPUs with bf16 "
        "instructions, in PyTorch)",
        f"ONNX artifact: {converted} weight tensor(s) stored as bfloat16 and cast to float32 when loaded; "
        "ONNX Runtime's CPU provider has no bfloat16 MatMul/Gemm/Conv kernels, so it computes in float32 "
        "(weights rounded as in bf16, activations not): its accuracy can differ slightly from the PyTorch form",
    ]
    if cfg.keep_norms_fp32:
        notes.append("normalization layers kept in float32 (PyTorch form and ONNX artifact)")
    ctx.progress(1.0, "bf16 done")
    return CompressedModel(module=module, onnx_model=onnx_model, notes=tuple(notes))


_WHEN_WEIGHT_ONLY_INT8 = (
    "When size or memory is the constraint and activations must stay float: about a quarter of the Linear "
    "weights' bytes; convolutions stay float32, and speed is usually unchanged."
)


@register(
    "weight_only_int8", WeightOnlyInt8Config, family="quantization", title="Weight-only int8",
    when=_WHEN_WEIGHT_ONLY_INT8,
)
def apply_weight_only_int8(model: nn.Module, cfg: WeightOnlyInt8Config, ctx: RunContext) -> CompressedModel:
    """Quantize Linear weights to int8 per output row (torchao ``Int8WeightOnlyConfig``).

    Raises:
        ValueError: the model has no Linear layer to quantize.
    """
    return _weight_only(model, ctx, bits=8, skip_classifier=cfg.skip_classifier, group_size=None)


_WHEN_WEIGHT_ONLY_INT4 = (
    "For the smallest file of a Linear-heavy model when speed does not matter: about an eighth of the "
    "Linear weights' bytes, but slower than fp32 on CPU runtimes."
)


@register(
    "weight_only_int4", WeightOnlyInt4Config, family="quantization", title="Weight-only int4",
    when=_WHEN_WEIGHT_ONLY_INT4,
)
def apply_weight_only_int4(model: nn.Module, cfg: WeightOnlyInt4Config, ctx: RunContext) -> CompressedModel:
    """Quantize Linear weights to grouped int4 (torchao ``IntxWeightOnlyConfig``, ORT ``MatMulNBits``).

    Raises:
        ValueError: no Linear layer can take int4 groups of ``cfg.group_size``.
    """
    return _weight_only(
        model, ctx, bits=4, skip_classifier=cfg.skip_classifier, group_size=int(cfg.group_size)
    )
