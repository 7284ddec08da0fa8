"""Loading an uploaded TorchScript file (``torch.jit.save``), refusing operators that touch host files.

The entry point for every format is :func:`lwdash.models.loading.load_model_file`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lwdash.models._loadutil import ACCEPTED_FORMATS, known_archs, reason, to_fp32, verify
from lwdash.models.base import LoadedModel, ModelLoadError
from lwdash.models.pt2_vet import PT2_REFUSED_OPS
from lwdash.models.registry import get_architecture

__all__ = ["load_torchscript"]


def load_torchscript(path: Path, name: str, arch: str | None, input_shape: tuple[int, ...] | None) -> LoadedModel:
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
