"""Loading weights-only uploads: ``torch.save`` state dicts (``.pt``/``.pth``), ``.safetensors`` files, and pickles.

A state dict is loaded into an architecture of :mod:`lwdash.models.registry`. A full pickled
``nn.Module`` is refused unless the operator allows pickles (``LWDASH_ALLOW_PICKLE=1``). The entry
point for every format is :func:`lwdash.models.loading.load_model_file`.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from lwdash.models._loadutil import ACCEPTED_FORMATS, fmt_shape, known_archs, reason, to_fp32, verify
from lwdash.models.base import LoadedModel, ModelLoadError
from lwdash.models.registry import build_architecture, get_architecture, list_architectures

__all__ = ["PICKLE_ENV", "allow_pickle_default", "load_safetensors", "load_torch_pickle"]

PICKLE_ENV = "LWDASH_ALLOW_PICKLE"

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
        f"or ONNX instead. Operators can allow pickles for trusted local files with {PICKLE_ENV}=1."
    )


def _is_pickle_refusal(exc: BaseException) -> bool:
    text = str(exc)
    return (
        "Unsupported global" in text
        or "Unsupported class" in text
        or "WeightsUnpickler error" in text  # e.g. "Unsupported operand": pickle opcodes a state dict never uses
        or ("weights_only" in text.lower() and "GLOBAL" in text)
    )


def load_torch_pickle(
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


def load_safetensors(path: Path, name: str, arch: str | None, input_shape: tuple[int, ...] | None = None) -> LoadedModel:
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


def allow_pickle_default() -> bool:
    return os.environ.get(PICKLE_ENV, "").strip() == "1"
