"""Weight-only int8 / int4 quantization of Linear layers: which layers, torchao's PyTorch form, the ONNX artifact.

:func:`_weight_only` is the body of both registered weight-only techniques of
:mod:`lwdash.techniques.precision`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from lwdash.techniques.base import CompressedModel, RunContext
from lwdash.techniques.precision_onnx import _export_fp32_onnx, _int4_matmulnbits_onnx, _int8_weight_only_onnx


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
