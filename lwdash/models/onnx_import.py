"""Loading an uploaded ONNX file: reading and checking the graph, its input shape, the conversion to PyTorch.

The conversion itself is in :mod:`lwdash.models.onnx_convert`; the entry point for every format is
:func:`lwdash.models.loading.load_model_file`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from lwdash.models._loadutil import ACCEPTED_FORMATS, fmt_shape, reason, to_fp32, verify
from lwdash.models.base import LoadedModel, ModelLoadError
from lwdash.models.onnx_convert import convert_onnx, mark_flattens

__all__ = ["load_onnx"]


def _onnx_uses_external_data(model: Any) -> bool:
    import onnx

    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                tensors.append(attr.t)
    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in tensors)


def _onnx_dims(value_info: Any) -> list[int | str | None]:
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return []
    dims: list[int | str | None] = []
    for d in tensor_type.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param") and d.dim_param:
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return dims


def load_onnx(path: Path, name: str, input_shape: tuple[int, ...] | None, recognised: bool) -> LoadedModel:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        if recognised or path.suffix.lower() == ".onnx":
            raise ModelLoadError(
                f"could not read {name} as ONNX: {reason(exc)}; accepted formats: {ACCEPTED_FORMATS}"
            ) from exc
        raise ModelLoadError(
            f"could not recognise {name} as a model file: it is not a zip archive (TorchScript, torch.export "
            f".pt2, torch.save), not safetensors, not a pickle, and reading it as ONNX failed: {reason(exc)}; "
            f"accepted formats: {ACCEPTED_FORMATS}"
        ) from exc
    if not model.HasField("graph") or len(model.graph.node) == 0:
        raise ModelLoadError(
            f"could not read {name} as ONNX: it holds no graph (truncated, or not an ONNX file); "
            f"accepted formats: {ACCEPTED_FORMATS}"
        )
    if _onnx_uses_external_data(model):
        raise ModelLoadError(
            f"{name} keeps its weights in a separate external-data file, which is not accepted; save the model "
            "as one self-contained file (torch.onnx.export(..., external_data=False) or "
            "onnx.save_model(model, path, save_as_external_data=False))"
        )
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # ValidationError, InferenceError
        raise ModelLoadError(
            f"could not read {name} as ONNX: the model is not valid: {reason(exc)}; accepted formats: {ACCEPTED_FORMATS}"
        ) from exc

    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ModelLoadError(
            f"{name} has {len(inputs)} graph inputs ({', '.join(i.name for i in inputs)}); lwdash accepts "
            "classifiers with exactly one image or feature tensor input"
        )
    elem_type = inputs[0].type.tensor_type.elem_type
    if elem_type != onnx.TensorProto.FLOAT:
        raise ModelLoadError(
            f"{name} takes {onnx.TensorProto.DataType.Name(elem_type)} input; lwdash accepts models with a "
            "float32 input tensor"
        )
    dims = _onnx_dims(inputs[0])
    shape = _onnx_input_shape(name, dims, input_shape)

    expected_classes: int | None = None
    if model.graph.output:
        out_dims = _onnx_dims(model.graph.output[0])
        if len(out_dims) == 2 and isinstance(out_dims[1], int):
            expected_classes = out_dims[1]
    module = convert_onnx(model, name)
    module = to_fp32(module).eval()
    mark_flattens(module, shape)
    num_classes = verify(module, shape, name, expected_classes)
    graph = model if dims and not isinstance(dims[0], int) and _ort_reproduces(model, module, shape) else None
    return LoadedModel(module=module, input_shape=shape, num_classes=num_classes, source_format="onnx", arch=None,
                       onnx_graph=graph)


def _ort_reproduces(model: Any, module: nn.Module, shape: tuple[int, ...]) -> bool:
    """Whether ONNX Runtime runs the uploaded graph with the outputs of its PyTorch conversion (3 random samples)."""
    import numpy as np
    import onnxruntime as ort

    x = torch.randn((3, *shape), generator=torch.Generator().manual_seed(0))
    try:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        with torch.no_grad():
            want = module(x).numpy()
    except Exception:  # ONNX Runtime cannot run it: the baseline and techniques use the re-export
        return False
    return bool(got.shape == want.shape and np.allclose(got, want, rtol=1e-3, atol=1e-4))


def _onnx_input_shape(name: str, dims: list[int | str | None], input_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    if not dims:
        if input_shape is None:
            raise ModelLoadError(
                f"{name} does not declare the shape of its input; give input_shape (per sample, e.g. (1, 8, 8))"
            )
        return input_shape
    if len(dims) < 2:
        raise ModelLoadError(
            f"{name} takes a rank-{len(dims)} input; lwdash accepts (batch, ...) inputs such as (batch, 1, 8, 8)"
        )
    per_sample = dims[1:]
    if input_shape is not None:
        if len(input_shape) != len(per_sample) or any(
            isinstance(d, int) and d != s for d, s in zip(per_sample, input_shape, strict=False)
        ):
            raise ModelLoadError(
                f"{name} declares input (batch, {', '.join(str(d) for d in per_sample)}) but input_shape "
                f"{fmt_shape(input_shape)} was given"
            )
        return input_shape
    symbolic = [(i + 1, d) for i, d in enumerate(per_sample) if not isinstance(d, int)]
    if symbolic:
        where = ", ".join(f"dim {i} ({d!r})" if d else f"dim {i}" for i, d in symbolic)
        raise ModelLoadError(
            f"{name} has a symbolic input size in {where}; only the batch dim (dim 0) may be dynamic. Export it "
            "with a fixed per-sample shape, or give input_shape (per sample, e.g. (3, 224, 224))"
        )
    return tuple(int(d) for d in per_sample)  # type: ignore[arg-type]
