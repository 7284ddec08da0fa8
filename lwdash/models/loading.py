"""Load an uploaded model file of any accepted format into a :class:`LoadedModel`.

Accepted formats, recognised by content (the file suffix is only a hint):

- ONNX (``.onnx``): one self-contained file, converted to PyTorch with onnx2torch;
- a ``torch.export`` program (``.pt2``) with a dynamic batch dim;
- TorchScript (``torch.jit.save``); its input shape comes from ``arch`` or ``input_shape``;
- a state dict (``torch.save(model.state_dict())``, ``.pt``/``.pth``) or a ``.safetensors`` file,
  for an architecture of :mod:`lwdash.models.registry`.

A full pickled ``nn.Module`` (``torch.save(model)``) would run arbitrary code when unpickled: it is
refused, unless the operator allows pickles for trusted local use (``allow_pickle=True`` or the
environment variable ``LWDASH_ALLOW_PICKLE=1``). Every loaded model is returned in eval mode, in
fp32, after one forward pass on zeros has checked its input and output shapes.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import re
import struct
import types
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lwdash.models.base import LoadedModel, ModelLoadError
from lwdash.models.registry import build_architecture, get_architecture, list_architectures

__all__ = [
    "ACCEPTED_FORMATS",
    "MAX_UPLOAD_BYTES",
    "UPLOAD_LIMIT_ENV",
    "check_upload_size",
    "detect_model_format",
    "load_model_file",
    "max_upload_bytes",
]

#: Default upload size limit (200 MiB); :func:`max_upload_bytes` applies ``LWDASH_MAX_UPLOAD_MB``.
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
UPLOAD_LIMIT_ENV = "LWDASH_MAX_UPLOAD_MB"
ACCEPTED_FORMATS = (
    "ONNX (.onnx, one self-contained file), a torch.export program (.pt2), TorchScript (.pt/.ts), "
    "or the state dict (.pt/.pth/.safetensors) of a known architecture"
)
_ONNX_TARGET_OPSET = 17  # onnx2torch has converters for most ops up to opset 17
_PICKLE_ENV = "LWDASH_ALLOW_PICKLE"
_MAX_REASON_CHARS = 400


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------
def _mib(n_bytes: int) -> str:
    return f"{n_bytes / (1024 * 1024):.1f} MiB"


def _reason(exc: BaseException) -> str:
    """A one-paragraph reason from an engine exception (torch messages can run to pages)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    if len(text) > _MAX_REASON_CHARS:
        text = text[: _MAX_REASON_CHARS - 3] + "..."
    return text


def _known_archs() -> str:
    return ", ".join(list_architectures())


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def max_upload_bytes() -> int:
    """The upload size limit in bytes: ``LWDASH_MAX_UPLOAD_MB`` (MiB, may be fractional), default 200.

    Read at every call, so an operator's change takes effect without a restart of the library.

    Raises:
        ValueError: the environment variable is set but is not a positive number.
    """
    raw = os.environ.get(UPLOAD_LIMIT_ENV, "").strip()
    if not raw:
        return MAX_UPLOAD_BYTES
    try:
        mib = float(raw)
    except ValueError:
        mib = float("nan")
    if not math.isfinite(mib) or mib <= 0:
        raise ValueError(f"{UPLOAD_LIMIT_ENV} must be a positive number of MiB (e.g. 200), got {raw!r}")
    return max(1, int(mib * 1024 * 1024))


def check_upload_size(n_bytes: int, name: str = "the uploaded file") -> None:
    """Refuse an empty upload or one larger than :func:`max_upload_bytes`.

    Args:
        n_bytes: size of the uploaded file in bytes.
        name: the file's name as the user knows it, for the message.

    Raises:
        ModelLoadError: the file is empty or too large (the message gives both sizes).
    """
    if n_bytes <= 0:
        raise ModelLoadError(f"{name} is empty (0 bytes); accepted formats: {ACCEPTED_FORMATS}")
    limit = max_upload_bytes()
    if n_bytes > limit:
        raise ModelLoadError(
            f"{name} is {_mib(n_bytes)} ({n_bytes:,} bytes); the upload limit is {_mib(limit)} ({limit:,} bytes, "
            f"set by {UPLOAD_LIMIT_ENV})"
        )


def _check_input_shape(input_shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
    if input_shape is None:
        return None
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ModelLoadError(
            f"input_shape must be a tuple of positive ints such as (1, 8, 8), got {input_shape!r}"
        ) from None
    if not shape or any(d <= 0 for d in shape):
        raise ModelLoadError(f"input_shape must be a tuple of positive ints such as (1, 8, 8), got {input_shape!r}")
    return shape


# --------------------------------------------------------------------------------------------
# Format detection
# --------------------------------------------------------------------------------------------
def _looks_like_safetensors(path: Path, head: bytes, size: int) -> bool:
    # safetensors: little-endian u64 header length, then that many bytes of JSON starting with '{'
    if len(head) < 9:
        return False
    (header_len,) = struct.unpack("<Q", head[:8])
    return 2 <= header_len <= size - 8 and head[8:9] == b"{"


def _parses_as_pickle(path: Path, size: int, max_bytes: int = 1024 * 1024) -> bool:
    """Whether a (small) file is one complete pickle: its opcodes are parsed, never executed."""
    import pickletools

    if size > max_bytes:
        return False
    data = path.read_bytes()
    try:
        ops = list(pickletools.genops(data))
    except Exception:  # ValueError on an unknown opcode, truncated argument, ...
        return False
    if not ops or ops[-1][0].name != "STOP" or ops[-1][2] is None:
        return False
    return not data[ops[-1][2] + 1 :].strip()


def detect_model_format(path: Path) -> str:
    """Guess a model file's format from its content.

    Args:
        path: the file.

    Returns:
        One of ``"onnx"`` (anything unrecognised is tried as ONNX, a protobuf without a magic
        number), ``"pt2"``, ``"torchscript"``, ``"torch_pickle"`` (``torch.save`` output: a state
        dict or a pickled object), ``"safetensors"``, ``"npz"`` (a NumPy data set, not a model)
        ``"zip"`` (an unrelated zip archive) or ``"broken_zip"`` (a truncated or corrupt zip).
    """
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(16)
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError):
            return "broken_zip"
        if any("/code/" in n or n.endswith("constants.pkl") for n in names):
            return "torchscript"
        if any(n == "archive_format" or n.endswith("/archive_format") for n in names):
            return "pt2"
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return "torch_pickle"
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
        return "zip"
    if _looks_like_safetensors(path, head, size):
        return "safetensors"
    if head[:1] == b"\x80":  # pickle protocol >= 2: legacy torch.save or a raw pickle
        return "torch_pickle"
    if _parses_as_pickle(path, size):  # protocol 0/1 pickles are text-like opcodes with no magic number
        return "torch_pickle"
    return "onnx"


# --------------------------------------------------------------------------------------------
# Forward-pass verification
# --------------------------------------------------------------------------------------------
def _to_fp32(module: nn.Module) -> nn.Module:
    tensors = list(module.parameters()) + list(module.buffers())
    if any(t.is_floating_point() and t.dtype != torch.float32 for t in tensors):
        module = module.float()
    return module


def _verify(module: nn.Module, input_shape: tuple[int, ...], name: str, expected_classes: int | None) -> int:
    """Run one forward pass on zeros of ``(2, *input_shape)``; return the number of output classes."""
    batch_shape = (2, *input_shape)
    try:
        with torch.no_grad():
            out = module(torch.zeros(batch_shape, dtype=torch.float32))
    except Exception as exc:  # any engine error: the model cannot take this input
        raise ModelLoadError(
            f"{name} was read, but a test forward pass on zeros of shape {_fmt_shape(batch_shape)} failed: "
            f"{_reason(exc)}. Check that the input shape {_fmt_shape(input_shape)} (per sample, no batch dim) "
            "is the one the model was trained with and that the batch dim is dynamic."
        ) from exc
    if not isinstance(out, torch.Tensor):
        raise ModelLoadError(
            f"{name} returns {type(out).__name__}, not one logits tensor; lwdash accepts classifiers that "
            "return a (batch, num_classes) tensor"
        )
    if out.ndim != 2 or out.shape[0] != 2:
        raise ModelLoadError(
            f"{name} returns shape {_fmt_shape(tuple(out.shape))} for a batch of 2; lwdash accepts classifiers "
            "that return (batch, num_classes) logits"
        )
    if out.dtype != torch.float32:
        raise ModelLoadError(f"{name} returns {out.dtype} logits after conversion to fp32; lwdash needs an fp32 model")
    num_classes = int(out.shape[1])
    if expected_classes is not None and num_classes != expected_classes:
        raise ModelLoadError(
            f"{name} declares {expected_classes} output classes but returns {num_classes} in a test forward pass"
        )
    return num_classes


# --------------------------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------------------------
def _onnx_opset(model: Any) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 0


def _onnx_uses_external_data(model: Any) -> bool:
    import onnx

    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                tensors.append(attr.t)
    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in tensors)


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape([x.shape[i] if s == 0 else s for i, s in enumerate(self.shape)])


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


def _convert_onnx(model: Any, name: str) -> nn.Module:
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
            errors.append(_reason(exc))
            continue
        return _make_reshapes_static(converted)
    raise ModelLoadError(
        f"{name} is a valid ONNX model, but onnx2torch cannot convert it to PyTorch (needed to compress it): "
        f"{errors[-1]}. Export it with standard operators at opset {_ONNX_TARGET_OPSET} or lower, or upload "
        "a torch.export .pt2, TorchScript, or a state dict of a known architecture instead"
    )


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


def _load_onnx(path: Path, name: str, input_shape: tuple[int, ...] | None, recognised: bool) -> LoadedModel:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        if recognised or path.suffix.lower() == ".onnx":
            raise ModelLoadError(
                f"could not read {name} as ONNX: {_reason(exc)}; accepted formats: {ACCEPTED_FORMATS}"
            ) from exc
        raise ModelLoadError(
            f"could not recognise {name} as a model file: it is not a zip archive (TorchScript, torch.export "
            f".pt2, torch.save), not safetensors, not a pickle, and reading it as ONNX failed: {_reason(exc)}; "
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
            f"could not read {name} as ONNX: the model is not valid: {_reason(exc)}; accepted formats: {ACCEPTED_FORMATS}"
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
    module = _convert_onnx(model, name)
    module = _to_fp32(module).eval()
    num_classes = _verify(module, shape, name, expected_classes)
    return LoadedModel(module=module, input_shape=shape, num_classes=num_classes, source_format="onnx", arch=None)


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
                f"{_fmt_shape(input_shape)} was given"
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


# --------------------------------------------------------------------------------------------
# torch.export (.pt2)
# --------------------------------------------------------------------------------------------
_TRAINING_OP_MARKERS = ("_native_batch_norm_legit_functional", "_native_batch_norm_legit.default", "native_dropout")


def _graph_in_training_mode(gm: torch.fx.GraphModule) -> bool:
    for node in gm.graph.nodes:
        if node.op != "call_function":
            continue
        target = str(node.target)
        if any(marker in target for marker in _TRAINING_OP_MARKERS):
            return True
        if "dropout" in target and len(node.args) >= 3 and node.args[2] is True:
            return True
        if target.startswith("aten.batch_norm") and len(node.args) >= 6 and node.args[5] is True:
            return True
    return False


def _exported_train(self: torch.fx.GraphModule, mode: bool = True) -> torch.fx.GraphModule:
    """``train()``/``eval()`` for an unlifted exported program (torch raises by default).

    An exported graph is specialised to the mode it was exported in; only dropout and batch
    norm can be switched, by rewriting the graph (torchao's helpers, imported only when the
    mode actually changes because the import and the rewrite take seconds).
    """
    mode = bool(mode)
    if mode != self.__dict__.get("_lwdash_graph_training", False):
        from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train

        (move_exported_model_to_train if mode else move_exported_model_to_eval)(self)
        self.__dict__["_lwdash_graph_training"] = mode
    for m in self.modules():
        m.training = mode
    return self


def _exported_eval(self: torch.fx.GraphModule) -> torch.fx.GraphModule:
    return _exported_train(self, False)


def _enable_train_eval(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    gm.__dict__["_lwdash_graph_training"] = _graph_in_training_mode(gm)
    gm.train = types.MethodType(_exported_train, gm)  # type: ignore[method-assign]
    gm.eval = types.MethodType(_exported_eval, gm)  # type: ignore[method-assign]
    return gm


# --------------------------------------------------------------------------------------------
# torch.export (.pt2): vetting the archive before torch.export.load
# --------------------------------------------------------------------------------------------
# torch.export.load trusts its input: it unpickles sample inputs and "use_pickle" payloads with
# weights_only=False (after a weights_only=True attempt fails), unpickles opaque constants with
# pickle.loads, evaluates every symbolic-shape string with sympy.sympify (Python eval), resolves
# node targets as attribute paths under torch (torch.os.system is one), and exec()s guard code
# when the module is built. Each of these runs code from the file. lwdash therefore reads the
# archive first and accepts only what a plain torch.export.save of a classifier writes: tensor
# payloads, sample inputs that load with weights_only=True, shape expressions built from sympy
# classes, and targets that are torch operators.
_PT2_MAX_MEMBERS = 100_000
_PT2_MAX_JSON_BYTES = 256 * 1024 * 1024
_PT2_MAX_EXPR_CHARS = 4_000
_PT2_REFUSED_OPS = ("from_file",)  # aten::from_file maps (and, shared, writes) an arbitrary host file
_SYMPY_NAMES = frozenset(
    "Symbol Dummy Integer Rational Float Mul Add Pow Max Min Mod Abs floor ceiling sqrt Eq Ne Lt Le Gt Ge "
    "And Or Not Xor Equality Unequality StrictLessThan LessThan StrictGreaterThan GreaterThan BooleanTrue "
    "BooleanFalse true false True False oo zoo nan Infinity NegativeInfinity One Zero NegativeOne Half "
    "Piecewise ExprCondPair".split()
)
_SYMBOL_NAME = re.compile(r"[A-Za-z]{1,4}\d+")
_SYMBOL_STRING = re.compile(r"""(['"])[A-Za-z_][A-Za-z0-9_]{0,63}\1""")
_EXPR_OPS = frozenset("( ) , = + - * / ** // % < > <= >= == != & | ~".split())
_OPERATOR_TARGETS = frozenset(
    "getitem add sub mul floordiv truediv mod neg pos pow abs eq ne lt le gt ge and_ or_ not_".split()
)
_MATH_TARGETS = frozenset("ceil floor trunc sqrt".split())
_TORCH_OP_TARGET = re.compile(r"torch\.ops\.[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")
_TORCH_SYM_TARGET = re.compile(r"torch\.sym_[a-z_]+")


def _sympy_function_names() -> frozenset[str]:
    """Names of the sympy functions torch's shape expressions use (FloorDiv, ModularIndexing, ...)."""
    import sympy
    import torch.utils._sympy.functions as fns

    return frozenset(
        n for n, v in vars(fns).items() if isinstance(v, type) and issubclass(v, sympy.Basic) and not n.startswith("_")
    )


def _pt2_refusal(name: str, what: str) -> ModelLoadError:
    return ModelLoadError(
        f"{name} is refused: {what}. Loading it would run code from the file. lwdash accepts .pt2 files written by "
        "torch.export.save(torch.export.export(model, (x,), dynamic_shapes=...)) of a classifier (tensor weights, "
        f"standard torch operators); accepted formats: {ACCEPTED_FORMATS}"
    )


def _check_sym_expr(expr: str, name: str, allowed_names: frozenset[str]) -> None:
    import tokenize

    if len(expr) > _PT2_MAX_EXPR_CHARS:
        raise _pt2_refusal(name, f"a symbolic shape expression is {len(expr):,} characters long")
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(expr).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError) as exc:
        raise _pt2_refusal(name, f"a symbolic shape expression cannot be parsed ({_reason(exc)})") from None
    skip = {tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT}
    for i, tok in enumerate(tokens):
        if tok.type in skip or tok.type == tokenize.NUMBER:
            continue
        if tok.type == tokenize.NAME:
            is_kwarg = i + 1 < len(tokens) and tokens[i + 1].string == "=" and not tok.string.startswith("_")
            if tok.string in allowed_names or _SYMBOL_NAME.fullmatch(tok.string) or is_kwarg:
                continue
        elif tok.type == tokenize.STRING and _SYMBOL_STRING.fullmatch(tok.string):
            continue
        elif tok.type == tokenize.OP and tok.string in _EXPR_OPS:
            continue
        shown = expr if len(expr) <= 80 else expr[:77] + "..."
        raise _pt2_refusal(
            name, f"a symbolic shape expression holds {tok.string!r}, which is not part of a shape formula ({shown!r})"
        )


def _check_node_target(target: str, name: str) -> None:
    head, _, rest = target.partition(".")
    ok = (
        (_TORCH_OP_TARGET.fullmatch(target) is not None and "__" not in target)
        or _TORCH_SYM_TARGET.fullmatch(target) is not None
        or (head == "_operator" and rest in _OPERATOR_TARGETS)
        or (head == "math" and rest in _MATH_TARGETS)
    )
    if not ok:
        shown = target if len(target) <= 80 else target[:77] + "..."
        raise _pt2_refusal(name, f"its graph calls {shown!r}, which is not a torch operator")
    if any(op in target for op in _PT2_REFUSED_OPS):
        raise _pt2_refusal(name, f"its graph calls {target!r}, which reads or writes files on the host")


def _walk_program_json(obj: Any, name: str, allowed_names: frozenset[str]) -> set[str]:
    """Check every shape expression and node target of a serialized program; return the targets."""
    targets: set[str] = set()
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            expr = item.get("expr_str")
            if expr is not None:
                if not isinstance(expr, str):
                    raise _pt2_refusal(name, "a symbolic shape expression is not a string")
                _check_sym_expr(expr, name, allowed_names)
            if "target" in item and "inputs" in item and "outputs" in item:
                if not isinstance(item["target"], str):
                    raise _pt2_refusal(name, "a graph node has a target that is not a name")
                _check_node_target(item["target"], name)
                targets.add(item["target"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return targets


def _read_json_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> Any:
    if info.file_size > _PT2_MAX_JSON_BYTES:
        raise ModelLoadError(
            f"{name}: member {info.filename} declares {_mib(info.file_size)} uncompressed; the limit is "
            f"{_mib(_PT2_MAX_JSON_BYTES)}"
        )
    try:
        return json.loads(zf.read(info))
    except Exception as exc:  # zlib / json / unicode errors
        raise ModelLoadError(
            f"could not read {name} as a torch.export program (.pt2): member {info.filename} is not valid JSON "
            f"({_reason(exc)}); accepted formats: {ACCEPTED_FORMATS}"
        ) from exc


def _vet_pt2_archive(path: Path, name: str) -> None:
    """Refuse a .pt2 archive that holds anything beyond tensors, torch operators and shape formulas.

    Raises:
        ModelLoadError: the archive is not a current-format torch.export program, or it holds
            pickled objects, non-torch call targets or code in its shape expressions.
    """
    from torch.export.pt2_archive import constants as pt2c

    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > _PT2_MAX_MEMBERS:
                raise ModelLoadError(f"{name} holds {len(infos):,} archive members; the limit is {_PT2_MAX_MEMBERS:,}")
            names = [i.filename for i in infos]
            if len(set(names)) != len(names):
                raise _pt2_refusal(name, "its archive holds two members with the same name")
            tops = {n.split("/", 1)[0] for n in names}
            if len(tops) != 1 or any("/" not in n for n in names):
                raise ModelLoadError(
                    f"{name} is a zip archive, but not one written by torch.export.save (its members are not "
                    f"in one top-level folder); accepted formats: {ACCEPTED_FORMATS}"
                )
            rel = {i.filename.split("/", 1)[1]: i for i in infos}
            pickled: dict[str, str] = {}  # archive path -> what it is, for members torch.export.load unpickles
            if rel.get(pt2c.ARCHIVE_FORMAT_PATH) is None or zf.read(rel[pt2c.ARCHIVE_FORMAT_PATH]).strip() != b"pt2":
                raise ModelLoadError(
                    f"{name} is not a current torch.export archive (no archive_format 'pt2'); save it again with "
                    f"torch.export.save in PyTorch 2.6 or later; accepted formats: {ACCEPTED_FORMATS}"
                )
            models = [r for r in rel if r.startswith(pt2c.MODELS_DIR) and r.endswith(".json")]
            if not models:
                raise ModelLoadError(
                    f"{name} is a torch.export archive without an exported program (no {pt2c.MODELS_DIR}*.json); "
                    f"accepted formats: {ACCEPTED_FORMATS}"
                )
            for r in rel:
                if r.startswith(pt2c.AOTINDUCTOR_DIR):
                    raise _pt2_refusal(name, "it holds AOTInductor-compiled code (data/aotinductor/)")
                if r.startswith((pt2c.WEIGHTS_DIR, pt2c.CONSTANTS_DIR)) and r.endswith(".pt"):
                    raise _pt2_refusal(name, f"it holds a legacy pickled payload ({r})")
            for r, info in rel.items():
                if r.endswith("_config.json") and r.startswith((pt2c.WEIGHTS_DIR, pt2c.CONSTANTS_DIR)):
                    config = _read_json_member(zf, info, name)
                    entries = config.get("config", {}) if isinstance(config, dict) else None
                    if not isinstance(entries, dict):
                        raise _pt2_refusal(name, f"{r} is not a payload table")
                    folder = r.rsplit("/", 1)[0] + "/"
                    for key, meta in entries.items():
                        if not isinstance(meta, dict):
                            raise _pt2_refusal(name, f"{r} entry {key!r} is not a payload description")
                        path_name = str(meta.get("path_name", ""))
                        if path_name.startswith((pt2c.CUSTOM_OBJ_FILENAME_PREFIX, pt2c.OPAQUE_OBJ_FILENAME_PREFIX)):
                            raise _pt2_refusal(name, f"constant {key!r} is a pickled Python or script object")
                        if meta.get("use_pickle"):  # e.g. torchao quantized weights (tensor subclasses)
                            pickled[folder + path_name] = f"payload {key!r}"
            for r in rel:
                if r.startswith(pt2c.SAMPLE_INPUTS_DIR):
                    pickled[r] = f"its sample inputs ({r})"
            if any(not r.startswith(pt2c.SAMPLE_INPUTS_DIR) for r in pickled):
                import torchao.quantization  # registers torchao's tensor subclasses as safe globals
            for r, what in pickled.items():
                # torch.export.load unpickles these with weights_only=False (or falls back to it): allow
                # only pickles that also load with weights_only=True, i.e. reference allowlisted globals only
                if r not in rel:
                    raise _pt2_refusal(name, f"{what} points at {r}, which is not in the archive")
                try:
                    torch.load(io.BytesIO(zf.read(rel[r])), map_location="cpu", weights_only=True)
                except Exception as exc:
                    match = re.search(r"GLOBAL ([\w.]+)", str(exc))
                    found = f": it references {match.group(1)}" if match else ""
                    raise _pt2_refusal(name, f"{what} holds pickled objects that are not tensors{found}") from None
            allowed = _SYMPY_NAMES | _sympy_function_names()
            for r in models:
                program = _read_json_member(zf, rel[r], name)
                if isinstance(program, dict):
                    for key in (program.get("range_constraints") or {}):
                        if not _SYMBOL_NAME.fullmatch(str(key)):
                            raise _pt2_refusal(name, f"a range constraint is keyed by {str(key)[:80]!r}, not a symbol")
                targets = _walk_program_json(program, name, allowed)
                if any(t.startswith("torch.ops.quantized_decomposed.") for t in targets):
                    import torchao.quantization.pt2e  # noqa: F401  registers the quantized_decomposed operators
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise ModelLoadError(
            f"could not read {name} as a torch.export program (.pt2): the archive is corrupt ({_reason(exc)}); "
            f"accepted formats: {ACCEPTED_FORMATS}"
        ) from exc


def _check_exported_graph(gm: torch.fx.GraphModule, name: str) -> None:
    """After loading: every call in the graph (and its subgraphs) is a torch operator or a shape helper."""
    import math as _math
    import operator

    allowed_py = {getattr(operator, n) for n in _OPERATOR_TARGETS} | {getattr(_math, n) for n in _MATH_TARGETS}
    for module in gm.modules():
        graph = getattr(module, "graph", None)
        if not isinstance(graph, torch.fx.Graph):
            continue
        for node in graph.nodes:
            if node.op != "call_function":
                continue
            target = node.target
            is_op = isinstance(target, (torch._ops.OpOverload, torch._ops.OpOverloadPacket, torch._ops.HigherOrderOperator))
            is_sym = callable(target) and getattr(target, "__module__", "") == "torch" and str(
                getattr(target, "__name__", "")
            ).startswith("sym_")
            if not (is_op or is_sym or target in allowed_py):
                raise _pt2_refusal(name, f"its graph calls {target!r}, which is not a torch operator")
            if any(op in str(target) for op in _PT2_REFUSED_OPS):
                raise _pt2_refusal(name, f"its graph calls {target}, which reads or writes files on the host")


def _load_pt2(path: Path, name: str, input_shape: tuple[int, ...] | None) -> LoadedModel:
    _vet_pt2_archive(path, name)
    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise ModelLoadError(
            f"could not read {name} as a torch.export program (.pt2): {_reason(exc)}; accepted formats: {ACCEPTED_FORMATS}"
        ) from exc
    user_inputs = list(program.graph_signature.user_inputs)
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    tensor_inputs = [
        placeholders[u]
        for u in user_inputs
        if u in placeholders and isinstance(placeholders[u].meta.get("val"), torch.Tensor)
    ]
    if len(user_inputs) != 1 or len(tensor_inputs) != 1:
        raise ModelLoadError(
            f"{name} takes {len(user_inputs)} inputs ({', '.join(map(str, user_inputs))}); lwdash accepts "
            "classifiers with exactly one input tensor"
        )
    val = tensor_inputs[0].meta["val"]
    dims = list(val.shape)
    if len(dims) < 2:
        raise ModelLoadError(f"{name} takes a rank-{len(dims)} input; lwdash accepts (batch, ...) inputs")
    if not isinstance(dims[0], torch.SymInt):
        raise ModelLoadError(
            f"{name} was exported with a fixed batch size of {int(dims[0])}; lwdash measures several batch sizes. "
            "Export with a dynamic batch dim: torch.export.export(model, (x,), "
            "dynamic_shapes=({0: torch.export.Dim('batch')},)) with an example batch of 2 or more"
        )
    if val.dtype != torch.float32:
        raise ModelLoadError(f"{name} takes {val.dtype} input; lwdash accepts models with a float32 input tensor")
    per_sample = dims[1:]
    if any(isinstance(d, torch.SymInt) for d in per_sample):
        if input_shape is None:
            raise ModelLoadError(
                f"{name} has a dynamic input size beyond the batch dim; export it with a fixed per-sample shape "
                "or give input_shape (per sample, e.g. (3, 224, 224))"
            )
        shape = input_shape
    else:
        shape = tuple(int(d) for d in per_sample)
        if input_shape is not None and input_shape != shape:
            raise ModelLoadError(
                f"{name} was exported for input {_fmt_shape(shape)} but input_shape {_fmt_shape(input_shape)} was given"
            )
    try:
        # check_guards=False: the guard function would be exec()'d from strings stored in the file
        module: nn.Module = program.module(check_guards=False)
    except Exception as exc:
        raise ModelLoadError(f"could not rebuild a module from {name}: {_reason(exc)}") from exc
    _check_exported_graph(module, name)  # type: ignore[arg-type]
    module = _enable_train_eval(module)  # type: ignore[arg-type]
    module = _to_fp32(module)
    module.eval()
    num_classes = _verify(module, shape, name, None)
    return LoadedModel(module=module, input_shape=shape, num_classes=num_classes, source_format="pt2", arch=None)


# --------------------------------------------------------------------------------------------
# TorchScript
# --------------------------------------------------------------------------------------------
def _load_torchscript(path: Path, name: str, arch: str | None, input_shape: tuple[int, ...] | None) -> LoadedModel:
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise ModelLoadError(
            f"could not read {name} as TorchScript: {_reason(exc)}; accepted formats: {ACCEPTED_FORMATS}"
        ) from exc
    shape = input_shape if input_shape is not None else (get_architecture(arch).input_shape if arch else None)
    if shape is None:
        raise ModelLoadError(
            f"{name} is TorchScript, which does not record the shape of its input; give input_shape (per sample, "
            f"e.g. (1, 8, 8) or (3, 224, 224)) or the architecture it was built from (known: {_known_archs()})"
        )
    _check_torchscript_ops(module, name)
    module = _to_fp32(module).eval()
    num_classes = _verify(module, shape, name, None)
    return LoadedModel(
        module=module, input_shape=shape, num_classes=num_classes, source_format="torchscript", arch=arch
    )


def _check_torchscript_ops(module: torch.jit.ScriptModule, name: str) -> None:
    """Refuse TorchScript whose forward calls an operator that touches host files (``aten::from_file``)."""
    try:
        kinds = {node.kind() for node in module.inlined_graph.nodes()}
    except Exception:  # no forward method: the forward check that follows explains it
        return
    refused = sorted(k for k in kinds if any(op in k for op in _PT2_REFUSED_OPS))
    if refused:
        raise ModelLoadError(
            f"{name} is refused: its TorchScript calls {', '.join(refused)}, which reads or writes files on the "
            f"host. Accepted formats: {ACCEPTED_FORMATS}"
        )


# --------------------------------------------------------------------------------------------
# State dicts (.pt / .pth / .safetensors) and pickles
# --------------------------------------------------------------------------------------------
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")
_STRIP_PREFIXES = ("module.", "_orig_mod.")


def _is_tensor_mapping(obj: object) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def _extract_state_dict(obj: object, name: str) -> dict[str, torch.Tensor]:
    """The tensor mapping inside ``obj``: a state dict, or a checkpoint dict that wraps one."""
    state: Mapping[str, torch.Tensor] | None = None
    if _is_tensor_mapping(obj):
        state = obj  # type: ignore[assignment]
    elif isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            if _is_tensor_mapping(obj.get(key)):
                state = obj[key]
                break
    if state is None:
        what = (
            f"a dict with keys {', '.join(map(repr, list(obj)[:6]))}"
            if isinstance(obj, Mapping)
            else f"a {type(obj).__name__}"
        )
        raise ModelLoadError(
            f"{name} holds {what}, not a state dict (a mapping from parameter names to tensors); "
            f"accepted formats: {ACCEPTED_FORMATS}"
        )
    out = dict(state)
    for prefix in _STRIP_PREFIXES:  # DataParallel / torch.compile wrappers
        if all(k.startswith(prefix) for k in out):
            out = {k[len(prefix) :]: v for k, v in out.items()}
    return out


def _last_linear_key(module: nn.Module) -> str | None:
    names = [n for n, m in module.named_modules() if isinstance(m, nn.Linear)]
    return f"{names[-1]}.weight" if names else None


def _first(items: list[str], n: int = 5) -> str:
    shown = ", ".join(items[:n])
    return shown + (f", ... ({len(items) - n} more)" if len(items) > n else "")


def _module_from_state_dict(
    state: dict[str, torch.Tensor], arch: str | None, name: str, source_format: str
) -> LoadedModel:
    if arch is None:
        raise ModelLoadError(
            f"{name} is a state dict (weights only, no architecture); choose the architecture it was trained "
            f"with. Known architectures: {_known_archs()}"
        )
    spec = get_architecture(arch)
    module = build_architecture(arch, num_classes=10)
    head_key = _last_linear_key(module)
    if head_key is not None and head_key in state and state[head_key].ndim == 2:
        num_classes = int(state[head_key].shape[0])
        if num_classes != 10 and num_classes >= 1:
            module = build_architecture(arch, num_classes=num_classes)

    expected = module.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: file {_fmt_shape(tuple(state[k].shape))} vs architecture {_fmt_shape(tuple(expected[k].shape))}"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({_first(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({_first(unexpected)})")
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatches ({_first(mismatched, 3)})")
        raise ModelLoadError(
            f"the state dict in {name} does not fit architecture {arch!r}: {'; '.join(parts)}. Choose the "
            f"architecture the weights were trained with (accepted architectures: {_known_archs()})"
        )
    try:
        module.load_state_dict(state, strict=True)
    except Exception as exc:  # dtype problems (e.g. quantized tensors) after the key check
        raise ModelLoadError(f"could not load the state dict in {name} into {arch!r}: {_reason(exc)}") from exc
    module = module.float().eval()
    num_classes = _verify(module, spec.input_shape, name, None)
    return LoadedModel(
        module=module, input_shape=spec.input_shape, num_classes=num_classes, source_format=source_format, arch=arch
    )


def _pickle_refusal(name: str, exc: BaseException) -> ModelLoadError:
    match = re.search(r"GLOBAL ([\w.]+)", str(exc))
    found = f" (it references {match.group(1)})" if match else ""
    return ModelLoadError(
        f"{name} is a pickled Python object{found}, not a plain state dict: loading it would run arbitrary code "
        "from the file, so it is refused. Upload the state dict of a known architecture "
        "(torch.save(model.state_dict(), 'model.pt') or a .safetensors file), a torch.export .pt2, TorchScript "
        f"or ONNX instead. Operators can allow pickles for trusted local files with {_PICKLE_ENV}=1."
    )


def _is_pickle_refusal(exc: BaseException) -> bool:
    text = str(exc)
    return (
        "Unsupported global" in text
        or "Unsupported class" in text
        or "WeightsUnpickler error" in text  # e.g. "Unsupported operand": pickle opcodes a state dict never uses
        or ("weights_only" in text.lower() and "GLOBAL" in text)
    )


def _load_torch_pickle(
    path: Path, name: str, arch: str | None, input_shape: tuple[int, ...] | None, allow_pickle: bool
) -> LoadedModel:
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, ValueError, EOFError, OSError) as exc:
        if not _is_pickle_refusal(exc):
            raise ModelLoadError(
                f"could not read {name} as a torch.save state dict: {_reason(exc)}; accepted formats: {ACCEPTED_FORMATS}"
            ) from exc
        if not allow_pickle:
            raise _pickle_refusal(name, exc) from None
        try:  # the operator has allowed pickles for trusted local files
            obj = torch.load(str(path), map_location="cpu", weights_only=False)
        except Exception as exc2:
            raise ModelLoadError(f"could not unpickle {name}: {_reason(exc2)}") from exc2
    except Exception as exc:  # corrupt zip members and other engine errors
        raise ModelLoadError(
            f"could not read {name} as a torch.save state dict: {_reason(exc)}; accepted formats: {ACCEPTED_FORMATS}"
        ) from exc

    if isinstance(obj, nn.Module):  # only reachable with allow_pickle
        shape = input_shape if input_shape is not None else (get_architecture(arch).input_shape if arch else None)
        if shape is None:
            raise ModelLoadError(
                f"{name} is a pickled module, which does not record the shape of its input; give input_shape "
                f"(per sample, e.g. (1, 8, 8)) or its architecture (known: {_known_archs()})"
            )
        module = _to_fp32(obj).eval()
        num_classes = _verify(module, shape, name, None)
        return LoadedModel(module=module, input_shape=shape, num_classes=num_classes, source_format="pickle", arch=arch)
    state = _extract_state_dict(obj, name)
    return _module_from_state_dict(state, arch, name, "state_dict")


def _load_safetensors(path: Path, name: str, arch: str | None) -> LoadedModel:
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        state = load_file(str(path), device="cpu")
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
    except Exception as exc:  # SafetensorError, OSError
        raise ModelLoadError(
            f"could not read {name} as safetensors: {_reason(exc)}; accepted formats: {ACCEPTED_FORMATS}"
        ) from exc
    if arch is None and metadata.get("arch") in list_architectures():
        arch = metadata["arch"]  # written by sample_models/train.py and lwdash's own exports
    if not state:
        raise ModelLoadError(f"{name} holds no tensors; accepted formats: {ACCEPTED_FORMATS}")
    return _module_from_state_dict(_extract_state_dict(state, name), arch, name, "safetensors")


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------
def _allow_pickle_default() -> bool:
    return os.environ.get(_PICKLE_ENV, "").strip() == "1"


def load_model_file(
    path: Path,
    *,
    arch: str | None = None,
    input_shape: tuple[int, ...] | None = None,
    allow_pickle: bool | None = None,
    display_name: str | None = None,
) -> LoadedModel:
    """Load a model file of any accepted format, recognised by content.

    Args:
        path: the uploaded file.
        arch: architecture key (:func:`lwdash.models.registry.list_architectures`); required for
            state dicts (except lwdash's own safetensors, which record it), optional for
            TorchScript (gives the input shape).
        input_shape: per-sample input shape, no batch dim; needed for TorchScript without
            ``arch`` and for graphs with symbolic sizes beyond the batch dim.
        allow_pickle: load full pickled modules (runs code from the file: trusted local files
            only). ``None`` reads the environment variable ``LWDASH_ALLOW_PICKLE`` (``1`` allows).
        display_name: the name the user knows the file by (e.g. an upload's original file name),
            used in every message instead of ``path.name`` (which may be a generated temp name).

    Returns:
        The model: fp32, eval mode, checked by one forward pass on ``(2, *input_shape)`` zeros.

    Raises:
        ModelLoadError: unreadable, refused or mismatching file; the message says what was wrong
            and what is accepted.
    """
    path = Path(path)
    name = display_name or path.name
    if not path.is_file():
        raise ModelLoadError(f"no model file at {path}")
    check_upload_size(path.stat().st_size, name)
    if arch is not None:
        get_architecture(arch)  # unknown name: the error lists the known ones
    shape = _check_input_shape(input_shape)
    if allow_pickle is None:
        allow_pickle = _allow_pickle_default()

    fmt = detect_model_format(path)
    if fmt == "onnx":
        return _load_onnx(path, name, shape, recognised=False)
    if fmt == "pt2":
        return _load_pt2(path, name, shape)
    if fmt == "torchscript":
        return _load_torchscript(path, name, arch, shape)
    if fmt == "torch_pickle":
        return _load_torch_pickle(path, name, arch, shape, allow_pickle)
    if fmt == "safetensors":
        return _load_safetensors(path, name, arch)
    if fmt == "npz":
        raise ModelLoadError(
            f"{name} is a NumPy .npz archive (a data set), not a model; upload it as a data set. "
            f"Accepted model formats: {ACCEPTED_FORMATS}"
        )
    if fmt == "broken_zip":
        raise ModelLoadError(
            f"could not read {name}: it starts like a zip archive (the container of TorchScript, torch.export "
            ".pt2 and torch.save files) but the archive is truncated or corrupt; upload the complete file. "
            f"Accepted formats: {ACCEPTED_FORMATS}"
        )
    raise ModelLoadError(
        f"{name} is a zip archive but not TorchScript, a torch.export .pt2 or a torch.save file; "
        f"accepted formats: {ACCEPTED_FORMATS}"
    )


def model_file_facts(
    path: str, arch: str | None, input_shape: tuple[int, ...] | None, display_name: str
) -> dict[str, Any]:
    """Load a model file and return what the store keeps of it (run by the store in a child process).

    Returns:
        ``source_format``, ``arch``, ``input_shape`` and ``num_classes`` of the loaded model.

    Raises:
        ModelLoadError: as :func:`load_model_file`.
    """
    m = load_model_file(Path(path), arch=arch, input_shape=input_shape, display_name=display_name)
    return {"source_format": m.source_format, "arch": m.arch, "input_shape": tuple(m.input_shape),
            "num_classes": int(m.num_classes)}
