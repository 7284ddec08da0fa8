"""ONNX to PyTorch with onnx2torch: the graph patches it needs and the static reshapes that keep the result exportable.

Used by the ONNX loader (:mod:`lwdash.models.onnx_import`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from lwdash.models._loadutil import reason
from lwdash.models.base import ModelLoadError

__all__ = ["convert_onnx", "mark_flattens"]

_ONNX_TARGET_OPSET = 17  # onnx2torch has converters for most ops up to opset 17


def _onnx_opset(model: Any) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 0


def _patch_reshape_allowzero(model: Any) -> None:
    """Set ``allowzero=0`` on Reshape nodes (onnx2torch refuses ``allowzero=1``).

    The torch.onnx dynamo exporter writes ``allowzero=1``. The two settings differ only when the
    target shape holds a 0, i.e. for zero-size tensors, which a classifier's input never has.
    """
    for node in model.graph.node:
        if node.op_type == "Reshape":
            for attr in node.attribute:
                if attr.name == "allowzero":
                    attr.i = 0


def _inline_identity_initializers(model: Any) -> None:
    """Turn ``Identity(initializer)`` nodes into initializers of their own.

    The TorchScript-based ONNX exporter shares equal weights (e.g. the zero biases of folded
    batch norms) through Identity nodes; onnx2torch expects conv and gemm weights to be
    initializers and fails with a KeyError on them.
    """
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    kept = []
    for node in graph.node:
        if (
            node.op_type == "Identity"
            and len(node.input) == 1
            and node.input[0] in initializers
            and node.output[0] not in outputs
        ):
            tensor = type(initializers[node.input[0]])()
            tensor.CopyFrom(initializers[node.input[0]])
            tensor.name = node.output[0]
            graph.initializer.append(tensor)
            initializers[tensor.name] = tensor
        else:
            kept.append(node)
    if len(kept) != len(graph.node):
        del graph.node[:]
        graph.node.extend(kept)


class _StaticReshape(nn.Module):
    """ONNX Reshape with a constant target shape (``allowzero=0``: a 0 copies the input's dim).

    Replaces onnx2torch's ``OnnxReshape``, whose ``if torch.any(shape == 0)`` branches on tensor
    data and so stops ``torch.export`` (and the ONNX re-export of the compressed model).
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape
        # Set by mark_flattens when this reshape was seen to be a flatten of everything after the batch
        # ((-1, k) on an input of k values per sample): it then stays one when pruning changes k.
        self.flatten = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.flatten:
            return x.reshape(x.shape[0], -1)
        return x.reshape([x.shape[i] if s == 0 else s for i, s in enumerate(self.shape)])


def mark_flattens(module: nn.Module, input_shape: tuple[int, ...]) -> None:
    """Mark each constant ``(-1, k)`` reshape that flattens a batch of 2 to ``(2, k)`` as a flatten.

    Exporters write ``torch.flatten(x, 1)`` as ``Reshape(x, [-1, k])`` with the channel count baked in;
    once structured pruning removes channels, ``k`` is wrong. Seen on one forward pass, such a reshape is a
    flatten whatever ``k`` becomes.
    """
    seen: list[tuple[_StaticReshape, bool]] = []

    def hook(mod: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        x = args[0]
        assert isinstance(mod, _StaticReshape)
        flat = (len(mod.shape) == 2 and mod.shape[0] == -1 and x.ndim >= 2 and x.shape[0] == 2
                and math.prod(x.shape[1:]) == mod.shape[1])
        seen.append((mod, flat))

    handles = [m.register_forward_pre_hook(hook) for m in module.modules() if isinstance(m, _StaticReshape)]
    if not handles:
        return
    try:
        with torch.no_grad():
            module(torch.zeros((2, *input_shape)))
    except Exception:  # the forward check that follows reports it
        return
    finally:
        for h in handles:
            h.remove()
    for mod, flat in seen:
        mod.flatten = mod.flatten or flat


def _make_reshapes_static(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Swap onnx2torch Reshape modules whose shape is a constant for :class:`_StaticReshape`."""
    from onnx2torch.node_converters.reshape import OnnxReshape

    changed = False
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(gm.get_submodule(node.target), OnnxReshape):
            continue
        if len(node.args) != 2 or not isinstance(node.args[1], torch.fx.Node) or node.args[1].op != "get_attr":
            continue
        shape = gm
        for part in str(node.args[1].target).split("."):
            shape = getattr(shape, part)
        if not isinstance(shape, torch.Tensor) or shape.ndim != 1 or shape.is_floating_point():
            continue
        parent_name, _, child = str(node.target).rpartition(".")
        parent = gm.get_submodule(parent_name) if parent_name else gm
        setattr(parent, child, _StaticReshape(tuple(int(v) for v in shape.tolist())))
        node.args = (node.args[0],)
        changed = True
    if changed:
        gm.graph.eliminate_dead_code()
        gm.delete_all_unused_submodules()
        gm.recompile()
    return gm


def convert_onnx(model: Any, name: str) -> nn.Module:
    import onnx
    import onnx2torch
    from onnx import version_converter

    candidates = []
    if _onnx_opset(model) > _ONNX_TARGET_OPSET:
        try:
            candidates.append(version_converter.convert_version(model, _ONNX_TARGET_OPSET))
        except Exception:  # the converter lacks an adapter: try the original opset
            pass
    candidates.append(model)
    errors: list[str] = []
    for candidate in candidates:
        copy = onnx.ModelProto()
        copy.CopyFrom(candidate)
        _patch_reshape_allowzero(copy)
        _inline_identity_initializers(copy)
        try:
            converted = onnx2torch.convert(copy)
        except Exception as exc:  # onnx2torch raises NotImplementedError, KeyError, ...
            errors.append(reason(exc))
            continue
        return _make_reshapes_static(converted)
    raise ModelLoadError(
        f"{name} is a valid ONNX model, but onnx2torch cannot convert it to PyTorch (needed to compress it): "
        f"{errors[-1]}. Export it with standard operators at opset {_ONNX_TARGET_OPSET} or lower, or upload "
        "a torch.export .pt2, TorchScript, or a state dict of a known architecture instead"
    )
