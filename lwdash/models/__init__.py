"""Models: the architecture registry, the bundled samples, and loading every accepted format.

Public names load on first use: importing :mod:`lwdash.models.catalog` stays free of torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from lwdash.lazy import lazy_exports

if TYPE_CHECKING:
    from lwdash.models.base import LoadedModel, ModelLoadError
    from lwdash.models.loading import (
        ACCEPTED_FORMATS,
        MAX_UPLOAD_BYTES,
        check_upload_size,
        detect_model_format,
        load_model_file,
    )
    from lwdash.models.registry import (
        ArchitectureSpec,
        architecture_input_shape,
        build_architecture,
        get_architecture,
        list_architectures,
    )
    from lwdash.models.samples import REBUILD_COMMAND, SampleInfo, list_samples, load_sample

__all__ = [
    "ACCEPTED_FORMATS",
    "MAX_UPLOAD_BYTES",
    "REBUILD_COMMAND",
    "ArchitectureSpec",
    "LoadedModel",
    "ModelLoadError",
    "SampleInfo",
    "architecture_input_shape",
    "build_architecture",
    "check_upload_size",
    "detect_model_format",
    "get_architecture",
    "list_architectures",
    "list_samples",
    "load_model_file",
    "load_sample",
]

#: Where each public name is defined: imported on first use (PEP 562), so a process that
#: needs only this package's torch-free parts (the worker's supervisor) never loads torch.
_EXPORTS = {
    "LoadedModel": "lwdash.models.base",
    "ModelLoadError": "lwdash.models.base",
    "ACCEPTED_FORMATS": "lwdash.models.loading",
    "MAX_UPLOAD_BYTES": "lwdash.models.loading",
    "check_upload_size": "lwdash.models.loading",
    "detect_model_format": "lwdash.models.loading",
    "load_model_file": "lwdash.models.loading",
    "ArchitectureSpec": "lwdash.models.registry",
    "architecture_input_shape": "lwdash.models.registry",
    "build_architecture": "lwdash.models.registry",
    "get_architecture": "lwdash.models.registry",
    "list_architectures": "lwdash.models.registry",
    "REBUILD_COMMAND": "lwdash.models.samples",
    "SampleInfo": "lwdash.models.samples",
    "list_samples": "lwdash.models.samples",
    "load_sample": "lwdash.models.samples",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
