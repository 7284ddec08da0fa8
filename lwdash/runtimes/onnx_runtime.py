"""ONNX Runtime on the ONNX artifact: a CPU session at ``threads`` intra-op threads, graph optimisation on or off.

Two entries of one engine, so the latency matrix shows what layer fusion buys:

- ``ort``: ``ORT_ENABLE_ALL`` (ONNX Runtime's default): constant folding, Conv+BN/ReLU fusion,
  and for QDQ int8 models the DequantizeLinear -> op -> QuantizeLinear groups replaced by real
  int8 kernels (QLinearConv, QGemm);
- ``ort_nofusion``: ``ORT_DISABLE_ALL``: every node runs as written, so a QDQ int8 model runs as
  fake quantization (DequantizeLinear -> fp32 Conv -> QuantizeLinear).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lwdash.runtimes.registry import Runner, Runtime, register_runtime

if TYPE_CHECKING:
    import onnxruntime as ort
    import torch

__all__ = ["ONNX_RUNTIME", "ONNX_RUNTIME_NO_FUSION", "make_ort_session", "session_runner"]

#: Shown under the latency matrix: what the fusion-off row means for a QDQ int8 model.
FAKE_QUANT_CAVEAT = ("ONNX Runtime with fusion off runs a QDQ int8 model as fake quantization (DequantizeLinear -> "
                     "fp32 op -> QuantizeLinear, no int8 kernels): its int8 rows show the cost of the quantize "
                     "nodes, not int8 speed.")
_HOW_TO_RUN = ('`s = onnxruntime.InferenceSession("model.onnx"); s.run(None, {s.get_inputs()[0].name: x})` '
               "(x: float32 numpy (B, *input_shape))")


def make_ort_session(path: Path, threads: int, *, fusion: bool = True,
                     optimized_model_path: Path | None = None) -> ort.InferenceSession:
    """A CPU session with ``threads`` intra-op threads, one inter-op thread, ORT_ENABLE_ALL or ORT_DISABLE_ALL.

    Args:
        path: the ONNX file.
        threads: intra-op threads.
        fusion: graph optimisation on (``ORT_ENABLE_ALL``) or off (``ORT_DISABLE_ALL``).
        optimized_model_path: also write the graph ONNX Runtime runs (after its optimisation) there,
            to see which kernels fusion chose (e.g. QLinearConv for a QDQ pair).

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX file not found: {path}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if fusion
                                     else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    opts.log_severity_level = 3  # errors only
    if optimized_model_path is not None:
        opts.optimized_model_filepath = str(optimized_model_path)
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def session_runner(session: ort.InferenceSession) -> Runner:
    """A :class:`Runner` of one ``session.run`` on the session's first input and output.

    ``prepare`` converts the batch to the input's float type once, outside the timed region, and
    raises ``ValueError`` when the model has a fixed batch size other than the batch's.
    """
    import numpy as np

    from lwdash.measure.ort_io import onnx_batch_runner

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
    return session_runner(make_ort_session(Path(artifact), threads, fusion=True))


def _load_no_fusion(artifact: Any, threads: int) -> Runner:
    return session_runner(make_ort_session(Path(artifact), threads, fusion=False))


ONNX_RUNTIME = register_runtime(Runtime(
    key="ort",
    title="ONNX Runtime",
    short="ORT",
    artifact="onnx",
    load=_load,
    imports=("onnxruntime",),
    engine="ONNX Runtime",
    fusion="on",
    description="one InferenceSession.run of the ONNX artifact on the CPU execution provider, ORT_ENABLE_ALL",
    how_to_run=_HOW_TO_RUN,
))

ONNX_RUNTIME_NO_FUSION = register_runtime(Runtime(
    key="ort_nofusion",
    title="ONNX Runtime, fusion off",
    short="ORT no-fusion",
    artifact="onnx",
    load=_load_no_fusion,
    imports=("onnxruntime",),
    engine="ONNX Runtime",
    fusion="off",
    caveat=FAKE_QUANT_CAVEAT,
    description="the same session with graph optimisation off (ORT_DISABLE_ALL): no layer fusion",
    how_to_run=_HOW_TO_RUN + (", with `SessionOptions().graph_optimization_level = "
                              "onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL`"),
))
