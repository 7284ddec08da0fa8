"""Search spaces from the technique registry: the searchable knobs, their suggested ranges, and the checks a
search passes before it is queued (the UI and the CLI call :func:`check_search`)."""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lwdash.search.config import KnobRange, SearchConfig

if TYPE_CHECKING:
    from lwdash.techniques.base import FieldSpec

__all__ = ["check_search", "default_space", "knob_range", "midpoint_params", "searchable_knobs", "trial_technique"]


def searchable_knobs(technique: str) -> list[FieldSpec]:
    """The knobs of ``technique`` a search can explore (numbers, choices and toggles; not text or steps)."""
    from lwdash.techniques import form_spec, get_technique

    return [f for f in form_spec(get_technique(technique).config_type) if f.widget not in ("text", "steps")]


def knob_range(spec: FieldSpec, config_type: type | None = None) -> KnobRange:
    """The suggested place to search a knob: its choices, or an interval inside its declared bounds.

    Fractions (an exclusive 0 below, at most 1 above) start at a twentieth of their top; other
    open or wide intervals are searched on a log scale around the default (learning rates);
    whole numbers stop at four times the default (epochs, ranks). With ``config_type``, an
    integer interval's top is lowered until the config accepts it with the other knobs at their
    defaults (``n`` of N:M sparsity stays below ``m``).
    """
    if spec.widget == "toggle":
        return KnobRange(spec.name, choices=(False, True))
    if spec.widget == "select":
        return KnobRange(spec.name, choices=tuple(spec.options))
    integer = spec.widget == "int"
    default = float(spec.default)
    step = float(spec.step) if spec.step else (1.0 if integer else 0.0)
    low = spec.ge if spec.ge is not None else (spec.gt + step if spec.gt is not None and step else spec.gt)
    high = spec.le if spec.le is not None else (spec.lt - step if spec.lt is not None and step else None)
    log = False
    if not integer and (low is None or (low <= 0 < default and spec.ge is None)):
        if high is not None and high <= 1.0 and default >= 0.05:  # a fraction
            low = round(high / 20, 4)
        else:
            low, log = default / 100.0, True
            high = min(high, default * 100.0) if high is not None else default * 100.0
    if high is None:
        high = default * 4.0 if default > 0 else float(low or 0) + 10.0
    if integer:
        low = math.ceil(float(low if low is not None else 0))
        high = math.floor(min(float(high), max(4 * default, low + 10)))
        if config_type is not None:
            high = _largest_accepted(config_type, spec.name, int(low), int(high))
    low, high = float(low or 0.0), float(high)
    if high <= low:
        high = low + (1.0 if integer else max(abs(low), 1.0))
    return KnobRange(spec.name, low=low, high=high, log=log, integer=integer)


def _largest_accepted(config_type: type, name: str, low: int, high: int) -> int:
    from lwdash.techniques import build_config

    for value in range(high, max(low, high - 64) - 1, -1):
        try:
            build_config(config_type, {name: value})
            return value
        except (TypeError, ValueError):
            continue
    return high


def default_space(technique: str) -> tuple[KnobRange, ...]:
    """The sweepable knobs of ``technique`` (the knobs a front is drawn along) over their suggested ranges."""
    from lwdash.techniques import get_technique

    config_type = get_technique(technique).config_type
    knobs = searchable_knobs(technique)
    sweepable = [k for k in knobs if k.sweepable] or knobs[:1]
    return tuple(knob_range(k, config_type) for k in sweepable)


def trial_technique(cfg: SearchConfig, params: Mapping[str, Any]) -> dict[str, Any]:
    """The technique dict (``{"type", "version", "data"}``) of one trial: the fixed knobs plus its params."""
    return {"type": cfg.technique, "version": cfg.version, "data": {**dict(cfg.fixed), **dict(params)}}


def check_search(cfg: SearchConfig) -> None:
    """Check a search against its technique before it is queued (the UI and the CLI call this).

    Raises:
        ValueError: an unknown technique or knob, a knob that cannot be searched, a range outside
            the knob's bounds or a choice it does not take, or fixed values the config refuses.
    """
    from lwdash.techniques import build_config, get_technique

    try:
        tech = get_technique(cfg.technique)
    except KeyError as e:
        raise ValueError(str(e.args[0])) from None
    knobs = {k.name: k for k in searchable_knobs(cfg.technique)}
    for r in cfg.space:
        spec = knobs.get(r.name)
        if spec is None:
            raise ValueError(f"{cfg.technique} has no knob {r.name!r} a search can explore; "
                             f"searchable: {', '.join(knobs)}")
        if r.choices:
            allowed = knob_range(spec).choices
            if not allowed:
                raise ValueError(f"{r.name} is numeric: give it a range low:high, not choices")
            bad = [c for c in r.choices if c not in allowed]
            if bad:
                raise ValueError(f"{r.name} takes {list(allowed)}, not {bad}")
            continue
        if spec.widget in ("select", "toggle"):
            raise ValueError(f"{r.name} takes one of {list(knob_range(spec).choices)}: give choices, not a range")
        for end in (r.low, r.high):
            probe = int(end) if spec.widget == "int" and end is not None else end
            try:  # each end alone must be a valid value of the knob
                build_config(tech.config_type, {**dict(cfg.fixed), r.name: probe})
            except (TypeError, ValueError) as e:
                raise ValueError(f"{r.name} range {r.low:g}:{r.high:g} reaches a value the knob refuses: {e}") from None
    try:
        build_config(tech.config_type, trial_technique(cfg, midpoint_params(cfg))["data"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{cfg.technique} refuses the search's config: {e}") from None


def midpoint_params(cfg: SearchConfig) -> dict[str, Any]:
    """The middle of the space (geometric for log ranges, the first choice of each choice knob): a probe config."""
    out: dict[str, Any] = {}
    for r in cfg.space:
        if r.choices:
            out[r.name] = r.choices[0]
        else:
            assert r.low is not None and r.high is not None
            mid = math.sqrt(r.low * r.high) if r.log else (r.low + r.high) / 2
            out[r.name] = round(mid) if r.integer else mid
    return out
