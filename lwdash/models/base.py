"""Types shared by every model loader."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    import onnx

__all__ = ["LoadedModel", "ModelLoadError"]


class ModelLoadError(ValueError):
    """A model file was refused or could not be read; the message names the problem and what is accepted."""


@dataclass
class LoadedModel:
    """A model ready to compress and measure.

    Attributes:
        module: fp32 ``nn.Module`` in eval mode, taking ``(B, *input_shape)`` float32 input and
            returning ``(B, num_classes)`` logits. Treat as read-only (techniques deep-copy).
        input_shape: per-sample input shape without the batch dim, e.g. ``(1, 8, 8)``.
        num_classes: number of output logits.
        source_format: one of ``sample``, ``state_dict``, ``safetensors``, ``pt2``, ``torchscript``, ``onnx``.
        arch: architecture registry key when known (samples, state dicts), else ``None``.
        onnx_graph: for an ONNX upload with a dynamic batch whose graph ONNX Runtime runs with the
            same outputs as ``module``: the uploaded graph, which the baseline is measured as and
            ONNX-level techniques (ONNX Runtime quantization, fp16) act on; else ``None``.
    """

    module: nn.Module
    input_shape: tuple[int, ...]
    num_classes: int
    source_format: str
    arch: str | None = None
    onnx_graph: onnx.ModelProto | None = None
