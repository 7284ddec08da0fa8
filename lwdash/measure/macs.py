"""Multiply-accumulates (MACs) of one sample, counted from the ONNX graph.

Every model, baseline and compressed, is counted the same way, from the ONNX artifact that is
measured and downloaded: this covers plain, pruned, PT2E-quantized and ONNX-Runtime-built
artifacts (QDQ or QOperator) alike. torch-pruning's ``count_ops_and_params`` was not used as the
main counter because it also counts BatchNorm, activation and bias operations, so a graph with
BatchNorm folded (as PT2E conversion does) would look cheaper than the same network unfolded, and
it fails on exported / quantized graphs.

Counted (batch dimension fixed to 1, shapes from ``onnx.shape_inference``; where inference leaves
a shape unknown, the graph is run once in ONNX Runtime on a zero input to read it):

* ``Conv``, ``ConvInteger``, ``QLinearConv``: ``prod(Y.shape) * prod(W.shape[1:])``
* ``ConvTranspose``: ``prod(X.shape) * prod(W.shape[1:])``
* ``Gemm``: ``prod(Y.shape) * K``
* ``MatMul``, ``MatMulInteger``, ``QLinearMatMul``, com.microsoft ``MatMulNBits``: ``prod(Y.shape) * K``
  (``K`` = last dim of ``A``)

Other ops (activations, pooling, norms, additions) are not MACs and are not counted. MACs are a
dense count: zeros left by unstructured pruning do not reduce them (dense kernels still multiply
by zero), while structured pruning does (the tensors shrink).
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, shape_inference

__all__ = ["MacsError", "count_macs"]

_CONV_OPS = {"Conv": (0, 1), "ConvInteger": (0, 1), "QLinearConv": (0, 3)}  # op -> (X index, W index)
_MATMUL_OPS = {"MatMul": 0, "MatMulInteger": 0, "QLinearMatMul": 0, "MatMulNBits": 0}  # op -> A index


class MacsError(ValueError):
    """The ONNX graph could not be read or its shapes could not be determined."""


Shape = tuple[int, ...]


def _dims(tt: onnx.TypeProto.Tensor) -> Shape | None:
    if not tt.HasField("shape"):
        return None
    out: list[int] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            out.append(int(d.dim_value))
        else:
            return None
    return tuple(out)


def _fix_batch(model: onnx.ModelProto) -> int:
    """Set every graph input's symbolic dims to 1; returns the (static) batch size found."""
    init_names = {i.name for i in model.graph.initializer}
    batch = 1
    for inp in model.graph.input:
        if inp.name in init_names:
            continue
        for i, d in enumerate(inp.type.tensor_type.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                if i == 0:
                    batch = int(d.dim_value)
                continue
            d.Clear()
            d.dim_value = 1
    del model.graph.output[:]  # outputs are re-declared without fixed shapes below
    return batch


def _needed(node: onnx.NodeProto) -> list[str]:
    op = node.op_type
    if op in _CONV_OPS:
        return [node.output[0], node.input[_CONV_OPS[op][1]]]
    if op == "ConvTranspose":
        return [node.input[0], node.input[1]]
    if op == "Gemm":
        return [node.output[0], node.input[0]]
    if op in _MATMUL_OPS:
        return [node.output[0], node.input[_MATMUL_OPS[op]]]
    return []


def _node_macs(node: onnx.NodeProto, shapes: dict[str, Shape]) -> int:
    op = node.op_type
    if op in _CONV_OPS:
        y, w = shapes[node.output[0]], shapes[node.input[_CONV_OPS[op][1]]]
        return math.prod(y) * math.prod(w[1:])
    if op == "ConvTranspose":
        x, w = shapes[node.input[0]], shapes[node.input[1]]
        return math.prod(x) * math.prod(w[1:])
    if op == "Gemm":
        y, a = shapes[node.output[0]], shapes[node.input[0]]
        trans_a = any(att.name == "transA" and att.i for att in node.attribute)
        k = a[0] if trans_a else a[-1]
        return math.prod(y) * k
    if op in _MATMUL_OPS:
        y, a = shapes[node.output[0]], shapes[node.input[_MATMUL_OPS[op]]]
        return math.prod(y) * a[-1]
    return 0


def _shapes_by_inference(model: onnx.ModelProto) -> dict[str, Shape]:
    inferred = shape_inference.infer_shapes(model, data_prop=True)
    shapes: dict[str, Shape] = {}
    for init in inferred.graph.initializer:
        shapes[init.name] = tuple(int(d) for d in init.dims)
    for vi in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        if vi.type.HasField("tensor_type"):
            s = _dims(vi.type.tensor_type)
            if s is not None:
                shapes[vi.name] = s
    return shapes


_NP_OF_ONNX = {
    TensorProto.FLOAT: np.float32,
    TensorProto.FLOAT16: np.float16,
    TensorProto.DOUBLE: np.float64,
    TensorProto.INT64: np.int64,
    TensorProto.INT32: np.int32,
    TensorProto.UINT8: np.uint8,
    TensorProto.INT8: np.int8,
}


def _shapes_by_running(model: onnx.ModelProto, names: Iterable[str]) -> dict[str, Shape]:
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    existing = {o.name for o in probe.graph.output}
    for name in names:
        if name not in existing:
            probe.graph.output.append(onnx.ValueInfoProto(name=name))
    init_names = {i.name for i in probe.graph.initializer}
    feeds: dict[str, np.ndarray] = {}
    for inp in probe.graph.input:
        if inp.name in init_names:
            continue
        tt = inp.type.tensor_type
        shape = _dims(tt) or tuple(1 for _ in tt.shape.dim)
        feeds[inp.name] = np.zeros(shape, dtype=_NP_OF_ONNX.get(tt.elem_type, np.float32))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep the names
    sess = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    out_names = [o.name for o in sess.get_outputs()]
    values = sess.run(out_names, feeds)
    return {n: tuple(int(d) for d in np.shape(v)) for n, v in zip(out_names, values, strict=True)}


def count_macs(model: onnx.ModelProto | Path | str) -> int:
    """MACs for one sample of an ONNX model (see the module docstring for what is counted).

    Args:
        model: an ONNX model or the path of a self-contained ``.onnx`` file.

    Returns:
        Multiply-accumulates per sample (0 for a graph without Conv / Gemm / MatMul ops).

    Raises:
        MacsError: the file cannot be read, or a counted op's shapes cannot be determined.
    """
    try:
        proto = onnx.load(str(model)) if isinstance(model, (str, Path)) else model
    except Exception as e:  # onnx raises several types for unreadable files
        raise MacsError(f"cannot read ONNX model {model}: {e}") from e
    work = onnx.ModelProto()
    work.CopyFrom(proto)
    batch = _fix_batch(work)
    counted = [n for n in work.graph.node if _needed(n)]
    if not counted:
        return 0
    shapes: dict[str, Shape] = {}
    try:
        shapes = _shapes_by_inference(work)
    except Exception:  # shape inference rejects some contrib-op graphs; fall back to running it
        shapes = {}
    missing = sorted({name for n in counted for name in _needed(n) if name not in shapes})
    if missing:
        try:
            shapes.update(_shapes_by_running(work, missing))
        except Exception as e:
            raise MacsError(f"cannot determine the shapes of {', '.join(missing[:5])} to count MACs: {e}") from e
    init_shapes = {i.name: tuple(int(d) for d in i.dims) for i in work.graph.initializer}
    for k, v in init_shapes.items():
        shapes.setdefault(k, v)
    for n in counted:
        if n.op_type == "MatMulNBits":  # B is packed: read N and K from the attributes
            attrs = {a.name: a.i for a in n.attribute}
            a = shapes.get(n.input[0])
            if a is not None and "K" in attrs:
                shapes[n.input[0]] = (*a[:-1], int(attrs["K"]))
    total = sum(_node_macs(n, shapes) for n in counted)
    return int(total // max(batch, 1))
