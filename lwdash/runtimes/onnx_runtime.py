"""ONNX Runtime on the ONNX artifact: a CPU session, ``threads`` intra-op threads, default graph optimisation."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lwdash.runtimes.registry import Runner, Runtime, register_runtime

if TYPE_CHECKING:
    import onnxruntime as ort
    import torch

__all__ = ["ONNX_RUNTIME", "session_runner"]


def session_runner(session: ort.InferenceSession) -> Runner:
    """A :class:`Runner` of one ``session.run`` on the session's first input and output.

    ``prepare`` converts the batch to the input's float type once, outside the timed region, and
    raises ``ValueError`` when the model has a fixed batch size other than the batch's.
    """
    import numpy as np

    from lwdash.measure.accuracy import onnx_batch_runner

    _, fixed = onnx_batch_runner(session)
    inp = session.get_inputs()[0]
    out_name = session.get_outputs()[0].name
    dtype = np.float16 if inp.type == "tensor(float16)" else np.float32

    def prepare(x: torch.Tensor) -> dict[str, Any]:
        if fixed is not None and fixed != x.shape[0]:
            raise ValueError(f"the ONNX model has a fixed batch size of {fixed}; cannot time batch {x.shape[0]}")
        return {inp.name: x.detach().cpu().numpy().astype(dtype)}

    return Runner(run=lambda feed: session.run([out_name], feed), prepare=prepare)


def _load(artifact: Any, threads: int) -> Runner:
    from lwdash.measure.accuracy import make_session

    return session_runner(make_session(Path(artifact), threads))


ONNX_RUNTIME = register_runtime(Runtime(
    key="ort",
    title="ONNX Runtime",
    short="ORT",
    artifact="onnx",
    load=_load,
    description="one InferenceSession.run of the ONNX artifact on the CPU execution provider",
))
