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
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn

from lwdash.techniques.base import UPLOADED_GRAPH_NOTE, CompressedModel, RunContext, TechniqueConfig, knob, register

if TYPE_CHECKING:
    import onnx

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
_ONNX_NORM_OPS: tuple[str, ...] = (
    "BatchNormalization",
    "LayerNormalization",
    "GroupNormalization",
    "InstanceNormalization",
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
# ONNX helpers
# --------------------------------------------------------------------------------------------
def _export_fp32_onnx(model: nn.Module, input_shape: tuple[int, ...]) -> onnx.ModelProto:
    """The fp32 ONNX export of a copy of ``model`` (dynamic batch), with the runner's exporter."""
    from lwdash.techniques._common import export_onnx_proto

    return export_onnx_proto(copy.deepcopy(model).eval(), tuple(input_shape))


def _initializers(model: onnx.ModelProto) -> dict[str, Any]:
    return {init.name: init for init in model.graph.initializer}


def _consumers(model: onnx.ModelProto) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            out.setdefault(name, []).append(node)
    return out


def _replace_initializer_with_nodes(
    model: onnx.ModelProto, name: str, new_inits: list[Any], nodes: list[Any]
) -> None:
    """Drop initializer ``name`` and produce a tensor of the same name from ``nodes`` instead.

    The producing nodes are put first in the graph (their inputs are all initializers), so
    the graph stays topologically sorted and every consumer is left untouched.
    """
    keep = [i for i in model.graph.initializer if i.name != name]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep + new_inits)
    inputs = [i for i in model.graph.input if i.name != name]  # old IRs list initializers as inputs
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    existing = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes + existing)


def _fp16_onnx(fp32: onnx.ModelProto, keep_norms_fp32: bool) -> onnx.ModelProto:
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    block = list(DEFAULT_OP_BLOCK_LIST) + (list(_ONNX_NORM_OPS) if keep_norms_fp32 else [])
    with _quiet_loggers("onnxruntime.transformers.float16"):
        out: onnx.ModelProto = convert_float_to_float16(copy.deepcopy(fp32), keep_io_types=True, op_block_list=block)
    return out


def _bf16_weight_storage_onnx(fp32: onnx.ModelProto, keep_norms_fp32: bool) -> tuple[onnx.ModelProto, int]:
    """Store float32 initializers as bfloat16, each followed by a Cast back to float32.

    ONNX Runtime's CPU provider has no bfloat16 MatMul, Gemm or Conv kernels (and ONNX has no
    bf16 Conv at all), so a bf16-compute graph does not run there; this keeps the bf16 bytes
    and the bf16-rounded weights, and computes in float32.

    Returns:
        The new model and the number of initializers stored as bfloat16.
    """
    from onnx import TensorProto, helper, numpy_helper

    model = copy.deepcopy(fp32)
    consumers = _consumers(model)
    blocked = set(_ONNX_NORM_OPS) if keep_norms_fp32 else set()
    converted = 0
    for init in list(model.graph.initializer):
        if init.data_type != TensorProto.FLOAT:
            continue
        users = consumers.get(init.name, [])
        if not users or any(u.op_type in blocked for u in users):
            continue
        arr = numpy_helper.to_array(init)
        if arr.size < 2:
            continue
        bits = torch.from_numpy(np.array(arr, dtype=np.float32, copy=True)).to(torch.bfloat16).view(torch.int16).numpy()
        stored = helper.make_tensor(
            f"{init.name}__bf16", TensorProto.BFLOAT16, list(arr.shape), bits.tobytes(), raw=True
        )
        cast = helper.make_node(
            "Cast", [stored.name], [init.name], to=TensorProto.FLOAT, name=f"{init.name}__to_fp32"
        )
        _replace_initializer_with_nodes(model, init.name, [stored], [cast])
        converted += 1
    return model, converted


@dataclass(frozen=True)
class _WeightSite:
    """Where one Linear weight sits in the ONNX graph.

    Attributes:
        fqn: the Linear's qualified name in the PyTorch module.
        init_name: the initializer holding the weight.
        out_axis: axis of the initializer that indexes output features (0: ``(N, K)``, 1: ``(K, N)``).
    """

    fqn: str
    init_name: str
    out_axis: int


def _locate_weights(model: onnx.ModelProto, weights: dict[str, np.ndarray]) -> dict[str, _WeightSite]:
    """Find each Linear weight ``(N, K)`` among the Gemm/MatMul weight initializers, by value.

    Matching by value, not by name, keeps this independent of how the exporter names tensors.
    """
    from onnx import helper, numpy_helper

    inits = _initializers(model)
    found: dict[str, _WeightSite] = {}
    for node in model.graph.node:
        if node.op_type not in ("Gemm", "MatMul") or len(node.input) < 2 or node.input[1] not in inits:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        b = numpy_helper.to_array(inits[node.input[1]])
        if b.ndim != 2:
            continue
        trans_b = node.op_type == "Gemm" and int(attrs.get("transB", 0)) == 1
        for fqn, w in weights.items():
            if fqn in found:
                continue
            candidate = w if trans_b else w.T
            if candidate.shape == b.shape and np.array_equal(candidate, b):
                found[fqn] = _WeightSite(fqn, node.input[1], 0 if trans_b else 1)
                break
    return found


def _int8_weight_only_onnx(
    fp32: onnx.ModelProto, quantized: dict[str, tuple[np.ndarray, np.ndarray]], weights: dict[str, np.ndarray]
) -> tuple[onnx.ModelProto, list[str]]:
    """Replace each quantized Linear weight by an int8 initializer and a per-row ``DequantizeLinear``.

    Args:
        fp32: the fp32 export.
        quantized: per Linear fqn, torchao's int8 values ``(N, K)`` and scales ``(N,)``.
        weights: per Linear fqn, the original fp32 weight ``(N, K)``, to find it in the graph.

    Returns:
        The new model and the fqns whose weight could not be found in the graph (left fp32).
    """
    from onnx import helper, numpy_helper

    model = copy.deepcopy(fp32)
    sites = _locate_weights(model, weights)
    for fqn, site in sites.items():
        q, scale = quantized[fqn]
        q_stored = q if site.out_axis == 0 else np.ascontiguousarray(q.T)
        q_init = numpy_helper.from_array(q_stored.astype(np.int8), f"{site.init_name}__int8")
        s_init = numpy_helper.from_array(scale.astype(np.float32), f"{site.init_name}__scale")
        zp_init = numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), f"{site.init_name}__zero_point")
        dq = helper.make_node(
            "DequantizeLinear",
            [q_init.name, s_init.name, zp_init.name],
            [site.init_name],
            axis=site.out_axis,
            name=f"{site.init_name}__dequantize",
        )
        _replace_initializer_with_nodes(model, site.init_name, [q_init, s_init, zp_init], [dq])
    missing = sorted(set(weights) - set(sites))
    return model, missing


def _int4_matmulnbits_onnx(
    fp32: onnx.ModelProto, weights: dict[str, np.ndarray], group_size: int
) -> tuple[onnx.ModelProto, list[str]]:
    """Quantize the given Linear weights to 4-bit ``MatMulNBits`` (symmetric, blocks of ``group_size``).

    ONNX Runtime's weight-only quantizer only takes MatMul nodes, so each target Gemm is first
    rewritten as MatMul (+ Add for the bias) with the weight stored as ``(K, N)``.

    Returns:
        The new model and the fqns whose weight could not be found in the graph (left fp32).
    """
    from onnx import helper, numpy_helper

    DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer = _import_matmul_nbits()

    model = copy.deepcopy(fp32)
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"lwdash_node_{i}"
    sites = _locate_weights(model, weights)
    site_inits = {s.init_name for s in sites.values()}
    inits = _initializers(model)
    include: list[str] = []
    new_nodes: list[Any] = []
    new_inits: list[Any] = []
    drop_inits: set[str] = set()
    for node in model.graph.node:
        if len(node.input) < 2 or node.input[1] not in site_inits:
            new_nodes.append(node)
            continue
        if node.op_type == "MatMul":
            include.append(node.name)
            new_nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        simple = (
            int(attrs.get("transA", 0)) == 0
            and float(attrs.get("alpha", 1.0)) == 1.0
            and float(attrs.get("beta", 1.0)) == 1.0
        )
        if not simple:
            new_nodes.append(node)
            continue
        b = numpy_helper.to_array(inits[node.input[1]])
        if int(attrs.get("transB", 0)) == 1:
            b = b.T
        w_name = f"{node.input[1]}__kn"
        new_inits.append(numpy_helper.from_array(np.ascontiguousarray(b), w_name))
        drop_inits.add(node.input[1])
        has_bias = len(node.input) > 2 and bool(node.input[2])
        mm_out = f"{node.output[0]}__matmul" if has_bias else node.output[0]
        mm = helper.make_node("MatMul", [node.input[0], w_name], [mm_out], name=f"{node.name}__matmul")
        include.append(mm.name)
        new_nodes.append(mm)
        if has_bias:
            new_nodes.append(helper.make_node("Add", [mm_out, node.input[2]], [node.output[0]], name=f"{node.name}__bias"))
    del model.graph.node[:]
    model.graph.node.extend(new_nodes)
    still_used = {name for n in model.graph.node for name in n.input}
    kept = [i for i in model.graph.initializer if i.name not in drop_inits or i.name in still_used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept + new_inits)

    if include:
        algo = DefaultWeightOnlyQuantConfig(block_size=group_size, is_symmetric=True, bits=4)
        with _quiet_loggers("onnxruntime.quantization.matmul_nbits_quantizer", "onnxruntime.quantization"):
            quantizer = MatMulNBitsQuantizer(
                model, bits=4, block_size=group_size, is_symmetric=True, nodes_to_include=include, algo_config=algo
            )
            quantizer.process()
        model = quantizer.model.model
    missing = sorted(set(weights) - set(sites))
    return model, missing


def _import_matmul_nbits() -> tuple[Any, Any]:
    """Import ORT's weight-only quantizer without letting it reconfigure the root logger.

    ``onnxruntime.quantization.matmul_nbits_quantizer`` calls ``logging.basicConfig(level=INFO)``
    at import, which would turn on INFO output from every library in the worker process.
    """
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            DefaultWeightOnlyQuantConfig,
            MatMulNBitsQuantizer,
        )
    finally:
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)
    return DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer


@contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    """Silence chatty INFO logging from ONNX Runtime's converters for the duration."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


# --------------------------------------------------------------------------------------------
# Weight-only planning
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _LinearPlan:
    """Which Linear layers a weight-only config quantizes, and why any are left float32."""

    targets: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (fqn, reason)


def _plan_linears(model: nn.Module, *, skip_classifier: bool, group_size: int | None) -> _LinearPlan:
    """Choose the Linear layers to quantize.

    Raises:
        ValueError: the model has no Linear layer, or none that this config can quantize.
    """
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        convs = sum(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())
        raise ValueError(
            "weight-only quantization applies to Linear layers and this model has none "
            f"({convs} convolution layer(s)); for convolutions use static int8 quantization instead"
        )
    targets: list[str] = []
    skipped: list[tuple[str, str]] = []
    last = linears[-1][0]
    for name, m in linears:
        if skip_classifier and name == last:
            skipped.append((name, "the classifier is kept in float32 (skip_classifier)"))
        elif group_size is not None and m.in_features % group_size != 0:
            skipped.append((name, f"in_features={m.in_features} is not a multiple of group_size={group_size}"))
        else:
            targets.append(name)
    if not targets:
        why = "; ".join(f"{n}: {r}" for n, r in skipped)
        raise ValueError(f"no Linear layer can be quantized with this config ({why})")
    return _LinearPlan(tuple(targets), tuple(skipped))


def _linear_weights(model: nn.Module, fqns: tuple[str, ...]) -> dict[str, np.ndarray]:
    mods = dict(model.named_modules())
    out: dict[str, np.ndarray] = {}
    for fqn in fqns:
        lin = mods[fqn]
        assert isinstance(lin, nn.Linear)
        out[fqn] = lin.weight.detach().float().cpu().numpy().copy()
    return out


def _weight_numel(module: nn.Module) -> int:
    w = getattr(module, "weight", None)
    return int(w.numel()) if isinstance(w, torch.Tensor) else 0


def _linear_summary(model: nn.Module, plan: _LinearPlan) -> tuple[int, int]:
    """(quantized weight params, all Linear+Conv weight params) of the original model."""
    mods = dict(model.named_modules())
    quantized = sum(_weight_numel(mods[f]) for f in plan.targets)
    total = sum(_weight_numel(m) for m in model.modules() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd)))
    return int(quantized), int(total)


def _skipped_note(plan: _LinearPlan) -> tuple[str, ...]:
    if not plan.skipped:
        return ()
    return ("left in float32: " + "; ".join(f"{n} ({r})" for n, r in plan.skipped),)


def _weight_only(
    model: nn.Module, ctx: RunContext, *, bits: Literal[4, 8], skip_classifier: bool, group_size: int | None
) -> CompressedModel:
    from torchao.quantization import Int8WeightOnlyConfig, IntxWeightOnlyConfig, quantize_
    from torchao.quantization.granularity import PerGroup

    plan = _plan_linears(model, skip_classifier=skip_classifier, group_size=group_size)
    targets = set(plan.targets)
    weights = _linear_weights(model, plan.targets)
    ctx.progress(0.05, f"weight-only int{bits}: quantizing {len(targets)} Linear layer(s) with torchao")
    qmodel = copy.deepcopy(model).eval()
    if bits == 8:
        ao_cfg: Any = Int8WeightOnlyConfig()
    else:
        assert group_size is not None
        ao_cfg = IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(group_size))  # type: ignore[attr-defined]
    quantize_(qmodel, ao_cfg, filter_fn=lambda m, fqn: isinstance(m, nn.Linear) and fqn in targets)

    ctx.progress(0.4, "exporting the fp32 model to ONNX")
    fp32 = _export_fp32_onnx(model, ctx.input_shape)
    ctx.progress(0.7, f"building the int{bits} weight-only ONNX artifact")
    if bits == 8:
        mods = dict(qmodel.named_modules())
        quantized: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for fqn in plan.targets:
            w = mods[fqn].weight  # torchao Int8Tensor: qdata (N, K) int8, scale (N, 1)
            quantized[fqn] = (
                w.qdata.detach().cpu().numpy(),
                w.scale.detach().float().reshape(-1).cpu().numpy(),
            )
        onnx_model, missing = _int8_weight_only_onnx(fp32, quantized, weights)
        onnx_how = "int8 weights with one scale per output row, dequantized by DequantizeLinear (same values as the PyTorch form)"
    else:
        assert group_size is not None
        onnx_model, missing = _int4_matmulnbits_onnx(fp32, weights, group_size)
        onnx_how = f"ONNX Runtime MatMulNBits, 4-bit packed, symmetric groups of {group_size}"

    n_quant, n_total = _linear_summary(model, plan)
    notes: list[str] = [
        f"weight-only int{bits}: {len(plan.targets)} Linear layer(s), {n_quant:,} of {n_total:,} Linear/Conv "
        "weights quantized; activations stay float32 and weights are dequantized at run time; "
        "latency is measured, not assumed",
        f"ONNX artifact: {onnx_how}",
    ]
    if bits == 4:
        notes.append("int4 is for size only here: slower on this CPU (no fast int4 CPU kernels in this stack)")
        notes.append(
            "the PyTorch form (torchao IntxUnpackedToInt8Tensor) keeps int4 values unpacked in int8 bytes: "
            "only the ONNX artifact is 4-bit packed on disk"
        )
    if n_quant < n_total:
        notes.append("convolutions (and any Linear listed below) are not quantized by weight-only modes")
    notes.extend(_skipped_note(plan))
    if missing:
        notes.append(
            "the ONNX artifact keeps these Linear weights in float32 (not found as Gemm/MatMul weights in the "
            f"export): {', '.join(missing)}"
        )
    steps = (
        {
            "step": f"weight-only int{bits}",
            "linear_layers_quantized": len(plan.targets),
            "linear_layers_skipped": len(plan.skipped),
            "weights_quantized_count": n_quant,
            "onnx_weights_quantized_count": len(plan.targets) - len(missing),
            **({"group_size": group_size} if group_size is not None else {}),
        },
    )
    ctx.progress(1.0, f"weight-only int{bits} done")
    return CompressedModel(module=qmodel, onnx_model=onnx_model, notes=tuple(notes), steps=steps)


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
