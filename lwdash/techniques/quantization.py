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
"""
from __future__ import annotations

import copy
import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from lwdash.techniques._common import (
    _seeded,
    batch_for_export,
    export_onnx_proto,
    layer_macs,
    no_layers_message,
    weight_layers,
)
from lwdash.techniques.base import UPLOADED_GRAPH_NOTE, CompressedModel, RunContext, TechniqueConfig, knob, register

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

EAGER_REFERENCE_NOTE = (
    "PyTorch eager runs int8 as reference quantize/dequantize ops: speed-up needs torch.compile or ONNX Runtime"
)
_CALIB_BATCH = 32


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
# ONNX Runtime side


def _calibration_reader(input_name: str, x: torch.Tensor) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class _SplitReader(CalibrationDataReader):  # type: ignore[misc]
        """Feeds the calibration samples in batches of about ``_CALIB_BATCH``."""

        def __init__(self) -> None:
            chunks = max(1, -(-len(x) // _CALIB_BATCH))
            self._batches = iter([c.numpy() for c in torch.tensor_split(x, chunks) if len(c)])

        def get_next(self) -> dict[str, Any] | None:
            b = next(self._batches, None)
            return None if b is None else {input_name: b}

    return _SplitReader()


def _preprocess(src: Path, dst: Path) -> tuple[Path, str | None]:
    """ONNX Runtime's recommended pre-processing (shape inference, fusions); falls back gracefully."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    for kwargs in ({}, {"skip_symbolic_shape": True}):
        try:
            quant_pre_process(str(src), str(dst), **kwargs)
            return dst, None
        except Exception:
            continue
    return src, "ONNX Runtime's quantization pre-processing failed on this model: quantized without it"


def _quantized_node_count(model: onnx.ModelProto) -> int:
    ops = {"QuantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "QLinearConv", "QLinearMatMul"}
    return sum(1 for n in model.graph.node if n.op_type in ops)


#: Activation type knob value -> ONNX Runtime's QuantType name and the format's short name.
_ACTIVATIONS = {"uint8": ("QUInt8", "U8S8"), "int8": ("QInt8", "S8S8")}


def _ort_quantize(
    module: nn.Module,
    input_shape: tuple[int, ...],
    *,
    static_calib: torch.Tensor | None,
    calibration_method: str = "minmax",
    per_channel: bool,
    op_types: list[str] | None = None,
    activations: str = "int8",
    fp32: onnx.ModelProto | None = None,
) -> tuple[onnx.ModelProto, list[str]]:
    """Export ``module`` to ONNX (unless ``fp32`` is that export) and quantize it with ONNX Runtime.

    Static QDQ with ``activations`` (``"uint8"`` or ``"int8"``) when ``static_calib`` is given, else dynamic.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

    notes: list[str] = []
    if fp32 is None:
        fp32 = export_onnx_proto(module, input_shape)
    with tempfile.TemporaryDirectory(prefix="lwdash-ortq-") as tmp:
        d = Path(tmp)
        onnx.save_model(fp32, str(d / "fp32.onnx"))
        src, note = _preprocess(d / "fp32.onnx", d / "pre.onnx")
        if note:
            notes.append(note)
        out = d / "int8.onnx"
        if static_calib is not None:
            method = {
                "minmax": CalibrationMethod.MinMax,
                "entropy": CalibrationMethod.Entropy,
                "percentile": CalibrationMethod.Percentile,
            }[calibration_method]
            quantize_static(
                str(src),
                str(out),
                _calibration_reader(fp32.graph.input[0].name, static_calib),
                quant_format=QuantFormat.QDQ,
                per_channel=per_channel,
                activation_type=getattr(QuantType, _ACTIVATIONS[activations][0]),
                weight_type=QuantType.QInt8,
                calibrate_method=method,
            )
        else:
            quantize_dynamic(
                str(src), str(out), op_types_to_quantize=op_types, per_channel=per_channel, weight_type=QuantType.QInt8
            )
        q = onnx.load_model(str(out))
    if _quantized_node_count(q) == 0:
        notes.append("ONNX Runtime found no operator to quantize in this model: the ONNX artifact is still fp32")
    return q, notes


def _choose_by_timing(
    candidates: dict[str, onnx.ModelProto], fp32: onnx.ModelProto, calib: torch.Tensor, runtime: str, threads: int
) -> tuple[str, str]:
    """The fastest candidate on ``runtime`` at batch 32 and the note that gives every timing (fp32's too).

    When the runtime cannot be timed here, the first candidate is kept and the note says why.
    """
    import onnx

    from lwdash.measure.runtime_timing import compare_artifacts
    from lwdash.runtimes import get_runtime

    title = get_runtime(runtime).title
    first = next(iter(candidates))
    with tempfile.TemporaryDirectory(prefix="lwdash-int8-choice-") as tmp:
        paths: dict[str, Path] = {}
        for name, proto in {"fp32": fp32, **candidates}.items():
            paths[name] = Path(tmp) / f"{name}.onnx"
            onnx.save_model(proto, str(paths[name]))
        try:
            ms = compare_artifacts(runtime, paths, batch_for_export(calib, _CALIB_BATCH), threads=threads)
        except RuntimeError as e:
            return first, (f"Activation type not measured ({e}): shipped {_ACTIVATIONS[first][1]}, the faster one "
                           f"in the measurements of docs/runtimes.md.")
    best = min(candidates, key=lambda a: ms[a])
    timings = ", ".join(f"{_ACTIVATIONS[a][1]} {ms[a]:.2f} ms" for a in candidates)
    note = (f"Activation type chosen by measurement on {title}, batch {_CALIB_BATCH}, this machine: {timings}, "
            f"fp32 {ms['fp32']:.2f} ms; shipped {_ACTIVATIONS[best][1]} ({ms['fp32'] / ms[best]:.2f}x fp32's speed).")
    if ms[best] >= ms["fp32"]:
        note += (f" Every int8 format ran slower than fp32 on {title} here: this model gains size, not speed, "
                 "from int8 on this runtime.")
    return best, note


# ---------------------------------------------------------------------------------------------
# PyTorch side


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


# ---------------------------------------------------------------------------------------------
# Quantization-aware training (PT2E)


@dataclass(frozen=True)
class Int8QatConfig(TechniqueConfig):
    """Quantization-aware training: int8 fake-quant fine-tuning on the training split, then convert (PT2E).

    The model is exported, fake-quantize nodes are inserted with PT2E's ``prepare_qat_pt2e`` and
    the x86 quantizer (per-channel int8 weights, uint8 activations with moving-average ranges),
    the weights and ranges are trained together, and ``convert_pt2e`` turns the result into an
    int8 graph. The ONNX artifact is that converted graph (QuantizeLinear/DequantizeLinear with
    the learned scales), which ONNX Runtime fuses into int8 kernels.
    """

    epochs: int = knob(2, ge=1, le=50, sweepable=True, help="Epochs of fake-quant training on the training split")
    lr: float = knob(
        1e-4, gt=0.0, le=1.0, label="Learning rate", help="Adam learning rate (small: the model is already trained)"
    )
    batch_size: int = knob(64, ge=2, le=4096, help="Training batch size")

    def validate_for(self, model: nn.Module, input_shape: tuple[int, ...]) -> None:
        """Reject models with no Conv/Linear layers (nothing for int8 kernels to run).

        Raises:
            ValueError: the model exposes no Conv/Linear layer modules.
        """
        del input_shape
        if not weight_layers(model):
            raise ValueError(no_layers_message("int8_qat", model))


def _qat_train_(prepared: nn.Module, ctx: RunContext, cfg: Int8QatConfig) -> float:
    """Train the fake-quant graph in place (train/eval switched with PT2E's helpers); returns the last loss."""
    from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train

    split = ctx.data.train
    if len(split) < 2:
        raise ValueError("int8_qat needs training samples, and the training split has fewer than 2")
    params = [p for p in prepared.parameters() if p.is_floating_point() and p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    gen = torch.Generator().manual_seed(ctx.seed)
    last = float("nan")
    with _seeded(ctx.seed), torch.enable_grad():
        move_exported_model_to_train(prepared)
        try:
            for epoch in range(cfg.epochs):
                order = torch.randperm(len(split), generator=gen)
                total, count = 0.0, 0
                for i in range(0, len(order), cfg.batch_size):
                    idx = order[i : i + cfg.batch_size]
                    if len(idx) < 2:  # the exported graph is specialized for batches of 2 or more
                        continue
                    opt.zero_grad(set_to_none=True)
                    loss = nn.functional.cross_entropy(prepared(split.x[idx]), split.y[idx])
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * len(idx)
                    count += len(idx)
                last = total / max(count, 1)
                ctx.progress(0.1 + 0.6 * (epoch + 1) / cfg.epochs, f"int8 QAT: epoch {epoch + 1}/{cfg.epochs}, loss {last:.4f}")
        finally:
            move_exported_model_to_eval(prepared)
    return last


_WHEN_INT8_QAT = (
    "When static int8 loses too much accuracy: the int8 rounding is simulated during fine-tuning, so the "
    "weights learn to tolerate it. Costs training time; the deployed model is the same kind of int8 graph "
    "as static int8."
)


@register(
    "int8_qat", Int8QatConfig, family="quantization", title="Quantization-aware training (int8)",
    when=_WHEN_INT8_QAT,
)
def apply_int8_qat(model: nn.Module, cfg: Int8QatConfig, ctx: RunContext) -> CompressedModel:
    """PT2E QAT: export, insert fake-quant, train on the training split, convert to int8, export to ONNX.

    Args:
        model: fp32 classifier (not mutated).
        cfg: epochs, learning rate and batch size of the fake-quant training.
        ctx: data (training split; a calibration batch traces the graph), seed, progress.

    Returns:
        The converted PT2E int8 module and its ONNX (QDQ) export.

    Raises:
        ValueError: no Conv/Linear layers, or the model cannot be exported/prepared for QAT
            (the message gives PT2E's reason).
    """
    from torchao.quantization.pt2e import allow_exported_model_train_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )

    cfg.validate_for(model, ctx.input_shape)
    if len(ctx.data.calib) == 0 and len(ctx.data.train) == 0:
        raise ValueError("int8_qat needs training samples, and the data set has none")
    source = ctx.data.calib.x if len(ctx.data.calib) else ctx.data.train.x
    example = (batch_for_export(source, _CALIB_BATCH),)
    quantizer = X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config(is_qat=True))
    ctx.progress(0.0, "int8 QAT: exporting and inserting fake-quant")
    reasons: list[str] = []
    prepared = None
    for strict in (False, True):
        try:
            exported = torch.export.export(
                copy.deepcopy(model).eval(), example, dynamic_shapes=({0: torch.export.Dim("batch")},), strict=strict
            )
            prepared = prepare_qat_pt2e(exported.module(), quantizer)
            break
        except Exception as e:
            reasons.append(f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}")
    if prepared is None:
        raise ValueError(f"int8_qat could not export or prepare this model for QAT ({'; '.join(reasons)})")

    loss = _qat_train_(prepared, ctx, cfg)
    ctx.progress(0.75, "int8 QAT: converting to int8")
    converted = convert_pt2e(prepared)
    _drop_unused_attributes_(converted)
    allow_exported_model_train_eval(converted)
    converted.eval()
    _check_runs(converted, ctx.input_shape, model)

    ctx.progress(0.85, "int8 QAT: exporting the converted graph to ONNX")
    try:
        onnx_model = export_onnx_proto(converted, ctx.input_shape)
    except Exception as e:
        raise ValueError(f"int8_qat: the converted int8 model did not export to ONNX ({type(e).__name__}: {e})") from e
    notes = [
        f"Trained {cfg.epochs} epoch(s) with int8 fake-quant on the training split (last loss {loss:.4f}), "
        "then converted with PT2E; the ONNX artifact is the converted graph with the learned scales.",
        EAGER_REFERENCE_NOTE,
    ]
    if _quantized_node_count(onnx_model) == 0:
        notes.append("The exported ONNX graph has no QuantizeLinear nodes: the artifact is NOT int8")
    ctx.progress(1.0, "int8 QAT: done")
    return CompressedModel(module=converted, onnx_model=onnx_model, notes=tuple(notes))
