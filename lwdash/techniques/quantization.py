"""Post-training int8 quantization, static (calibrated) and dynamic.

Each technique builds two real artifacts:

- the **ONNX** artifact with ONNX Runtime's quantizer (``quant_pre_process`` then
  ``quantize_static`` in QDQ format, or ``quantize_dynamic``), the runtime in which int8 is fast
  on this kind of CPU;
- the **PyTorch** form: PT2E (``torch.export`` -> ``prepare_pt2e`` with ``X86InductorQuantizer``
  -> calibration -> ``convert_pt2e``) for static int8, torchao's ``quantize_`` with
  ``Int8DynamicActivationInt8WeightConfig`` for dynamic int8. Both store int8 weights, but eager
  PyTorch runs them without fused int8 kernels, which the notes say.

Where no PyTorch quantized form can be built for a model, the fp32 module is returned as the
PyTorch form and a note says so; the ONNX artifact is quantized either way.

Which activation type the static QDQ artifact uses is measured, not assumed: with
``activations="auto"`` (the default) both U8S8 (uint8 activations, int8 weights) and S8S8 are
built, each is timed against the fp32 model on the target runtime (``target_runtime``: ONNX
Runtime or OpenVINO) at batch 32 on this CPU, in interleaved rounds, and the faster one is
shipped; the note gives the three figures. ONNX Runtime's S8S8 QDQ kernels ran 0.7x of fp32 on
torchvision resnet18 here while U8S8 ran 1.6x (docs/runtimes.md).

The ONNX Runtime side lives in :mod:`lwdash.techniques.quantization_ort`, the PyTorch side in
:mod:`lwdash.techniques.quantization_torch`; quantization-aware training (``int8_qat``) is
:mod:`lwdash.techniques.qat`, re-exported here.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from torch import nn

from lwdash.techniques._common import export_onnx_proto as export_onnx_proto  # kept importable here: tests patch it
from lwdash.techniques._common import layer_macs, no_layers_message, weight_layers
from lwdash.techniques.base import UPLOADED_GRAPH_NOTE, CompressedModel, RunContext, TechniqueConfig, knob, register
from lwdash.techniques.qat import Int8QatConfig, apply_int8_qat
from lwdash.techniques.quantization_ort import _ACTIVATIONS, _choose_by_timing, _ort_quantize
from lwdash.techniques.quantization_ort import _calibration_reader as _calibration_reader
from lwdash.techniques.quantization_torch import (
    EAGER_REFERENCE_NOTE,
    _fp32_fallback_note,
    _pt2e_static,
    _torchao_dynamic,
)

if TYPE_CHECKING:
    import onnx

__all__ = [
    "EAGER_REFERENCE_NOTE",
    "Int8DynamicConfig",
    "Int8QatConfig",
    "Int8StaticConfig",
    "apply_int8_dynamic",
    "apply_int8_qat",
    "apply_int8_static",
]


@dataclass(frozen=True)
class Int8StaticConfig(TechniqueConfig):
    """Static int8 post-training quantization of weights and activations, calibrated on real samples.

    Activation ranges are fixed ahead of time from the calibration split, so inference needs no
    range computation: the fastest int8 path for convolutional networks on CPU.
    """

    calibration_method: Literal["minmax", "entropy", "percentile"] = knob(
        "minmax",
        help="How activation ranges are chosen: observed min/max, KL-divergence (entropy), or the 99.999th percentile",
    )
    per_channel: bool = knob(True, help="One weight scale per output channel (usually more accurate) instead of per tensor")
    calibration_samples: int = knob(
        128, ge=8, le=2048, step=8, help="Calibration-split samples run through the model to fix activation ranges"
    )
    activations: Literal["auto", "uint8", "int8"] = knob(
        "auto",
        help="Activation type of the int8 ONNX artifact. auto: build uint8 (U8S8) and int8 (S8S8), time both against "
             "fp32 on the target runtime at batch 32 on this machine, ship the faster; uint8 / int8: that one, untimed",
        stored_default="int8",
        since=3,
    )
    target_runtime: Literal["ort", "openvino"] = knob(
        "ort",
        help="The runtime the int8 artifact is shipped for: where activations=auto times its candidates "
             "(ort: ONNX Runtime with fusion on; openvino: OpenVINO's CPU plugin)",
        since=3,
    )

    def validate_for(self, model: nn.Module, input_shape: tuple[int, ...]) -> None:
        """Reject models with no Conv/Linear layers (nothing for int8 kernels to run).

        Raises:
            ValueError: the model exposes no Conv/Linear layer modules.
        """
        del input_shape
        if not weight_layers(model):
            raise ValueError(no_layers_message("int8_static", model))


@dataclass(frozen=True)
class Int8DynamicConfig(TechniqueConfig):
    """Dynamic int8 quantization: int8 weights, activations quantized on the fly at run time.

    No calibration. Fast for Linear-heavy models; ONNX Runtime's dynamic int8 convolutions are
    usually slower than fp32 on CPU, so only Linear (MatMul/Gemm) layers are quantized by default.
    """

    per_channel: bool = knob(False, help="One weight scale per output channel instead of per tensor")
    op_types: Literal["linear_only", "all"] = knob(
        "linear_only",
        help="Quantize Linear (MatMul/Gemm) layers only, or every op ONNX Runtime can quantize dynamically (convolutions too)",
    )

    def validate_for(self, model: nn.Module, input_shape: tuple[int, ...]) -> None:
        """Reject configs that would quantize nothing.

        Raises:
            ValueError: ``op_types="linear_only"`` on a model without Linear layers, or a model
                with no Conv/Linear layers at all.
        """
        del input_shape
        layers = weight_layers(model)
        if not layers:
            raise ValueError(no_layers_message("int8_dynamic", model))
        if self.op_types == "linear_only" and not any(isinstance(m, nn.Linear) for _, m in layers):
            raise ValueError(
                "int8_dynamic with op_types='linear_only' needs Linear layers, and this model has none "
                f"(it has {len(layers)} convolution layer(s)); use int8_static for convolutional models, "
                "or op_types='all' (ONNX Runtime's dynamic int8 convolutions are usually slower than fp32)"
            )


# ---------------------------------------------------------------------------------------------
# Registered techniques


_WHEN_INT8_STATIC = (
    "The first thing to try on a convolutional network for CPU deployment: int8 weights and activations, "
    "calibrated on real samples, usually the largest speed-up on OpenVINO and ONNX Runtime (see the "
    "result's latency matrix). If it costs too much accuracy, try quantization-aware training."
)


@register(
    "int8_static", Int8StaticConfig, family="quantization", title="Static int8 (calibrated)",
    when=_WHEN_INT8_STATIC,
)
def apply_int8_static(model: nn.Module, cfg: Int8StaticConfig, ctx: RunContext) -> CompressedModel:
    """Static int8: ONNX Runtime QDQ artifact plus a PT2E int8 PyTorch form, both calibrated on the same samples.

    Args:
        model: fp32 classifier (not mutated).
        cfg: calibration method, per-channel weights, number of calibration samples.
        ctx: data (calibration split), progress.

    Returns:
        The PyTorch form (PT2E int8 ``GraphModule``, or the fp32 copy with a note) and the int8 ONNX model.

    Raises:
        ValueError: the model has no Conv/Linear layers, or the calibration split is empty.
    """
    cfg.validate_for(model, ctx.input_shape)
    available = len(ctx.data.calib)
    if available == 0:
        raise ValueError("int8_static needs calibration samples, and the calibration split is empty")
    n = min(cfg.calibration_samples, available)
    calib = ctx.data.calib.x[:n].clone()
    fp32 = copy.deepcopy(model).eval()
    notes: list[str] = []
    if n < cfg.calibration_samples:
        notes.append(f"Calibrated on {n} samples: the calibration split has only {n} (asked for {cfg.calibration_samples}).")

    ctx.progress(0.0, "int8 static: exporting to ONNX and calibrating in ONNX Runtime")
    fp32_onnx, uploaded = ctx.input_onnx(fp32)
    if uploaded:
        notes.append(UPLOADED_GRAPH_NOTE)
    kinds = ("uint8", "int8") if cfg.activations == "auto" else (cfg.activations,)
    built: dict[str, onnx.ModelProto] = {}
    for kind in kinds:
        built[kind], ort_notes = _ort_quantize(
            fp32,
            ctx.input_shape,
            static_calib=calib,
            calibration_method=cfg.calibration_method,
            per_channel=cfg.per_channel,
            activations=kind,
            fp32=fp32_onnx,
        )
    notes += ort_notes
    chosen = kinds[0]
    if len(built) > 1:
        ctx.progress(0.3, f"int8 static: timing {' and '.join(_ACTIVATIONS[k][1] for k in kinds)} against fp32")
        chosen, choice_note = _choose_by_timing(built, fp32_onnx, calib, cfg.target_runtime, ctx.threads)
        notes.append(choice_note)
    else:
        notes.append(f"Activation type {_ACTIVATIONS[chosen][1]} as configured (activations={chosen}), not timed.")
    onnx_model = built[chosen]
    ctx.progress(0.5, "int8 static: PT2E quantization of the PyTorch form")
    module, reason = _pt2e_static(fp32, calib, ctx.input_shape, cfg)
    if module is None:
        notes.append(_fp32_fallback_note(reason))
        module = fp32
    else:
        notes.append(EAGER_REFERENCE_NOTE)
        if cfg.calibration_method != "minmax":
            notes.append(
                f"The PyTorch form is calibrated with a histogram observer (PyTorch has no {cfg.calibration_method} "
                f"calibrator); the ONNX artifact uses {cfg.calibration_method} calibration."
            )
    ctx.progress(1.0, "int8 static: done")
    return CompressedModel(module=module, onnx_model=onnx_model, notes=tuple(notes))


_WHEN_INT8_DYNAMIC = (
    "For Linear-heavy models (MLPs, transformers) when no calibration data is at hand: Linear weights in "
    "int8, activations quantized at run time. For convnets, static int8 is faster."
)


@register("int8_dynamic", Int8DynamicConfig, family="quantization", title="Dynamic int8", when=_WHEN_INT8_DYNAMIC)
def apply_int8_dynamic(model: nn.Module, cfg: Int8DynamicConfig, ctx: RunContext) -> CompressedModel:
    """Dynamic int8: ONNX Runtime ``quantize_dynamic`` artifact plus a torchao int8 PyTorch form.

    Args:
        model: fp32 classifier (not mutated).
        cfg: per-channel weights, which op types to quantize.
        ctx: data (for the input shape), progress.

    Returns:
        The PyTorch form (torchao int8 Linear layers, or the fp32 copy with a note) and the int8 ONNX model.

    Raises:
        ValueError: the config cannot quantize anything in this model (see :meth:`Int8DynamicConfig.validate_for`).
    """
    cfg.validate_for(model, ctx.input_shape)
    fp32 = copy.deepcopy(model).eval()
    notes: list[str] = []
    macs = layer_macs(fp32, ctx.input_shape)
    total = sum(r.macs for r in macs)
    conv_share = sum(r.macs for r in macs if r.kind == "conv") / total if total else 0.0
    if cfg.op_types == "linear_only" and conv_share > 0.5:
        notes.append(
            f"Convolutions carry {conv_share:.1%} of this model's MACs and stay fp32 (op_types='linear_only'): "
            "expect little speed-up; int8_static quantizes convolutions too."
        )
    if cfg.op_types == "all" and conv_share > 0:
        notes.append(
            "ONNX Runtime's dynamic int8 convolutions (ConvInteger) are usually several times slower than fp32 on CPU; "
            "int8_static is the fast int8 path for convolutions."
        )

    ctx.progress(0.0, "int8 dynamic: exporting to ONNX and quantizing in ONNX Runtime")
    fp32_onnx, uploaded = ctx.input_onnx(fp32)
    if uploaded:
        notes.append(UPLOADED_GRAPH_NOTE)
    onnx_model, ort_notes = _ort_quantize(
        fp32,
        ctx.input_shape,
        static_calib=None,
        per_channel=cfg.per_channel,
        op_types=["MatMul", "Gemm"] if cfg.op_types == "linear_only" else None,
        fp32=fp32_onnx,
    )
    notes += ort_notes
    ctx.progress(0.6, "int8 dynamic: torchao quantization of the PyTorch form")
    module, reason = _torchao_dynamic(fp32, ctx.input_shape, cfg.per_channel)
    if module is None:
        notes.append(_fp32_fallback_note(reason))
        module = fp32
    else:
        notes.append(
            "PyTorch eager runs torchao's int8 Linear layers without fused kernels (often slower than fp32): "
            "speed-up needs torch.compile or ONNX Runtime"
        )
        if cfg.op_types == "all" and conv_share > 0:
            notes.append("The PyTorch form quantizes Linear layers only (torchao); its convolutions stay fp32.")
    ctx.progress(1.0, "int8 dynamic: done")
    return CompressedModel(module=module, onnx_model=onnx_model, notes=tuple(notes))
