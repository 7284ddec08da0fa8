"""Forms generated from technique configs (``lwdash.techniques.form_spec``), rendered inside ``st.form``.

A sweepable knob is a text input taking several comma-separated values; the form returns one
config per combination (a grid), each of which becomes its own job.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from lwdash.techniques import FieldSpec, Technique, TechniqueConfig, build_config, form_spec

__all__ = ["MAX_CONFIGS", "expand_configs", "field_key", "parse_values", "technique_form"]

#: The most jobs one submit may queue (a grid grows fast: 3 knobs x 5 values = 125).
MAX_CONFIGS = 64


def field_key(key_prefix: str, technique_key: str, field: str) -> str:
    """The widget key of one form field, e.g. ``"compress.magnitude_pruning.amount"``."""
    return f"{key_prefix}.{technique_key}.{field}"


def parse_values(text: str, label: str) -> list[str]:
    """Split a comma-separated list of values ("0.3, 0.5, 0.7"), dropping blanks and repeats.

    Raises:
        ValueError: no value at all.
    """
    values: list[str] = []
    for part in str(text).replace(";", ",").split(","):
        v = part.strip()
        if v and v not in values:
            values.append(v)
    if not values:
        raise ValueError(f"{label}: enter at least one value (several values, comma-separated, give one job each)")
    return values


def expand_configs(
    cfg_type: type[TechniqueConfig],
    fixed: Mapping[str, Any],
    sweeps: Mapping[str, Sequence[Any]],
    *,
    max_configs: int = MAX_CONFIGS,
) -> list[TechniqueConfig]:
    """Build one config per combination of the swept values (grid order, duplicates dropped).

    Args:
        cfg_type: the technique's config class.
        fixed: single values by field name.
        sweeps: several values by field name (strings are coerced by ``build_config``).
        max_configs: refuse grids larger than this.

    Raises:
        ValueError: a value is rejected (the message names the field and the value) or the grid is too large.
    """
    names = list(sweeps)
    total = math.prod(len(sweeps[n]) for n in names) if names else 1
    if total > max_configs:
        sizes = " x ".join(f"{len(sweeps[n])} {n}" for n in names)
        raise ValueError(f"{sizes} = {total} jobs; at most {max_configs} can be queued at once")
    configs: list[TechniqueConfig] = []
    errors: list[str] = []
    for combo in itertools.product(*(sweeps[n] for n in names)):
        values = {**fixed, **dict(zip(names, combo, strict=True))}
        try:
            cfg = build_config(cfg_type, values)
        except (TypeError, ValueError) as e:
            shown = ", ".join(f"{n}={v}" for n, v in zip(names, combo, strict=True))
            msg = f"{shown}: {e}" if shown else str(e)
            if msg not in errors:
                errors.append(msg)
            continue
        if cfg not in configs:
            configs.append(cfg)
    if errors:
        raise ValueError("; ".join(errors))
    return configs


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _bounds(spec: FieldSpec, step: float) -> tuple[float | None, float | None]:
    lo = spec.ge if spec.ge is not None else (spec.gt + step if spec.gt is not None else None)
    hi = spec.le if spec.le is not None else (spec.lt - step if spec.lt is not None else None)
    return lo, hi


def _bounds_text(spec: FieldSpec) -> str:
    parts = []
    if spec.ge is not None:
        parts.append(f">= {_fmt(spec.ge)}")
    if spec.gt is not None:
        parts.append(f"> {_fmt(spec.gt)}")
    if spec.le is not None:
        parts.append(f"<= {_fmt(spec.le)}")
    if spec.lt is not None:
        parts.append(f"< {_fmt(spec.lt)}")
    return f" Accepted: {' and '.join(parts)}." if parts else ""


def _widget(spec: FieldSpec, key: str) -> Any:
    """Render one field; returns its value (a string for sweepable knobs)."""
    helptext = (spec.help or "") + _bounds_text(spec)
    if spec.sweepable:
        return st.text_input(
            f"{spec.label} (values, comma-separated)",
            value=_fmt(spec.default),
            key=key,
            help=helptext + " Several values queue one job each, e.g. 0.3, 0.5, 0.7.",
        )
    if spec.widget == "toggle":
        return st.toggle(spec.label, value=bool(spec.default), key=key, help=helptext)
    if spec.widget == "select":
        options = list(spec.options)
        index = options.index(spec.default) if spec.default in options else 0
        return st.selectbox(spec.label, options, index=index, key=key, help=helptext)
    if spec.widget == "int":
        step_i = int(spec.step or 1)
        lo, hi = _bounds(spec, step_i)
        return st.number_input(
            spec.label, value=int(spec.default), step=step_i, key=key, help=helptext,
            min_value=None if lo is None else math.ceil(lo), max_value=None if hi is None else math.floor(hi),
        )
    if spec.widget == "slider":
        step = float(spec.step or 0.01)
        lo, hi = _bounds(spec, step)
        assert lo is not None and hi is not None  # form_spec only makes bounded floats sliders
        value = min(max(float(spec.default), lo), hi)
        return st.slider(spec.label, min_value=float(lo), max_value=float(hi), value=value, step=step, key=key,
                         help=helptext)
    if spec.widget == "number":
        num_step = float(spec.step) if spec.step else None
        lo, hi = _bounds(spec, num_step or 0.0)
        return st.number_input(
            spec.label, value=float(spec.default), step=num_step, key=key, help=helptext, format="%g",
            min_value=None if lo is None else float(lo), max_value=None if hi is None else float(hi),
        )
    return st.text_input(spec.label, value=str(spec.default), key=key, help=helptext)


def technique_form(technique: Technique, key_prefix: str, *, submit_label: str = "Queue jobs") -> list[TechniqueConfig] | None:
    """Render ``technique``'s knobs in a form and build its configs on submit.

    Args:
        technique: a registered technique.
        key_prefix: page namespace; fields are keyed ``"<prefix>.<technique>.<field>"`` and the
            submit button ``"<prefix>.submit"``.
        submit_label: the submit button's text.

    Returns:
        ``None`` until the form is submitted; then the configs (one per swept combination), or an
        empty list when a value was rejected (the reason is shown with ``st.error``).
    """
    specs = form_spec(technique.config_type)
    with st.form(key=f"{key_prefix}.form.{technique.key}"):
        raw = {s.name: _widget(s, field_key(key_prefix, technique.key, s.name)) for s in specs}
        submitted = st.form_submit_button(submit_label, type="primary", key=f"{key_prefix}.submit")
    if not submitted:
        return None
    fixed: dict[str, Any] = {}
    sweeps: dict[str, list[str]] = {}
    try:
        for s in specs:
            if s.sweepable:
                values = parse_values(raw[s.name], s.label)
                if len(values) == 1:
                    fixed[s.name] = values[0]
                else:
                    sweeps[s.name] = values
            else:
                fixed[s.name] = raw[s.name]
        return expand_configs(technique.config_type, fixed, sweeps)
    except ValueError as e:
        st.error(f"{technique.title}: {e}")
        return []
