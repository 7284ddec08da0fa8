"""Technique configs and their knobs: the frozen config base class and the :func:`knob` field declaration.

A knob carries its default, bounds, choices and help text in the dataclass field's metadata;
:class:`TechniqueConfig` checks them whenever a config is built, and :func:`knob_fields` gives
the fields in the order forms, labels and listings show them.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from torch import nn

__all__ = ["C", "TechniqueConfig", "knob", "knob_fields"]


@dataclass(frozen=True)
class TechniqueConfig:
    """Base class of every technique config: frozen, typed, fields declared with :func:`knob`.

    ``__post_init__`` checks every knob's bounds and choices, so an out-of-range config can
    never be built; subclasses that add their own ``__post_init__`` call ``super().__post_init__()``.
    """

    def __post_init__(self) -> None:
        _check_fields(self)

    def validate_for(self, model: nn.Module, input_shape: tuple[int, ...]) -> None:
        """Raise ``ValueError`` if this config cannot apply to ``model`` (checked before queueing).

        The default accepts every model; techniques override it for model-dependent checks.
        """
        del model, input_shape


def knob(
    default: Any,
    *,
    help: str,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    step: float | None = None,
    label: str | None = None,
    sweepable: bool = False,
    stored_default: Any = dataclasses.MISSING,
    since: int = 2,
    group: str = "",
) -> Any:
    """Declare a config field with its default, bounds and help text (read by :func:`form_spec`).

    ``sweepable`` marks a numeric knob for which the form accepts several values at once,
    each of which becomes its own job (for example pruning ratios 0.3, 0.5, 0.7).
    ``stored_default`` is the value a stored config that predates the knob was run with (a knob
    added later with a different default): :func:`config_from_dict` fills it in for records
    written before :data:`CONFIG_FORMAT_VERSION` ``since`` (the version that added the knob), so
    an old job reads back as what it ran. ``group`` names a set of knobs that forms show after the
    technique's own (``"recovery"``: the training that follows a structural change).
    """
    meta = {
        "help": help,
        "ge": ge,
        "le": le,
        "gt": gt,
        "lt": lt,
        "step": step,
        "label": label,
        "sweepable": sweepable,
        "group": group,
    }
    if stored_default is not dataclasses.MISSING:
        meta["stored_default"] = stored_default
        meta["since"] = since
    return field(default=default, metadata=meta)


C = TypeVar("C", bound=TechniqueConfig)


def knob_fields(cfg: type[TechniqueConfig] | TechniqueConfig) -> list[dataclasses.Field[Any]]:
    """A config's fields in display order: the technique's own, then each group's (shared knobs declared in a
    base class, such as recovery's), each in declaration order. Forms, labels and listings use this order."""
    return sorted(dataclasses.fields(cfg), key=lambda f: bool(f.metadata.get("group")))


def _check_fields(cfg: TechniqueConfig) -> None:
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        tp = hints[f.name]
        if typing.get_origin(tp) is Literal and v not in typing.get_args(tp):
            raise ValueError(f"{f.name} must be one of {list(typing.get_args(tp))}, got {v!r}")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        m = f.metadata
        if m.get("ge") is not None and v < m["ge"]:
            raise ValueError(f"{f.name} must be >= {m['ge']}, got {v}")
        if m.get("gt") is not None and v <= m["gt"]:
            raise ValueError(f"{f.name} must be > {m['gt']}, got {v}")
        if m.get("le") is not None and v > m["le"]:
            raise ValueError(f"{f.name} must be <= {m['le']}, got {v}")
        if m.get("lt") is not None and v >= m["lt"]:
            raise ValueError(f"{f.name} must be < {m['lt']}, got {v}")
