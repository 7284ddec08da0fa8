"""The ONNX Runtime side of int8 quantization: calibration data, pre-processing, ``quantize_static`` /
``quantize_dynamic``, and the choice of the static artifact's activation type by timing.

Used by :mod:`lwdash.techniques.quantization` (and the calibration batch size by QAT).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from lwdash.techniques._common import batch_for_export, export_onnx_proto

if TYPE_CHECKING:
    import onnx

_CALIB_BATCH = 32


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
