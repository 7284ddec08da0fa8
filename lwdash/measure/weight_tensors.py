"""Which tensors of a model are its weights: :class:`WeightTensor` and :func:`collect_weight_tensors`.

The counting rule (used by :mod:`lwdash.measure.size` and :func:`~lwdash.measure.weight_stats.weight_summary`) is the same for
every kind of model, so a baseline and its compressed form are counted alike:

* **Plain ``nn.Module``**: every parameter, plus every buffer except BatchNorm running statistics
  (``running_mean``, ``running_var``, ``num_batches_tracked``), pruning masks and boolean
  tensors. A ``torch.nn.utils.prune`` pair (``weight_orig`` + ``weight_mask``) counts once, as the
  masked ``weight``. Tied (shared) tensors count once.
* **torch.fx ``GraphModule``** (``torch.export(...).module()``, PT2E-quantized graphs, onnx2torch
  output): only the tensors the graph actually reads (``get_attr`` nodes, plus the parameters and
  buffers of ``call_module`` submodules by the plain rule). A converted PT2E graph keeps the
  original float weights in its ``state_dict`` although it no longer reads them: those dead
  entries are not counted. Scales and zero points (tensors that only feed the scale / zero-point
  arguments of ``quantize_*`` / ``dequantize_*`` ops) are not weights: their bytes are charged to
  the weight they dequantize (``aux_bytes``).
* **Quantized storage**: an int8 weight read through a ``dequantize_*`` op is stored as int8
  (1 byte a value) and its values are the dequantized floats (the op is run on the stored
  tensors, so the scale is exact). torchao tensor subclasses (``Int8Tensor``,
  ``IntxUnpackedToInt8Tensor``, ...) are stored as their ``qdata`` tensor, valued by
  ``dequantize()``; their scales / zero points are ``aux_bytes``. ``torch.quantize_per_*``
  tensors are stored as ``int_repr()`` and valued by ``dequantize()``.

"Weights" for the histograms are the tensors with ``ndim >= 2`` (conv and linear kernels);
biases and norm parameters are counted in the totals of :mod:`lwdash.measure.size` only.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

__all__ = ["WeightTensor", "collect_weight_tensors"]

_BN_STAT_NAMES = frozenset({"running_mean", "running_var", "num_batches_tracked"})
_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.modules.instancenorm._InstanceNorm,
)
_CONV_OPS = ("conv1d", "conv2d", "conv3d", "convolution", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
_LINEAR_OPS = ("linear", "addmm", "mm", "matmul", "bmm")
_NORM_OPS = ("batch_norm", "layer_norm", "group_norm", "instance_norm", "native_batch_norm", "_native_batch_norm_legit")


@dataclass(frozen=True)
class WeightTensor:
    """One counted weight tensor.

    Attributes:
        name: qualified name, the module path where known (``features.0.weight``), else the
            graph attribute name.
        kind: ``conv``, ``linear``, ``norm``, ``embedding`` or ``other`` (from the layer that uses it).
        shape: logical shape.
        values: float32 values as the model computes with them (dequantized where stored as ints).
        stored_dtype: dtype of the stored values (``torch.int8`` for int8 weights).
        aux_bytes: bytes of the scales / zero points stored beside it (0 for float tensors).
        dtype_label: human-readable storage, e.g. ``float32`` or ``int8 (dequantize_per_channel)``.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    values: torch.Tensor
    stored_dtype: torch.dtype
    aux_bytes: int
    dtype_label: str

    @property
    def numel(self) -> int:
        return int(self.values.numel())

    @property
    def itemsize_bytes(self) -> int:
        """Bytes per stored value (1 for int8, 2 for fp16/bf16, 4 for fp32)."""
        return _itemsize(self.stored_dtype)

    @property
    def is_kernel(self) -> bool:
        """True for conv / linear kernels (``ndim >= 2``), the tensors shown in histograms."""
        return len(self.shape) >= 2


def _itemsize(dtype: torch.dtype) -> int:
    return int(torch.empty((), dtype=dtype).element_size())


def _is_subclass_tensor(t: torch.Tensor) -> bool:
    cls = type(t)
    if cls in (torch.Tensor, nn.Parameter) or isinstance(t, nn.parameter.UninitializedParameter):
        return False
    return hasattr(t, "__tensor_flatten__")


def _float_values(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(device="cpu", dtype=torch.float32).reshape(t.shape)


def _describe(t: torch.Tensor) -> tuple[torch.Tensor, torch.dtype, int, str]:
    """(float32 values, stored dtype, aux bytes, label) of one tensor, unwrapping quantized storage."""
    if _is_subclass_tensor(t):
        names, _ = t.__tensor_flatten__()  # type: ignore[attr-defined]
        inner = [(n, getattr(t, n)) for n in names if isinstance(getattr(t, n, None), torch.Tensor)]
        if not inner:
            raise TypeError(f"tensor subclass {type(t).__name__} exposes no inner tensors")
        main_name, main = max(inner, key=lambda kv: kv[1].numel())
        aux = sum(int(v.numel() * v.element_size()) for n, v in inner if n != main_name)
        with torch.no_grad():
            deq = t.dequantize() if hasattr(t, "dequantize") else main
        values = _float_values(deq)
        return values, main.dtype, aux, f"{str(main.dtype).removeprefix('torch.')} ({type(t).__name__})"
    if t.is_quantized:
        values = _float_values(t.dequantize())
        stored = t.int_repr().dtype
        if t.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
            ch = t.q_per_channel_scales()
            aux = int(ch.numel() * (ch.element_size() + t.q_per_channel_zero_points().element_size()))
        else:
            aux = 8 + 8  # one float64 scale, one int64 zero point
        return values, stored, aux, f"{str(stored).removeprefix('torch.')} (torch quantized)"
    return _float_values(t), t.dtype, 0, str(t.dtype).removeprefix("torch.")


def _module_kind(mod: nn.Module) -> str:
    if isinstance(mod, nn.modules.conv._ConvNd):
        return "conv"
    if isinstance(mod, nn.Linear) or type(mod).__name__ in {"Linear", "LinearPackedParams"}:
        return "linear"
    if isinstance(mod, _NORM_TYPES):
        return "norm"
    if isinstance(mod, (nn.Embedding, nn.EmbeddingBag)):
        return "embedding"
    name = type(mod).__name__.lower()
    if "conv" in name:
        return "conv"
    if "linear" in name or "gemm" in name or "matmul" in name:
        return "linear"
    return "other"


def _plain_tensors(module: nn.Module, prefix: str, seen: set[int]) -> Iterator[WeightTensor]:
    graph_owned: list[str] = []  # submodules of a nested GraphModule are counted through its graph
    for mod_name, mod in module.named_modules():
        if any(mod_name.startswith(g + ".") for g in graph_owned):
            continue
        full = f"{prefix}{mod_name}" if mod_name else prefix.rstrip(".")
        if isinstance(mod, fx.GraphModule) and mod is not module:
            graph_owned.append(mod_name)
            yield from _graph_tensors(mod, f"{full}.", seen)
            continue
        kind = _module_kind(mod)
        params = dict(mod.named_parameters(recurse=False))
        buffers = dict(mod.named_buffers(recurse=False))
        masked = {n[: -len("_orig")] for n in params if n.endswith("_orig") and f"{n[: -len('_orig')]}_mask" in buffers}
        items: list[tuple[str, torch.Tensor]] = []
        for base in sorted(masked):
            orig, mask = params[f"{base}_orig"], buffers[f"{base}_mask"]
            seen.update({id(orig), id(mask)})
            items.append((base, orig.detach() * mask))
        for n, p in params.items():
            if id(p) not in seen:
                items.append((n, p))
        for n, b in buffers.items():
            if id(b) in seen or n in _BN_STAT_NAMES or n.endswith("_mask") or b.dtype == torch.bool:
                continue
            items.append((n, b))
        for n, t in items:
            if id(t) in seen or t.numel() == 0:
                continue
            seen.add(id(t))
            values, stored, aux, label = _describe(t)
            yield WeightTensor(f"{full}.{n}" if full else n, kind, tuple(t.shape), values, stored, aux, label)


def _resolve_attr(root: nn.Module, target: str) -> Any:
    obj: Any = root
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _op_name(node: fx.Node) -> str:
    target = node.target
    name = getattr(target, "__name__", None) or str(target)
    # torch.ops.aten.conv2d.default -> "conv2d.default"; keep the op part
    packet = getattr(target, "_overloadpacket", None)
    if packet is not None:
        name = getattr(packet, "__name__", name)
    return name.split(".")[0]


def _is_qdq(node: fx.Node) -> bool:
    return node.op == "call_function" and "quantize" in _op_name(node)


def _graph_kind_and_name(node: fx.Node, default_name: str) -> tuple[str, str]:
    """Follow ``node`` through (de)quantize ops to the layer that uses it: (kind, canonical name)."""
    frontier = [node]
    for _ in range(4):
        nxt: list[fx.Node] = []
        for cur in frontier:
            for user in cur.users:
                if user.op != "call_function":
                    continue
                if _is_qdq(user):
                    nxt.append(user)
                    continue
                op = _op_name(user)
                kind = (
                    "conv" if op in _CONV_OPS else
                    "linear" if op in _LINEAR_OPS else
                    "norm" if op in _NORM_OPS else
                    "embedding" if op.startswith("embedding") else
                    "other"
                )
                name = default_name
                stack = user.meta.get("nn_module_stack")
                if default_name.startswith("_") and stack and kind in ("conv", "linear"):
                    path = list(stack.values())[-1][0]
                    pos = list(user.args).index(cur) if cur in user.args else -1
                    role = {1: "weight", 2: "bias"}.get(pos) if op != "addmm" else {0: "bias", 2: "weight"}.get(pos)
                    if path and role:
                        name = f"{path}.{role}"
                return kind, name
        frontier = nxt
    return "other", default_name


def _graph_tensors(gm: fx.GraphModule, prefix: str, seen: set[int]) -> Iterator[WeightTensor]:
    attr_tensors: dict[fx.Node, torch.Tensor] = {}
    for node in gm.graph.nodes:
        if node.op == "get_attr":
            obj = _resolve_attr(gm, str(node.target))
            if isinstance(obj, torch.Tensor):
                attr_tensors[node] = obj
    qparam_bytes: dict[fx.Node, int] = {}  # weight get_attr node -> bytes of its scales / zero points
    deq_of: dict[fx.Node, fx.Node] = {}  # weight get_attr node -> its dequantize node
    for node in gm.graph.nodes:
        if _is_qdq(node) and node.args and isinstance(node.args[0], fx.Node) and node.args[0] in attr_tensors:
            w = node.args[0]
            if "dequantize" in _op_name(node):
                deq_of.setdefault(w, node)
            extra = [a for a in node.args[1:] if isinstance(a, fx.Node) and a in attr_tensors]
            qparam_bytes[w] = qparam_bytes.get(w, 0) + sum(
                int(attr_tensors[a].numel() * attr_tensors[a].element_size()) for a in extra
            )

    def is_qparam(n: fx.Node) -> bool:
        users = list(n.users)
        return bool(users) and all(_is_qdq(u) and n in u.args[1:] and u.args[0] is not n for u in users)

    for node in gm.graph.nodes:
        if node.op == "call_module":
            sub = _resolve_attr(gm, str(node.target))
            if isinstance(sub, fx.GraphModule):
                yield from _graph_tensors(sub, f"{prefix}{node.target}.", seen)
            elif isinstance(sub, nn.Module):
                yield from _plain_tensors(sub, f"{prefix}{node.target}.", seen)
            continue
        if node not in attr_tensors:
            continue
        t = attr_tensors[node]
        target = str(node.target)
        leaf = target.rsplit(".", 1)[-1]
        if (
            id(t) in seen
            or t.numel() == 0
            or t.dtype == torch.bool
            or leaf in _BN_STAT_NAMES
            or leaf.endswith("_mask")
            or is_qparam(node)
            or not node.users
        ):
            continue
        seen.add(id(t))
        kind, name = _graph_kind_and_name(node, target)
        deq = deq_of.get(node)
        values, stored, aux, label = _describe(t)
        if deq is not None and all(
            not isinstance(a, fx.Node) or a in attr_tensors for a in (*deq.args, *deq.kwargs.values())
        ):
            args = [attr_tensors[a] if isinstance(a, fx.Node) else a for a in deq.args]
            kwargs = {k: attr_tensors[v] if isinstance(v, fx.Node) else v for k, v in deq.kwargs.items()}
            with torch.no_grad():
                values = _float_values(deq.target(*args, **kwargs))  # type: ignore[operator]
            label = f"{str(stored).removeprefix('torch.')} ({_op_name(deq)})"
        yield WeightTensor(f"{prefix}{name}", kind, tuple(t.shape), values, stored, aux + qparam_bytes.get(node, 0), label)


def collect_weight_tensors(module: nn.Module) -> list[WeightTensor]:
    """Every tensor counted as a model weight, by the rule in this module's docstring.

    Args:
        module: a plain ``nn.Module``, a ``torch.fx.GraphModule`` (exported, PT2E-quantized,
            onnx2torch) or a module holding torchao quantized tensor subclasses.

    Returns:
        The counted tensors in a stable order (module / graph order), each at most once.
    """
    seen: set[int] = set()
    if isinstance(module, fx.GraphModule):
        return list(_graph_tensors(module, "", seen))
    return list(_plain_tensors(module, "", seen))
