"""ONNX graph edits for reduced precision: fp16 conversion, bf16 weight storage, int8 and int4 weight-only.

Each function takes the fp32 export and returns a new graph (the input is copied, never edited).
Used by :mod:`lwdash.techniques.precision` and :mod:`lwdash.techniques.weight_only`.
"""
from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    import onnx

_ONNX_NORM_OPS: tuple[str, ...] = (
    "BatchNormalization",
    "LayerNormalization",
    "GroupNormalization",
    "InstanceNormalization",
)


def _export_fp32_onnx(model: nn.Module, input_shape: tuple[int, ...]) -> onnx.ModelProto:
    """The fp32 ONNX export of a copy of ``model`` (dynamic batch), with the runner's exporter."""
    from lwdash.techniques._common import export_onnx_proto

    return export_onnx_proto(copy.deepcopy(model).eval(), tuple(input_shape))


def _initializers(model: onnx.ModelProto) -> dict[str, Any]:
    return {init.name: init for init in model.graph.initializer}


def _consumers(model: onnx.ModelProto) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            out.setdefault(name, []).append(node)
    return out


def _replace_initializer_with_nodes(
    model: onnx.ModelProto, name: str, new_inits: list[Any], nodes: list[Any]
) -> None:
    """Drop initializer ``name`` and produce a tensor of the same name from ``nodes`` instead.

    The producing nodes are put first in the graph (their inputs are all initializers), so
    the graph stays topologically sorted and every consumer is left untouched.
    """
    keep = [i for i in model.graph.initializer if i.name != name]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep + new_inits)
    inputs = [i for i in model.graph.input if i.name != name]  # old IRs list initializers as inputs
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    existing = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes + existing)


def _fp16_onnx(fp32: onnx.ModelProto, keep_norms_fp32: bool) -> onnx.ModelProto:
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    block = list(DEFAULT_OP_BLOCK_LIST) + (list(_ONNX_NORM_OPS) if keep_norms_fp32 else [])
    with _quiet_loggers("onnxruntime.transformers.float16"):
        out: onnx.ModelProto = convert_float_to_float16(copy.deepcopy(fp32), keep_io_types=True, op_block_list=block)
    return out


def _bf16_weight_storage_onnx(fp32: onnx.ModelProto, keep_norms_fp32: bool) -> tuple[onnx.ModelProto, int]:
    """Store float32 initializers as bfloat16, each followed by a Cast back to float32.

    ONNX Runtime's CPU provider has no bfloat16 MatMul, Gemm or Conv kernels (and ONNX has no
    bf16 Conv at all), so a bf16-compute graph does not run there; this keeps the bf16 bytes
    and the bf16-rounded weights, and computes in float32.

    Returns:
        The new model and the number of initializers stored as bfloat16.
    """
    from onnx import TensorProto, helper, numpy_helper

    model = copy.deepcopy(fp32)
    consumers = _consumers(model)
    blocked = set(_ONNX_NORM_OPS) if keep_norms_fp32 else set()
    converted = 0
    for init in list(model.graph.initializer):
        if init.data_type != TensorProto.FLOAT:
            continue
        users = consumers.get(init.name, [])
        if not users or any(u.op_type in blocked for u in users):
            continue
        arr = numpy_helper.to_array(init)
        if arr.size < 2:
            continue
        bits = torch.from_numpy(np.array(arr, dtype=np.float32, copy=True)).to(torch.bfloat16).view(torch.int16).numpy()
        stored = helper.make_tensor(
            f"{init.name}__bf16", TensorProto.BFLOAT16, list(arr.shape), bits.tobytes(), raw=True
        )
        cast = helper.make_node(
            "Cast", [stored.name], [init.name], to=TensorProto.FLOAT, name=f"{init.name}__to_fp32"
        )
        _replace_initializer_with_nodes(model, init.name, [stored], [cast])
        converted += 1
    return model, converted


@dataclass(frozen=True)
class _WeightSite:
    """Where one Linear weight sits in the ONNX graph.

    Attributes:
        fqn: the Linear's qualified name in the PyTorch module.
        init_name: the initializer holding the weight.
        out_axis: axis of the initializer that indexes output features (0: ``(N, K)``, 1: ``(K, N)``).
    """

    fqn: str
    init_name: str
    out_axis: int


def _locate_weights(model: onnx.ModelProto, weights: dict[str, np.ndarray]) -> dict[str, _WeightSite]:
    """Find each Linear weight ``(N, K)`` among the Gemm/MatMul weight initializers, by value.

    Matching by value, not by name, keeps this independent of how the exporter names tensors.
    """
    from onnx import helper, numpy_helper

    inits = _initializers(model)
    found: dict[str, _WeightSite] = {}
    for node in model.graph.node:
        if node.op_type not in ("Gemm", "MatMul") or len(node.input) < 2 or node.input[1] not in inits:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        b = numpy_helper.to_array(inits[node.input[1]])
        if b.ndim != 2:
            continue
        trans_b = node.op_type == "Gemm" and int(attrs.get("transB", 0)) == 1
        for fqn, w in weights.items():
            if fqn in found:
                continue
            candidate = w if trans_b else w.T
            if candidate.shape == b.shape and np.array_equal(candidate, b):
                found[fqn] = _WeightSite(fqn, node.input[1], 0 if trans_b else 1)
                break
    return found


def _int8_weight_only_onnx(
    fp32: onnx.ModelProto, quantized: dict[str, tuple[np.ndarray, np.ndarray]], weights: dict[str, np.ndarray]
) -> tuple[onnx.ModelProto, list[str]]:
    """Replace each quantized Linear weight by an int8 initializer and a per-row ``DequantizeLinear``.

    Args:
        fp32: the fp32 export.
        quantized: per Linear fqn, torchao's int8 values ``(N, K)`` and scales ``(N,)``.
        weights: per Linear fqn, the original fp32 weight ``(N, K)``, to find it in the graph.

    Returns:
        The new model and the fqns whose weight could not be found in the graph (left fp32).
    """
    from onnx import helper, numpy_helper

    model = copy.deepcopy(fp32)
    sites = _locate_weights(model, weights)
    for fqn, site in sites.items():
        q, scale = quantized[fqn]
        q_stored = q if site.out_axis == 0 else np.ascontiguousarray(q.T)
        q_init = numpy_helper.from_array(q_stored.astype(np.int8), f"{site.init_name}__int8")
        s_init = numpy_helper.from_array(scale.astype(np.float32), f"{site.init_name}__scale")
        zp_init = numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), f"{site.init_name}__zero_point")
        dq = helper.make_node(
            "DequantizeLinear",
            [q_init.name, s_init.name, zp_init.name],
            [site.init_name],
            axis=site.out_axis,
            name=f"{site.init_name}__dequantize",
        )
        _replace_initializer_with_nodes(model, site.init_name, [q_init, s_init, zp_init], [dq])
    missing = sorted(set(weights) - set(sites))
    return model, missing


def _int4_matmulnbits_onnx(
    fp32: onnx.ModelProto, weights: dict[str, np.ndarray], group_size: int
) -> tuple[onnx.ModelProto, list[str]]:
    """Quantize the given Linear weights to 4-bit ``MatMulNBits`` (symmetric, blocks of ``group_size``).

    ONNX Runtime's weight-only quantizer only takes MatMul nodes, so each target Gemm is first
    rewritten as MatMul (+ Add for the bias) with the weight stored as ``(K, N)``.

    Returns:
        The new model and the fqns whose weight could not be found in the graph (left fp32).
    """
    from onnx import helper, numpy_helper

    DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer = _import_matmul_nbits()

    model = copy.deepcopy(fp32)
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"lwdash_node_{i}"
    sites = _locate_weights(model, weights)
    site_inits = {s.init_name for s in sites.values()}
    inits = _initializers(model)
    include: list[str] = []
    new_nodes: list[Any] = []
    new_inits: list[Any] = []
    drop_inits: set[str] = set()
    for node in model.graph.node:
        if len(node.input) < 2 or node.input[1] not in site_inits:
            new_nodes.append(node)
            continue
        if node.op_type == "MatMul":
            include.append(node.name)
            new_nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        simple = (
            int(attrs.get("transA", 0)) == 0
            and float(attrs.get("alpha", 1.0)) == 1.0
            and float(attrs.get("beta", 1.0)) == 1.0
        )
        if not simple:
            new_nodes.append(node)
            continue
        b = numpy_helper.to_array(inits[node.input[1]])
        if int(attrs.get("transB", 0)) == 1:
            b = b.T
        w_name = f"{node.input[1]}__kn"
        new_inits.append(numpy_helper.from_array(np.ascontiguousarray(b), w_name))
        drop_inits.add(node.input[1])
        has_bias = len(node.input) > 2 and bool(node.input[2])
        mm_out = f"{node.output[0]}__matmul" if has_bias else node.output[0]
        mm = helper.make_node("MatMul", [node.input[0], w_name], [mm_out], name=f"{node.name}__matmul")
        include.append(mm.name)
        new_nodes.append(mm)
        if has_bias:
            new_nodes.append(helper.make_node("Add", [mm_out, node.input[2]], [node.output[0]], name=f"{node.name}__bias"))
    del model.graph.node[:]
    model.graph.node.extend(new_nodes)
    still_used = {name for n in model.graph.node for name in n.input}
    kept = [i for i in model.graph.initializer if i.name not in drop_inits or i.name in still_used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept + new_inits)

    if include:
        algo = DefaultWeightOnlyQuantConfig(block_size=group_size, is_symmetric=True, bits=4)
        with _quiet_loggers("onnxruntime.quantization.matmul_nbits_quantizer", "onnxruntime.quantization"):
            quantizer = MatMulNBitsQuantizer(
                model, bits=4, block_size=group_size, is_symmetric=True, nodes_to_include=include, algo_config=algo
            )
            quantizer.process()
        model = quantizer.model.model
    missing = sorted(set(weights) - set(sites))
    return model, missing


def _import_matmul_nbits() -> tuple[Any, Any]:
    """Import ORT's weight-only quantizer without letting it reconfigure the root logger.

    ``onnxruntime.quantization.matmul_nbits_quantizer`` calls ``logging.basicConfig(level=INFO)``
    at import, which would turn on INFO output from every library in the worker process.
    """
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            DefaultWeightOnlyQuantConfig,
            MatMulNBitsQuantizer,
        )
    finally:
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)
    return DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer


@contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    """Silence chatty INFO logging from ONNX Runtime's converters for the duration."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
