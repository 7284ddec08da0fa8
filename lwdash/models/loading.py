"""Load an uploaded model file of any accepted format into a :class:`LoadedModel`.

Accepted formats, recognised by content (the file suffix is only a hint):

- ONNX (``.onnx``): one self-contained file, converted to PyTorch with onnx2torch;
- a ``torch.export`` program (``.pt2``) with a dynamic batch dim, vetted before it is loaded and
  given real Conv / Linear / BatchNorm layers (:mod:`lwdash.models.pt2_import`), so it takes every
  technique a state dict of the same model takes;
- TorchScript (``torch.jit.save``); its input shape comes from ``arch`` or ``input_shape``;
- a state dict (``torch.save(model.state_dict())``, ``.pt``/``.pth``) or a ``.safetensors`` file,
  for an architecture of :mod:`lwdash.models.registry`.

A full pickled ``nn.Module`` (``torch.save(model)``) would run arbitrary code when unpickled: it is
refused, unless the operator allows pickles for trusted local use (``allow_pickle=True`` or the
environment variable ``LWDASH_ALLOW_PICKLE=1``). Every loaded model is returned in eval mode, in
fp32, after one forward pass on zeros has checked its input and output shapes.
"""

from __future__ import annotations

import math
import os
import pickle
import re
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lwdash.models._loadutil import (
    ACCEPTED_FORMATS,
    check_input_shape,
    fmt_shape,
    known_archs,
    mib,
    reason,
    to_fp32,
    verify,
)
from lwdash.models.base import LoadedModel, ModelLoadError
from lwdash.models.pt2_import import load_pt2
from lwdash.models.pt2_vet import PT2_REFUSED_OPS
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
_ONNX_TARGET_OPSET = 17  # onnx2torch has converters for most ops up to opset 17
_PICKLE_ENV = "LWDASH_ALLOW_PICKLE"


# --------------------------------------------------------------------------------------------
# Upload limits
# --------------------------------------------------------------------------------------------
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
            f"{name} is {mib(n_bytes)} ({n_bytes:,} bytes); the upload limit is {mib(limit)} ({limit:,} bytes, "
            f"set by {UPLOAD_LIMIT_ENV})"
        )


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
        # Set by _mark_flattens when this reshape was seen to be a flatten of everything after the batch
        # ((-1, k) on an input of k values per sample): it then stays one when pruning changes k.
        self.flatten = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.flatten:
            return x.reshape(x.shape[0], -1)
        return x.reshape([x.shape[i] if s == 0 else s for i, s in enumerate(self.shape)])


def _mark_flattens(module: nn.Module, input_shape: tuple[int, ...]) -> None:
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
            errors.append(reason(exc))
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
    module = _convert_onnx(model, name)
    module = to_fp32(module).eval()
    _mark_flattens(module, shape)
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


# --------------------------------------------------------------------------------------------
# TorchScript
# --------------------------------------------------------------------------------------------
def _load_torchscript(path: Path, name: str, arch: str | None, input_shape: tuple[int, ...] | None) -> LoadedModel:
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise ModelLoadError(
            f"could not read {name} as TorchScript: {reason(exc)}; accepted formats: {ACCEPTED_FORMATS}"
        ) from exc
    shape = input_shape if input_shape is not None else (get_architecture(arch).input_shape if arch else None)
    if shape is None:
        raise ModelLoadError(
            f"{name} is TorchScript, which does not record the shape of its input; give input_shape (per sample, "
            f"e.g. (1, 8, 8) or (3, 224, 224)) or the architecture it was built from (known: {known_archs()})"
        )
    _check_torchscript_ops(module, name)
    module = to_fp32(module).eval()
    num_classes = verify(module, shape, name, None)
    return LoadedModel(
        module=module, input_shape=shape, num_classes=num_classes, source_format="torchscript", arch=arch
    )


def _check_torchscript_ops(module: torch.jit.ScriptModule, name: str) -> None:
    """Refuse TorchScript whose forward calls an operator that touches host files (``aten::from_file``)."""
    try:
        kinds = {node.kind() for node in module.inlined_graph.nodes()}
    except Exception:  # no forward method: the forward check that follows explains it
        return
    refused = sorted(k for k in kinds if any(op in k for op in PT2_REFUSED_OPS))
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
    state: dict[str, torch.Tensor], arch: str | None, name: str, source_format: str,
    input_shape: tuple[int, ...] | None = None,
) -> LoadedModel:
    if arch is None:
        raise ModelLoadError(
            f"{name} is a state dict (weights only, no architecture); choose the architecture it was trained "
            f"with. Known architectures: {known_archs()}"
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
        f"{k}: file {fmt_shape(tuple(state[k].shape))} vs architecture {fmt_shape(tuple(expected[k].shape))}"
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
            f"architecture the weights were trained with (accepted architectures: {known_archs()})"
        )
    try:
        module.load_state_dict(state, strict=True)
    except Exception as exc:  # dtype problems (e.g. quantized tensors) after the key check
        raise ModelLoadError(f"could not load the state dict in {name} into {arch!r}: {reason(exc)}") from exc
    module = module.float().eval()
    shape = input_shape or spec.input_shape  # the weights do not say it: given, else the architecture's own
    num_classes = verify(module, shape, name, None)
    return LoadedModel(module=module, input_shape=shape, num_classes=num_classes, source_format=source_format, arch=arch)


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
                f"could not read {name} as a torch.save state dict: {reason(exc)}; accepted formats: {ACCEPTED_FORMATS}"
            ) from exc
        if not allow_pickle:
            raise _pickle_refusal(name, exc) from None
        try:  # the operator has allowed pickles for trusted local files
            obj = torch.load(str(path), map_location="cpu", weights_only=False)
        except Exception as exc2:
            raise ModelLoadError(f"could not unpickle {name}: {reason(exc2)}") from exc2
    except Exception as exc:  # corrupt zip members and other engine errors
        raise ModelLoadError(
            f"could not read {name} as a torch.save state dict: {reason(exc)}; accepted formats: {ACCEPTED_FORMATS}"
        ) from exc

    if isinstance(obj, nn.Module):  # only reachable with allow_pickle
        shape = input_shape if input_shape is not None else (get_architecture(arch).input_shape if arch else None)
        if shape is None:
            raise ModelLoadError(
                f"{name} is a pickled module, which does not record the shape of its input; give input_shape "
                f"(per sample, e.g. (1, 8, 8)) or its architecture (known: {known_archs()})"
            )
        module = to_fp32(obj).eval()
        num_classes = verify(module, shape, name, None)
        return LoadedModel(module=module, input_shape=shape, num_classes=num_classes, source_format="pickle", arch=arch)
    state = _extract_state_dict(obj, name)
    return _module_from_state_dict(state, arch, name, "state_dict", input_shape)


def _load_safetensors(path: Path, name: str, arch: str | None, input_shape: tuple[int, ...] | None = None) -> LoadedModel:
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        state = load_file(str(path), device="cpu")
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
    except Exception as exc:  # SafetensorError, OSError
        raise ModelLoadError(
            f"could not read {name} as safetensors: {reason(exc)}; accepted formats: {ACCEPTED_FORMATS}"
        ) from exc
    if arch is None and metadata.get("arch") in list_architectures():
        arch = metadata["arch"]  # written by sample_models/train.py and lwdash's own exports
    if not state:
        raise ModelLoadError(f"{name} holds no tensors; accepted formats: {ACCEPTED_FORMATS}")
    return _module_from_state_dict(_extract_state_dict(state, name), arch, name, "safetensors", input_shape)


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
    shape = check_input_shape(input_shape)
    if allow_pickle is None:
        allow_pickle = _allow_pickle_default()

    fmt = detect_model_format(path)
    if fmt == "onnx":
        return _load_onnx(path, name, shape, recognised=False)
    if fmt == "pt2":
        return load_pt2(path, name, shape)
    if fmt == "torchscript":
        return _load_torchscript(path, name, arch, shape)
    if fmt == "torch_pickle":
        return _load_torch_pickle(path, name, arch, shape, allow_pickle)
    if fmt == "safetensors":
        return _load_safetensors(path, name, arch, shape)
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
