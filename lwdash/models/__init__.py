"""Models: the architecture registry, the bundled samples, and loading every accepted format."""

from __future__ import annotations

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
