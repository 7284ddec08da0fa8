"""Compression techniques. Importing this package registers every family."""
from __future__ import annotations

from lwdash.techniques import (  # noqa: F401  (importing a family registers its techniques)
    distillation,
    low_rank,
    precision,
    pruning,
    quantization,
    structured,
)
from lwdash.techniques.base import (
    CompressedModel,
    FieldSpec,
    RunContext,
    Technique,
    TechniqueConfig,
    build_config,
    config_from_dict,
    config_to_dict,
    form_spec,
    get_technique,
    knob,
    list_techniques,
    register,
)

__all__ = [
    "CompressedModel",
    "FieldSpec",
    "RunContext",
    "Technique",
    "TechniqueConfig",
    "build_config",
    "config_from_dict",
    "config_to_dict",
    "form_spec",
    "get_technique",
    "knob",
    "list_techniques",
    "register",
]
