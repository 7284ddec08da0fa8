"""Feeding an ONNX Runtime session: a batch runner on its first input and output, and its fixed batch size.

Shared by accuracy (:mod:`lwdash.measure.accuracy`) and the ONNX Runtime latency rows
(:mod:`lwdash.runtimes.onnx_runtime`); imports no ONNX Runtime itself (it takes a session).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import onnxruntime as ort
    import torch

__all__ = ["onnx_batch_runner"]

_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
}


def onnx_batch_runner(session: ort.InferenceSession) -> tuple[Any, int | None]:
    """A ``run(x: torch.Tensor) -> np.ndarray`` for the session's first input and output, and the
    session's fixed batch size (None when the batch dimension is dynamic)."""
    inp = session.get_inputs()[0]
    out_name = session.get_outputs()[0].name
    dtype = _ORT_DTYPES.get(inp.type)
    if dtype is None:
        raise ValueError(f"the ONNX model's input {inp.name!r} has type {inp.type}; lwdash feeds float tensors")
    dim0 = inp.shape[0] if inp.shape else None
    fixed = int(dim0) if isinstance(dim0, int) and dim0 > 0 else None

    def run(x: torch.Tensor) -> np.ndarray:
        feed = x.detach().cpu().numpy().astype(dtype, copy=False)
        return np.asarray(session.run([out_name], {inp.name: feed})[0])

    return run, fixed
