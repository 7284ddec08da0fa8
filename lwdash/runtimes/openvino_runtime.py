"""OpenVINO on the ONNX artifact (fp32, QDQ int8, fp16): the CPU plugin, f32 precision, latency hint, one stream.

OpenVINO reads the ONNX file itself (``Core.read_model``); a QDQ int8 model runs as real int8
(U8S8 / S8S8 kernels), an fp16 model with its weights widened to f32. The CPU plugin computes
in bf16 by default on CPUs that have AVX512_BF16 or AMX, which would make an "fp32" figure a
bf16 one; so every compile pins ``INFERENCE_PRECISION_HINT`` to ``f32`` (int8 layers stay
int8), with ``PERFORMANCE_HINT=LATENCY``, ``INFERENCE_NUM_THREADS=threads`` and ``NUM_STREAMS=1``
(:func:`openvino_config`). Each batch is compiled for its static shape.

It is measured in a child process (``isolated``): a crash in the plugin fails that
measurement, not the job. Its download is the OpenVINO IR (``model.xml`` + ``model.bin``)
converted from the same ONNX file, weights kept in f32 (``compress_to_fp16=False``).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lwdash.runtimes.registry import Runner, Runtime, UnsupportedArtifact, register_runtime

if TYPE_CHECKING:
    import openvino as ov
    import torch

__all__ = ["OPENVINO", "compile_openvino", "openvino_config"]

_INSTALL = "pip install openvino"


def openvino_config(threads: int) -> dict[str, Any]:
    """The CPU plugin's properties for an honest, single-stream latency figure at ``threads`` threads."""
    return {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": int(threads), "NUM_STREAMS": 1}


def _read(path: Path) -> tuple[ov.Core, ov.Model]:
    import openvino as ov

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    core = ov.Core()
    try:
        return core, core.read_model(str(path))
    except RuntimeError as e:
        raise UnsupportedArtifact(f"OpenVINO cannot read this model: {_first_line(e)}") from None


def compile_openvino(path: Path, threads: int, *, batch: int | None = None) -> ov.CompiledModel:
    """``path`` (ONNX or IR ``.xml``) compiled for the CPU with :func:`openvino_config`.

    Args:
        path: the model file.
        threads: inference threads.
        batch: reshape the first input to this batch first (a static shape), or keep it as read.

    Raises:
        UnsupportedArtifact: OpenVINO cannot read, reshape or compile the model (one line).
    """
    core, model = _read(path)
    if batch is not None:
        shape = model.input(0).get_partial_shape()
        if shape.rank.is_static and len(shape) >= 1:
            dims = [batch if i == 0 else d for i, d in enumerate(shape)]
            try:
                model.reshape({model.input(0).get_any_name(): dims})
            except RuntimeError as e:
                raise UnsupportedArtifact(f"OpenVINO cannot reshape this model to batch {batch}: "
                                          f"{_first_line(e)}") from None
    try:
        return core.compile_model(model, "CPU", openvino_config(threads))
    except RuntimeError as e:
        raise UnsupportedArtifact(f"OpenVINO cannot compile this model: {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and not ln.strip().startswith(("Check ", "["))]
    return (lines or [type(e).__name__])[0][:300]


def _load(artifact: Any, threads: int) -> Runner:
    import numpy as np

    path = Path(artifact)
    compiled: list[Any] = []

    def prepare(x: torch.Tensor) -> Any:
        model = compile_openvino(path, threads, batch=int(x.shape[0]))
        compiled[:] = [model, model.create_infer_request()]
        etype = model.input(0).get_element_type().get_type_name()
        return x.detach().cpu().numpy().astype(np.float16 if etype == "f16" else np.float32)

    def run(feed: Any) -> Any:
        return compiled[1].infer({0: feed})

    return Runner(run=run, prepare=prepare)


def _available() -> str | None:
    return None if importlib.util.find_spec("openvino") else f"OpenVINO is not installed here ({_INSTALL})"


def _export(artifact: Any, out_dir: Path) -> dict[str, Path]:
    import openvino as ov

    out_dir = Path(out_dir)
    xml = out_dir / "model.xml"
    try:
        model = ov.convert_model(str(Path(artifact)))
    except Exception as e:  # the converter raises its own error types
        raise UnsupportedArtifact(f"OpenVINO cannot convert this model to IR: {_first_line(e)}") from None
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return {"model.xml": xml, "model.bin": xml.with_suffix(".bin")}


OPENVINO = register_runtime(Runtime(
    key="openvino",
    title="OpenVINO",
    short="OpenVINO",
    artifact="onnx",
    load=_load,
    imports=("openvino",),
    available=_available,
    engine="OpenVINO",
    fusion="on",
    isolated=True,
    export=_export,
    export_files=("model.xml", "model.bin"),
    caveat=("OpenVINO runs with INFERENCE_PRECISION_HINT=f32 (its CPU default is bf16 on CPUs with AVX512_BF16 or "
            "AMX); QDQ int8 layers still run as real int8."),
    description="the ONNX artifact compiled by OpenVINO's CPU plugin for each batch's static shape (f32 precision "
                "hint, latency hint, one stream)",
    how_to_run=('`c = openvino.Core().compile_model("model.xml", "CPU", {"INFERENCE_PRECISION_HINT": "f32"}); '
                'c(x)[c.output(0)]` (model.bin beside model.xml; `pip install openvino`)'),
))
