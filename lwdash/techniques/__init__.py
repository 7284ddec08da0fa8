"""Compression techniques. Importing this package registers every family."""
from __future__ import annotations

from lwdash.techniques import (  # noqa: F401  (importing a family registers its techniques)
    distillation,
    low_rank,
    nm_sparsity,
    pipeline,
    precision,
    pruning,
    qat,
    quantization,
    structured,
)
from lwdash.techniques.base import (
    CompressedModel,
    FieldSpec,
    PipelineStep,
    RunContext,
    Technique,
    TechniqueConfig,
    build_config,
    config_from_dict,
    config_to_dict,
    form_spec,
    get_technique,
    jsonable,
    knob,
    knob_fields,
    list_techniques,
    register,
)

__all__ = [
    "CompressedModel",
    "FieldSpec",
    "PipelineStep",
    "RunContext",
    "Technique",
    "TechniqueConfig",
    "build_config",
    "config_from_dict",
    "config_to_dict",
    "form_spec",
    "get_technique",
    "jsonable",
    "knob",
    "knob_fields",
    "list_techniques",
    "register",
]
