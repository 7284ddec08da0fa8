"""What a technique is given and what it returns: :class:`RunContext` and :class:`CompressedModel`."""
from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

if typing.TYPE_CHECKING:
    import onnx

    from lwdash.data import Dataset

__all__ = ["UPLOADED_GRAPH_NOTE", "CompressedModel", "ProgressFn", "RunContext"]

ProgressFn = Callable[[float, str], None]


def _no_progress(fraction: float, message: str) -> None:  # pragma: no cover - trivial
    del fraction, message


#: The note of a technique that worked on the uploaded ONNX graph itself.
UPLOADED_GRAPH_NOTE = ("Built from the uploaded ONNX graph itself, not from a re-export of its PyTorch conversion "
                       "(the PyTorch form is built from the conversion).")


@dataclass(frozen=True)
class RunContext:
    """What a technique may use besides the model: data splits, seed, threads, progress.

    ``source_onnx`` is the uploaded ONNX graph of the model a technique is given, when the model
    was uploaded as ONNX with a dynamic batch and ONNX Runtime reproduces its conversion's
    outputs; ``None`` otherwise, and for every pipeline step after the first (its input is no
    longer the upload). Techniques that act on an ONNX graph use it through :meth:`input_onnx`.
    ``teacher`` is the job's own input model (frozen, eval mode), the same for every pipeline
    step: what recovery training distils from (:mod:`lwdash.techniques.recovery`).
    """

    data: Dataset
    seed: int = 0
    threads: int = 1
    progress: ProgressFn = _no_progress
    source_onnx: onnx.ModelProto | None = None
    teacher: nn.Module | None = None

    def input_onnx(self, model: nn.Module) -> tuple[onnx.ModelProto, bool]:
        """The fp32 ONNX graph of ``model``, the technique's own input: ``(graph, is_the_upload)``.

        The uploaded graph (a copy) when there is one, else the runner's export of ``model``.
        """
        if self.source_onnx is not None:
            import onnx

            graph = onnx.ModelProto()
            graph.CopyFrom(self.source_onnx)
            return graph, True
        import copy

        from lwdash.techniques._common import export_onnx_proto

        return export_onnx_proto(copy.deepcopy(model).eval(), tuple(self.input_shape)), False

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.data.input_shape

    def example_inputs(self, batch: int = 1) -> tuple[torch.Tensor]:
        """A real batch from the calibration split, shaped ``(batch, *input_shape)``."""
        return (self.data.calib.x[:batch].clone(),)


@dataclass
class CompressedModel:
    """A technique's output.

    Attributes:
        module: the PyTorch form; runs on float32 input ``(B, *input_shape)`` and is saved as ``.pt2``.
        onnx_model: set when the technique builds the ONNX artifact itself (for example ONNX
            Runtime quantization); otherwise the runner exports ``module``.
        notes: honest flags shown next to the result (for example "zeros do not speed up dense kernels").
        steps: per-step records for pipelines (free-form dicts of metrics).
    """

    module: nn.Module
    onnx_model: onnx.ModelProto | None = None
    notes: tuple[str, ...] = ()
    steps: tuple[dict[str, Any], ...] = ()
