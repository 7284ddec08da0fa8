"""Rebuild real ``nn.Conv*`` / ``nn.Linear`` / ``nn.BatchNorm*`` / ``nn.Dropout`` layers in an exported graph.

``torch.export.load(...).module()`` returns a ``GraphModule`` whose layers are plain ``nn.Module``
containers of parameters, read by ``get_attr`` nodes and consumed by ``aten.conv2d``,
``aten.linear``, ``aten.batch_norm`` ... calls. Techniques that work on layer modules
(structured pruning with torch-pruning, low-rank factorization, per-layer pruning) see nothing
in such a graph. :func:`rebuild_layers` turns each such call into a ``call_module`` of a real
layer that owns the very same parameter objects, under the layer's original name, so that:

- the graph computes exactly what it computed before (the same aten kernels run: ``nn.Conv2d``
  calls ``F.conv2d`` with the same weight, stride, padding, dilation and groups), which
  :func:`rebuild_layers` checks on random inputs before returning;
- ``train()`` / ``eval()`` switch batch norm and dropout like in any module (the exported graph
  had them fixed);
- shape constants that the export baked in (``view(x, [B, 2, 24, 4, 4])``) are rewritten as
  shape-relative ops (``unflatten(x, 1, [2, -1])``, ``flatten(x, 1, 2)``), so that a graph whose
  channels are removed by structured pruning still runs.

This is done on the aten graph rather than through an ONNX round trip (export, then onnx2torch):
the uploaded operators and weights are kept as they are, with no second converter whose gaps
(opsets, operators) would decide what can be compressed.
"""
from __future__ import annotations

import copy
import operator
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from lwdash.models.graph_shapes import make_reshapes_relative, outputs_match

__all__ = ["RebuildReport", "rebuild_layers"]

aten = torch.ops.aten

_CONV_OPS = {aten.conv1d.default: 1, aten.conv2d.default: 2, aten.conv3d.default: 3}
_CONV_PADDING_OPS = {aten.conv1d.padding: 1, aten.conv2d.padding: 2, aten.conv3d.padding: 3}
_CONV_CLASSES: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_TCONV_CLASSES: dict[int, type[nn.Module]] = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_BN_CLASSES: dict[int, type[nn.Module]] = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}
_DROPOUT_OPS = {aten.dropout.default, aten.dropout_.default}
_FEATURE_DROPOUT_OPS = {aten.feature_dropout.default, aten.feature_dropout_.default}
_VIEW_OPS = {aten.view.default, aten.reshape.default, aten._unsafe_view.default}
#: Graph calls whose result depends on the train/eval mode; left in the graph, they pin the mode.
MODE_DEPENDENT_MARKERS = ("batch_norm", "dropout")


@dataclass(frozen=True)
class RebuildReport:
    """What :func:`rebuild_layers` changed.

    Attributes:
        layers: number of layer modules built (conv, linear, batch norm, dropout).
        reshapes: number of shape-constant ``view``/``reshape`` calls made shape-relative.
        mode_ops_left: mode-dependent calls (batch norm, dropout) that could not be turned into
            modules; when non-zero the graph's train/eval switch is not native.
    """

    layers: int
    reshapes: int
    mode_ops_left: int


def _attr_path(gm: fx.GraphModule, node: Any) -> str | None:
    """The dotted path of a ``get_attr`` node that reads a tensor of ``gm``, else None."""
    if not isinstance(node, fx.Node) or node.op != "get_attr":
        return None
    return str(node.target)


def _tensor_at(gm: fx.GraphModule, path: str) -> torch.Tensor | None:
    owner_path, _, name = path.rpartition(".")
    try:
        owner = gm.get_submodule(owner_path) if owner_path else gm
    except AttributeError:
        return None
    value = getattr(owner, name, None)
    return value if isinstance(value, torch.Tensor) else None


class _Rebuilder:
    def __init__(self, gm: fx.GraphModule) -> None:
        self.gm = gm
        self.graph = gm.graph
        self.count = 0
        uses: dict[str, int] = {}
        for node in self.graph.nodes:
            if node.op == "get_attr":
                uses[str(node.target)] = uses.get(str(node.target), 0) + len(node.users)
        self.uses = uses
        self.taken: set[str] = set()

    # -- helpers ---------------------------------------------------------------------------
    def _tensors(self, nodes: dict[str, Any]) -> dict[str, torch.Tensor | None] | None:
        """Resolve ``{role: get_attr node or None}``; None if any node is not a single-use attribute."""
        out: dict[str, torch.Tensor | None] = {}
        for role, node in nodes.items():
            if node is None:
                out[role] = None
                continue
            path = _attr_path(self.gm, node)
            if path is None or path in self.taken or self.uses.get(path, 0) != 1:
                return None
            tensor = _tensor_at(self.gm, path)
            if tensor is None:
                return None
            out[role] = tensor
        return out

    def _place(self, layer: nn.Module, attr_nodes: list[Any]) -> str:
        """Register ``layer`` where its parameters lived (their owner, if it held nothing else)."""
        paths = [str(n.target) for n in attr_nodes if isinstance(n, fx.Node)]
        owners = {p.rpartition(".")[0] for p in paths}
        name = ""
        if len(owners) == 1:
            owner_path = owners.pop()
            owner = self.gm.get_submodule(owner_path) if owner_path else None
            held = {p.rpartition(".")[2] for p in paths}
            own = set(owner._parameters) | set(owner._buffers) if owner is not None else set()
            extra = own - held - {"num_batches_tracked"}
            if owner is not None and type(owner) is nn.Module and not owner._modules and not extra and owner_path:
                name = owner_path
        if not name:
            base = (paths[0].rpartition(".")[0] if paths else "layer").replace(".", "_") or "layer"
            name, i = f"{base}_layer", 1
            while hasattr(self.gm, name):
                i += 1
                name = f"{base}_layer{i}"
        parent_path, _, child = name.rpartition(".")
        parent = self.gm.get_submodule(parent_path) if parent_path else self.gm
        setattr(parent, child, layer)
        self.taken.update(paths)
        self.count += 1
        return name

    def _swap(self, node: fx.Node, layer: nn.Module, attr_nodes: list[Any], x: fx.Node, *, tuple_out: bool) -> None:
        name = self._place(layer, attr_nodes)
        with self.graph.inserting_before(node):
            new = self.graph.call_module(name, (x,))
        new.meta = dict(node.meta)
        if tuple_out:  # e.g. _native_batch_norm_legit_no_training -> (out, save_mean, save_rstd)
            for user in list(node.users):
                if user.op == "call_function" and user.target is operator.getitem and user.args[1] == 0:
                    user.replace_all_uses_with(new)
                    self.graph.erase_node(user)
            if node.users:
                raise RuntimeError("batch norm statistics outputs are used")  # checked before: not reached
        else:
            node.replace_all_uses_with(new)
        self.graph.erase_node(node)
        for a in attr_nodes:
            if isinstance(a, fx.Node) and not a.users:
                self.graph.erase_node(a)

    # -- layer kinds -----------------------------------------------------------------------
    def conv(self, node: fx.Node, dims: int, padding_mode_str: bool) -> None:
        args: list[Any] = [*node.args, *([None] * 8)]
        x, w_node, b_node = args[0], args[1], args[2]
        stride, padding, dilation, groups = args[3], args[4], args[5], args[6]
        kw = node.kwargs
        stride = kw.get("stride", stride) or [1] * dims
        padding = kw.get("padding", padding)
        dilation = kw.get("dilation", dilation) or [1] * dims
        groups = int(kw.get("groups", groups) or 1)
        if padding is None:
            padding = "valid" if padding_mode_str else [0] * dims
        t = self._tensors({"w": w_node, "b": b_node})
        if t is None or not isinstance(x, fx.Node) or not isinstance(t["w"], nn.Parameter):
            return
        w = t["w"]
        layer = _CONV_CLASSES[dims](
            int(w.shape[1]) * groups, int(w.shape[0]), tuple(int(k) for k in w.shape[2:]),
            stride=tuple(stride), padding=padding if isinstance(padding, str) else tuple(padding),
            dilation=tuple(dilation), groups=groups, bias=t["b"] is not None, device="meta",
        )
        self._adopt(layer, {"weight": w, "bias": t["b"]})
        self._swap(node, layer, [w_node, b_node], x, tuple_out=False)

    def convolution(self, node: fx.Node) -> None:
        # aten.convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)
        if len(node.args) < 9 or node.kwargs:
            return
        a: Any = node.args
        x, w_node, b_node, stride, padding, dilation, transposed, output_padding, groups = a[:9]
        t = self._tensors({"w": w_node, "b": b_node})
        if t is None or not isinstance(x, fx.Node) or not isinstance(t["w"], nn.Parameter):
            return
        w = t["w"]
        dims = w.ndim - 2
        if dims not in (1, 2, 3):
            return
        groups = int(groups)
        kernel = tuple(int(k) for k in w.shape[2:])
        common = {"stride": tuple(stride), "padding": tuple(padding), "dilation": tuple(dilation), "groups": groups,
                  "bias": t["b"] is not None, "device": "meta"}
        if transposed:
            layer = _TCONV_CLASSES[dims](int(w.shape[0]), int(w.shape[1]) * groups, kernel,
                                         output_padding=tuple(output_padding), **common)
        else:
            if any(int(p) for p in output_padding):
                return
            layer = _CONV_CLASSES[dims](int(w.shape[1]) * groups, int(w.shape[0]), kernel, **common)
        self._adopt(layer, {"weight": w, "bias": t["b"]})
        self._swap(node, layer, [w_node, b_node], x, tuple_out=False)

    def conv_transpose(self, node: fx.Node, dims: int) -> None:
        # aten.conv_transposeNd.input(input, weight, bias, stride, padding, output_padding, groups, dilation)
        args: list[Any] = [*node.args, *([None] * 8)]
        x, w_node, b_node = args[0], args[1], args[2]
        if node.kwargs:
            return
        stride = args[3] or [1] * dims
        padding = args[4] or [0] * dims
        output_padding = args[5] or [0] * dims
        groups = int(args[6] or 1)
        dilation = args[7] or [1] * dims
        t = self._tensors({"w": w_node, "b": b_node})
        if t is None or not isinstance(x, fx.Node) or not isinstance(t["w"], nn.Parameter):
            return
        w = t["w"]
        layer = _TCONV_CLASSES[dims](
            int(w.shape[0]), int(w.shape[1]) * groups, tuple(int(k) for k in w.shape[2:]), stride=tuple(stride),
            padding=tuple(padding), output_padding=tuple(output_padding), groups=groups, dilation=tuple(dilation),
            bias=t["b"] is not None, device="meta",
        )
        self._adopt(layer, {"weight": w, "bias": t["b"]})
        self._swap(node, layer, [w_node, b_node], x, tuple_out=False)

    def linear(self, node: fx.Node) -> None:
        args: list[Any] = [*node.args, None]
        x, w_node, b_node = args[0], args[1], node.kwargs.get("bias", args[2])
        t = self._tensors({"w": w_node, "b": b_node})
        if t is None or not isinstance(x, fx.Node) or not isinstance(t["w"], nn.Parameter) or t["w"].ndim != 2:
            return
        w = t["w"]
        layer = nn.Linear(int(w.shape[1]), int(w.shape[0]), bias=t["b"] is not None, device="meta")
        self._adopt(layer, {"weight": w, "bias": t["b"]})
        self._swap(node, layer, [w_node, b_node], x, tuple_out=False)

    def batch_norm(self, node: fx.Node, *, legit: bool) -> None:
        if node.kwargs:
            return
        if legit:  # _native_batch_norm_legit_no_training(input, weight, bias, mean, var, momentum, eps)
            if len(node.args) != 7:
                return
            a: Any = node.args
            x, w_node, b_node, m_node, v_node, momentum, eps = a
            training = False
            if any(u.op != "call_function" or u.target is not operator.getitem for u in node.users):
                return
            if any(u.args[1] != 0 and u.users for u in node.users):
                return
        else:  # batch_norm(input, weight, bias, mean, var, training, momentum, eps, cudnn_enabled)
            if len(node.args) != 9:
                return
            b: Any = node.args
            x, w_node, b_node, m_node, v_node, training, momentum, eps, _ = b
        if training or m_node is None or v_node is None or not isinstance(x, fx.Node):
            return
        val = x.meta.get("val")
        rank = getattr(val, "ndim", None)
        if rank not in _BN_CLASSES:
            return
        t = self._tensors({"w": w_node, "b": b_node, "m": m_node, "v": v_node})
        if t is None or (t["w"] is None) != (t["b"] is None):
            return
        mean, var = t["m"], t["v"]
        assert mean is not None and var is not None
        layer = _BN_CLASSES[rank](int(mean.shape[0]), eps=float(eps), momentum=float(momentum),
                                  affine=t["w"] is not None, device="meta")
        owner_path = str(m_node.target).rpartition(".")[0]
        tracked = _tensor_at(self.gm, f"{owner_path}.num_batches_tracked") if owner_path else None
        self._adopt(layer, {"weight": t["w"], "bias": t["b"]},
                    {"running_mean": mean, "running_var": var, "num_batches_tracked": tracked})
        self._swap(node, layer, [w_node, b_node, m_node, v_node], x, tuple_out=legit)

    def dropout(self, node: fx.Node, feature: bool) -> None:
        if node.kwargs or len(node.args) != 3 or not isinstance(node.args[0], fx.Node):
            return
        d: Any = node.args
        x, p, _train = d
        layer = (nn.Dropout2d if feature else nn.Dropout)(float(p))
        name, i = "dropout", 1
        while hasattr(self.gm, name):
            i += 1
            name = f"dropout{i}"
        self.gm.add_module(name, layer)
        self.count += 1
        with self.graph.inserting_before(node):
            new = self.graph.call_module(name, (x,))
        new.meta = dict(node.meta)
        node.replace_all_uses_with(new)
        self.graph.erase_node(node)

    @staticmethod
    def _adopt(layer: nn.Module, params: dict[str, torch.Tensor | None],
               buffers: dict[str, torch.Tensor | None] | None = None) -> None:
        """Give ``layer`` the graph's own tensors (shared, not copied)."""
        for name, tensor in params.items():
            if tensor is None:
                continue
            if not isinstance(tensor, nn.Parameter):
                tensor = nn.Parameter(tensor, requires_grad=tensor.requires_grad)
            layer._parameters[name] = tensor
        for name, tensor in (buffers or {}).items():
            if tensor is None:
                if name == "num_batches_tracked":
                    layer._buffers[name] = torch.tensor(0, dtype=torch.long)
                continue
            layer._buffers[name] = tensor

    def run(self) -> None:
        for node in list(self.graph.nodes):
            if node.op != "call_function" or node.graph is not self.graph:
                continue
            target = node.target
            if target in _CONV_OPS:
                self.conv(node, _CONV_OPS[target], padding_mode_str=False)
            elif target in _CONV_PADDING_OPS:
                self.conv(node, _CONV_PADDING_OPS[target], padding_mode_str=True)
            elif target is aten.convolution.default:
                self.convolution(node)
            elif target is aten.conv_transpose2d.input:
                self.conv_transpose(node, 2)
            elif target is aten.conv_transpose1d.default:
                self.conv_transpose(node, 1)
            elif target is aten.linear.default:
                self.linear(node)
            elif target is aten.batch_norm.default:
                self.batch_norm(node, legit=False)
            elif target is aten._native_batch_norm_legit_no_training.default:
                self.batch_norm(node, legit=True)
            elif target in _DROPOUT_OPS:
                self.dropout(node, feature=False)
            elif target in _FEATURE_DROPOUT_OPS:
                self.dropout(node, feature=True)


def _is_aten_reshape(gm: fx.GraphModule, node: fx.Node) -> bool:
    del gm
    return node.op == "call_function" and node.target in _VIEW_OPS and len(node.args) == 2


def rebuild_layers(gm: fx.GraphModule, input_shape: tuple[int, ...]) -> tuple[fx.GraphModule, RebuildReport]:
    """A copy of an exported graph module with real layer modules and shape-relative reshapes.

    Args:
        gm: ``ExportedProgram.module()`` output, in eval mode (not modified).
        input_shape: per-sample input shape, no batch dim.

    Returns:
        The rebuilt module (a plain ``fx.GraphModule`` in eval mode) and what changed. When the
        rebuilt graph does not reproduce ``gm``'s outputs on random inputs at batch 1 and 3, or a
        rewrite fails, ``gm`` itself is returned with an all-zero report.
    """
    try:
        work = copy.deepcopy(gm)
        rebuilder = _Rebuilder(work)
        rebuilder.run()
        work.graph.eliminate_dead_code()
        work.graph.lint()
        rebuilt = fx.GraphModule(work, work.graph, class_name="RebuiltExportedProgram")
        rebuilt.eval()
        reshapes = make_reshapes_relative(rebuilt, torch.zeros((2, *input_shape)), _is_aten_reshape)
        rebuilt.eval()
        if not outputs_match(rebuilt, gm, input_shape):
            return gm, RebuildReport(0, 0, 0)
    except Exception:  # any rewrite the graph does not take: keep the program as loaded
        return gm, RebuildReport(0, 0, 0)
    left = sum(
        1
        for n in rebuilt.graph.nodes
        if n.op == "call_function" and any(k in str(n.target) for k in MODE_DEPENDENT_MARKERS)
    )
    return rebuilt, RebuildReport(rebuilder.count, reshapes, left)
