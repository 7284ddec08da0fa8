"""Helpers shared by the model loaders: messages, shape checks, the verifying forward pass.

Private to :mod:`lwdash.models`; the public entry point is :func:`lwdash.models.load_model_file`.
"""
from __future__ import annotations

import re

import torch
from torch import nn

from lwdash.models.base import ModelLoadError

__all__ = [
    "ACCEPTED_FORMATS",
    "check_input_shape",
    "fmt_shape",
    "known_archs",
    "mib",
    "reason",
    "to_fp32",
    "verify",
]

ACCEPTED_FORMATS = (
    "ONNX (.onnx, one self-contained file), a torch.export program (.pt2), TorchScript (.pt/.ts), "
    "or the state dict (.pt/.pth/.safetensors) of a known architecture"
)
_MAX_REASON_CHARS = 400


def mib(n_bytes: int) -> str:
    """``n_bytes`` in MiB with one decimal, e.g. ``"1.5 MiB"``."""
    return f"{n_bytes / (1024 * 1024):.1f} MiB"


def reason(exc: BaseException) -> str:
    """A one-paragraph reason from an engine exception (torch messages can run to pages)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    if len(text) > _MAX_REASON_CHARS:
        text = text[: _MAX_REASON_CHARS - 3] + "..."
    return text


def known_archs() -> str:
    """The architecture names a state dict can name, for messages."""
    from lwdash.models.registry import describe_architectures

    return describe_architectures()


def fmt_shape(shape: tuple[int, ...]) -> str:
    """``(1, 8, 8)``; a one-dim shape keeps its trailing comma."""
    return "(" + ", ".join(str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def check_input_shape(input_shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
    """Validate a per-sample input shape given by the caller.

    Raises:
        ModelLoadError: not a non-empty tuple of positive ints.
    """
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


def to_fp32(module: nn.Module) -> nn.Module:
    """``module`` with every floating-point parameter and buffer in float32."""
    tensors = list(module.parameters()) + list(module.buffers())
    if any(t.is_floating_point() and t.dtype != torch.float32 for t in tensors):
        module = module.float()
    return module


def verify(module: nn.Module, input_shape: tuple[int, ...], name: str, expected_classes: int | None) -> int:
    """Run one forward pass on zeros of ``(2, *input_shape)``; return the number of output classes.

    Raises:
        ModelLoadError: the pass fails, or the output is not ``(2, num_classes)`` float32 logits.
    """
    batch_shape = (2, *input_shape)
    try:
        with torch.no_grad():
            out = module(torch.zeros(batch_shape, dtype=torch.float32))
    except Exception as exc:  # any engine error: the model cannot take this input
        raise ModelLoadError(
            f"{name} was read, but a test forward pass on zeros of shape {fmt_shape(batch_shape)} failed: "
            f"{reason(exc)}. Check that the input shape {fmt_shape(input_shape)} (per sample, no batch dim) "
            "is the one the model was trained with and that the batch dim is dynamic."
        ) from exc
    if not isinstance(out, torch.Tensor):
        raise ModelLoadError(
            f"{name} returns {type(out).__name__}, not one logits tensor; lwdash accepts classifiers that "
            "return a (batch, num_classes) tensor"
        )
    if out.ndim != 2 or out.shape[0] != 2:
        raise ModelLoadError(
            f"{name} returns shape {fmt_shape(tuple(out.shape))} for a batch of 2; lwdash accepts classifiers "
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
