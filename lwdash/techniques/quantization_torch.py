"""The PyTorch side of int8 quantization: PT2E static int8, torchao dynamic int8, and checks of the result.

Each builder returns ``(module, "")`` or ``(None, reason)``; the caller then ships the fp32 copy
with :func:`_fp32_fallback_note`. Used by :mod:`lwdash.techniques.quantization` and
:mod:`lwdash.techniques.qat`.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import TYPE_CHECKING

import torch
from torch import nn

from lwdash.techniques._common import batch_for_export, weight_layers
from lwdash.techniques.quantization_ort import _CALIB_BATCH

if TYPE_CHECKING:
    from lwdash.techniques.quantization import Int8StaticConfig

__all__ = ["EAGER_REFERENCE_NOTE"]

EAGER_REFERENCE_NOTE = (
    "PyTorch eager runs int8 as reference quantize/dequantize ops: speed-up needs torch.compile or ONNX Runtime"
)


def _drop_unused_attributes_(gm: torch.fx.GraphModule) -> None:
    """Delete parameters/buffers the graph no longer reads (convert_pt2e keeps the fp32 weights around)."""
    used = {str(n.target) for n in gm.graph.nodes if n.op == "get_attr"}
    for name, _ in [*gm.named_parameters(), *gm.named_buffers()]:
        if name in used:
            continue
        owner_path, _, attr = name.rpartition(".")
        owner = gm.get_submodule(owner_path) if owner_path else gm
        delattr(owner, attr)


def _check_runs(module: nn.Module, input_shape: tuple[int, ...], reference: nn.Module) -> None:
    """Raise unless ``module`` runs at batch 1 and 3 with finite outputs of the reference's shape."""
    with torch.no_grad():
        for b in (1, 3):
            x = torch.zeros((b, *input_shape))
            y, y_ref = module(x), reference(x)
            if not isinstance(y, torch.Tensor) or y.shape != y_ref.shape or not bool(torch.isfinite(y).all()):
                raise RuntimeError(f"quantized module gives a bad output at batch {b}")


def _pt2e_static(
    model: nn.Module, calib: torch.Tensor, input_shape: tuple[int, ...], cfg: Int8StaticConfig
) -> tuple[nn.Module | None, str]:
    """PT2E static int8 with the x86 quantizer; returns (module, "") or (None, reason)."""
    from torchao.quantization.pt2e import (
        HistogramObserver,
        MinMaxObserver,
        allow_exported_model_train_eval,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import QuantizationConfig, QuantizationSpec
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )

    base = get_default_x86_inductor_quantization_config()
    observer = MinMaxObserver if cfg.calibration_method == "minmax" else HistogramObserver
    act = dataclasses.replace(base.input_activation, observer_or_fake_quant_ctr=observer.with_args(eps=2**-12))
    weight = base.weight  # per-channel symmetric int8
    if not cfg.per_channel:
        weight = QuantizationSpec(
            dtype=torch.int8,
            quant_min=-128,
            quant_max=127,
            qscheme=torch.per_tensor_symmetric,
            is_dynamic=False,
            observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=2**-12),
        )
    qconfig = QuantizationConfig(act, act, weight, None, False)

    example = (batch_for_export(calib, _CALIB_BATCH),)
    chunks = [c for c in torch.tensor_split(calib, max(1, -(-len(calib) // _CALIB_BATCH))) if len(c) >= 2]
    reasons: list[str] = []
    # strict=False traces most models; some (torchvision's resnets) only quantize cleanly from strict=True.
    for strict in (False, True):
        try:
            exported = torch.export.export(
                copy.deepcopy(model).eval(),
                example,
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                strict=strict,
            )
            prepared = prepare_pt2e(exported.module(), X86InductorQuantizer().set_global(qconfig))
            with torch.no_grad():
                for c in chunks or [example[0]]:
                    prepared(c)
            converted = convert_pt2e(prepared)
            _drop_unused_attributes_(converted)
            allow_exported_model_train_eval(converted)  # so that .eval() works like on any module
            _check_runs(converted, input_shape, model)
            return converted, ""
        except Exception as e:
            reasons.append(f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}")
    return None, "; ".join(reasons)


def _torchao_dynamic(model: nn.Module, input_shape: tuple[int, ...], per_channel: bool) -> tuple[nn.Module | None, str]:
    """torchao int8 dynamic-activation / int8-weight on every Linear; returns (module, "") or (None, reason)."""
    if not any(isinstance(m, nn.Linear) for _, m in weight_layers(model)):
        return None, "torchao's dynamic int8 quantizes Linear layers only, and this model has none"
    try:
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, PerRow, PerTensor, quantize_

        q = copy.deepcopy(model).eval()
        granularity = PerRow() if per_channel else PerTensor()
        # set_inductor_config=False: do not change process-wide torch._inductor settings behind the caller's back.
        quantize_(q, Int8DynamicActivationInt8WeightConfig(granularity=granularity, set_inductor_config=False))
        _check_runs(q, input_shape, model)
        return q, ""
    except Exception as e:
        return None, f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"


def _fp32_fallback_note(reason: str) -> str:
    return f"The PyTorch form is NOT quantized (fp32 copy): no PyTorch int8 form could be built ({reason}). The ONNX artifact is int8."
