"""The technique registry: each technique is a typed, frozen config plus one registered function.

A technique function takes the caller's model (never mutated), its config and a
:class:`RunContext`, and returns a :class:`CompressedModel`. Forms (``lwdash.ui.forms``),
the CLI and the contract tests are all generated from :func:`form_spec` and the registry,
so adding a technique needs no UI or engine change.

This module is the registry's public face; its parts live in layers that import only downwards:
:mod:`~lwdash.techniques.knobs` (configs and knobs), :mod:`~lwdash.techniques.context` (what a
technique is given and returns), :mod:`~lwdash.techniques.registry` (registration and lookup),
:mod:`~lwdash.techniques.config_io` (pipeline steps, the stored form, coercion) and
:mod:`~lwdash.techniques.field_spec` (form descriptions).
"""
from __future__ import annotations

from lwdash.techniques.config_io import CONFIG_FORMAT_VERSION as CONFIG_FORMAT_VERSION
from lwdash.techniques.config_io import (
    PipelineStep,
    config_from_dict,
    config_to_dict,
    jsonable,
)
from lwdash.techniques.config_io import build_config as build_config
from lwdash.techniques.context import UPLOADED_GRAPH_NOTE as UPLOADED_GRAPH_NOTE
from lwdash.techniques.context import CompressedModel, RunContext
from lwdash.techniques.context import ProgressFn as ProgressFn
from lwdash.techniques.field_spec import FieldSpec, form_spec
from lwdash.techniques.knobs import C as C
from lwdash.techniques.knobs import TechniqueConfig, knob, knob_fields
from lwdash.techniques.registry import ApplyFn as ApplyFn
from lwdash.techniques.registry import Technique, get_technique, list_techniques, register

__all__ = [
    "CompressedModel",
    "FieldSpec",
    "PipelineStep",
    "RunContext",
    "Technique",
    "TechniqueConfig",
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
