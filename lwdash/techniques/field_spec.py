"""Form descriptions of configs: :func:`form_spec` turns a config type into :class:`FieldSpec` rows.

Pure data: ``lwdash.ui.forms``, the CLI and the contract tests render or read them; no streamlit here.
"""
from __future__ import annotations

import enum
import typing
from dataclasses import dataclass
from typing import Any, Literal

from lwdash.techniques.config_io import PipelineStep
from lwdash.techniques.knobs import TechniqueConfig, knob_fields

__all__ = ["FieldSpec", "form_spec"]


@dataclass(frozen=True)
class FieldSpec:
    """How one config field is shown and bounded; pure data, rendered by ``lwdash.ui.forms``."""

    name: str
    label: str
    widget: Literal["slider", "number", "int", "toggle", "select", "text", "steps"]
    default: Any
    help: str
    options: tuple[Any, ...] = ()
    ge: float | None = None
    le: float | None = None
    gt: float | None = None
    lt: float | None = None
    step: float | None = None
    sweepable: bool = False


def _widget_for(tp: Any) -> tuple[str, tuple[Any, ...]]:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "select", tuple(typing.get_args(tp))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "select", tuple(m.value for m in tp)
    if tp is bool:
        return "toggle", ()
    if tp is int:
        return "int", ()
    if tp is float:
        return "slider", ()
    if tp is str:
        return "text", ()
    if origin is tuple and typing.get_args(tp)[:1] == (PipelineStep,):
        return "steps", ()
    raise TypeError(f"unsupported knob type {tp!r}")


#: Labels of knob names that every technique spells the same way (so no form says "Lr" beside "Learning rate").
_LABELS = {"lr": "Learning rate"}


def form_spec(cfg_type: type[TechniqueConfig]) -> list[FieldSpec]:
    """Describe every field of ``cfg_type`` as a :class:`FieldSpec` (no streamlit involved)."""
    hints = typing.get_type_hints(cfg_type)
    specs: list[FieldSpec] = []
    for f in knob_fields(cfg_type):
        meta = f.metadata
        widget, options = _widget_for(hints[f.name])
        bounded = meta.get("ge") is not None and (meta.get("le") is not None or meta.get("lt") is not None)
        if widget == "slider" and not bounded:
            widget = "number"
        specs.append(
            FieldSpec(
                name=f.name,
                label=meta.get("label") or _LABELS.get(f.name) or f.name.replace("_", " ").capitalize(),
                widget=widget,  # type: ignore[arg-type]
                default=f.default,
                help=meta.get("help", ""),
                options=options,
                ge=meta.get("ge"),
                le=meta.get("le"),
                gt=meta.get("gt"),
                lt=meta.get("lt"),
                step=meta.get("step"),
                sweepable=bool(meta.get("sweepable", False)),
            )
        )
    return specs
