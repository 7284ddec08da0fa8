"""Forms generated from technique configs (``lwdash.techniques.form_spec``), rendered inside ``st.form``.

A sweepable numeric knob is a text input taking several comma-separated values, and a choice
knob (a mode) is a multiselect; the form returns one config per combination (a grid over one or
two knobs, e.g. ratios x modes), each of which becomes its own job.

A pipeline (a config with a ``steps`` field) gets a step builder instead: a number of steps,
each a technique select plus that technique's own generated fields. It is drawn outside
``st.form`` so that picking a step's technique redraws that step's fields at once.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from lwdash.techniques import (
    FieldSpec,
    PipelineStep,
    Technique,
    TechniqueConfig,
    build_config,
    form_spec,
    list_techniques,
)

__all__ = [
    "MAX_CONFIGS",
    "expand_configs",
    "expand_pipelines",
    "field_key",
    "parse_values",
    "pipeline_form",
    "step_key",
    "technique_form",
]

#: The most jobs one submit may queue (a grid grows fast: 3 knobs x 5 values = 125).
MAX_CONFIGS = 64


def field_key(key_prefix: str, technique_key: str, field: str) -> str:
    """The widget key of one form field, e.g. ``"compress.magnitude_pruning.amount"``."""
    return f"{key_prefix}.{technique_key}.{field}"


def step_key(key_prefix: str, index: int, field: str) -> str:
    """The widget key of a pipeline step's field (``index`` from 1), e.g. ``"compress.pipeline.2.epochs"``.

    ``field`` is ``"technique"`` for the step's technique select, else ``"<technique>.<knob>"``.
    """
    return f"{key_prefix}.pipeline.{index}.{field}"


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


def sweep_example(spec: FieldSpec) -> str:
    """Three values around ``spec``'s default, within its bounds, for the help of a sweepable field ("0.3, 0.5, 0.7")."""
    d = spec.default
    lo = next((b for b in (spec.ge, spec.gt) if b is not None), -math.inf)
    hi = next((b for b in (spec.le, spec.lt) if b is not None), math.inf)
    if spec.widget == "int" or isinstance(d, int):
        values = [max(1, d // 2), d, d * 2] if d > 0 else [d, d + 1, d + 2]
    elif 0 < d < 1 and hi <= 1:
        values = [round(d - 0.2, 4), d, round(d + 0.2, 4)]
    else:
        values = [d / 2, d, d * 2]
    inside = [v for v in dict.fromkeys(values) if lo <= v <= hi and not (spec.gt is not None and v <= spec.gt)
              and not (spec.lt is not None and v >= spec.lt)]
    return ", ".join(_fmt(v) for v in inside)


def _widget(spec: FieldSpec, key: str) -> Any:
    """Render one field; returns its value (a string for sweepable knobs)."""
    helptext = (spec.help or "") + _bounds_text(spec)
    if spec.sweepable:
        return st.text_input(
            f"{spec.label} (values, comma-separated)",
            value=_fmt(spec.default),
            key=key,
            help=helptext + f" Several values queue one job each, e.g. {sweep_example(spec)}.",
        )
    if spec.widget == "toggle":
        return st.toggle(spec.label, value=bool(spec.default), key=key, help=helptext)
    if spec.widget == "select":
        options = list(spec.options)
        default = [spec.default] if spec.default in options else options[:1]
        return st.multiselect(
            spec.label, options, default=default, key=key,
            help=helptext + " Pick several to queue one job per choice (a sweep).",
        )
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


def _split_values(specs: Sequence[FieldSpec], raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Separate single values from swept ones (several comma-separated numbers or several choices).

    Raises:
        ValueError: a sweepable field or a choice was left empty.
    """
    fixed: dict[str, Any] = {}
    sweeps: dict[str, list[Any]] = {}
    for s in specs:
        value = raw[s.name]
        if s.widget == "select":
            values = list(value or [])
            if not values:
                raise ValueError(f"{s.label}: pick at least one of {', '.join(map(str, s.options))}")
        elif s.sweepable:
            values = parse_values(value, s.label)
        else:
            fixed[s.name] = value
            continue
        if len(values) == 1:
            fixed[s.name] = values[0]
        else:
            sweeps[s.name] = values
    return fixed, sweeps


def technique_form(technique: Technique, key_prefix: str, *, submit_label: str = "Queue jobs") -> list[TechniqueConfig] | None:
    """Render ``technique``'s knobs in a form and build its configs on submit.

    Args:
        technique: a registered technique (a pipeline gets :func:`pipeline_form`).
        key_prefix: page namespace; fields are keyed ``"<prefix>.<technique>.<field>"`` and the
            submit button ``"<prefix>.submit"``.
        submit_label: the submit button's text.

    Returns:
        ``None`` until the form is submitted; then the configs (one per swept combination), or an
        empty list when a value was rejected (the reason is shown with ``st.error``).
    """
    specs = form_spec(technique.config_type)
    if any(s.widget == "steps" for s in specs):
        return pipeline_form(technique, key_prefix, submit_label=submit_label)
    # enter_to_submit=False: Enter in a field must not queue jobs (a second click then queued them again).
    with st.form(key=f"{key_prefix}.form.{technique.key}", enter_to_submit=False):
        raw = {s.name: _widget(s, field_key(key_prefix, technique.key, s.name)) for s in specs}
        submitted = st.form_submit_button(submit_label, type="primary", key=f"{key_prefix}.submit")
    if not submitted:
        return None
    try:
        fixed, sweeps = _split_values(specs, raw)
        return expand_configs(technique.config_type, fixed, sweeps)
    except ValueError as e:
        st.error(f"{technique.title}: {e}")
        return []


def expand_pipelines(
    cfg_type: type[TechniqueConfig],
    step_choices: Sequence[tuple[str, Sequence[TechniqueConfig]]],
    *,
    max_configs: int = MAX_CONFIGS,
) -> list[TechniqueConfig]:
    """One pipeline config per combination of the steps' swept configs (grid order).

    Args:
        cfg_type: the pipeline's config class (its ``steps`` field takes the steps).
        step_choices: per step, its technique key and the configs its fields expand to.
        max_configs: refuse grids larger than this.

    Raises:
        ValueError: the grid is too large or the pipeline rejects the steps (the message says why).
    """
    total = math.prod(len(c) for _, c in step_choices) if step_choices else 0
    if total > max_configs:
        raise ValueError(f"the steps' swept values make {total} pipelines; at most {max_configs} can be queued at once")
    configs: list[TechniqueConfig] = []
    for combo in itertools.product(*(c for _, c in step_choices)):
        steps = tuple(PipelineStep(key, cfg) for (key, _), cfg in zip(step_choices, combo, strict=True))
        cfg = build_config(cfg_type, {"steps": steps})
        if cfg not in configs:
            configs.append(cfg)
    return configs


def _step_defaults(cfg_type: type[TechniqueConfig], index: int) -> tuple[str, TechniqueConfig | None]:
    """The default technique of step ``index`` (from 1) and its default config, from the pipeline's default."""
    default = cfg_type()
    steps: tuple[PipelineStep, ...] = getattr(default, "steps", ())
    if index <= len(steps):
        return steps[index - 1].technique, steps[index - 1].config
    return "fine_tune", None


def pipeline_form(technique: Technique, key_prefix: str, *, submit_label: str = "Queue jobs") -> list[TechniqueConfig] | None:
    """Build a pipeline step by step: a number of steps, each a technique select and its generated fields.

    Numeric knobs of a step take several comma-separated values and choices take several
    options, as in :func:`technique_form`: the pipeline is queued once per combination.

    Args:
        technique: the registered pipeline technique.
        key_prefix: page namespace; the step count is ``"<prefix>.pipeline.count"``, step fields
            are keyed by :func:`step_key`, the button ``"<prefix>.submit"``.
        submit_label: the button's text.

    Returns:
        ``None`` until the button is pressed; then the pipeline configs, or an empty list when a
        step was rejected (the reason is shown with ``st.error``).
    """
    from lwdash.techniques.pipeline import LAST_ONLY_FAMILIES, MAX_STEPS

    cfg_type = technique.config_type
    choices = [t for t in list_techniques() if not any(s.widget == "steps" for s in form_spec(t.config_type))]
    by_key = {t.key: t for t in choices}
    keys = sorted(by_key, key=lambda k: (by_key[k].family in LAST_ONLY_FAMILIES, by_key[k].family, k))
    default_count = len(getattr(cfg_type(), "steps", ())) or 1
    count = int(st.number_input(
        "Number of steps", min_value=1, max_value=MAX_STEPS, value=min(default_count, MAX_STEPS), step=1,
        key=f"{key_prefix}.pipeline.count",
        help="Steps run in order, each on the previous step's model; quantization steps only last.",
    ))
    raw_steps: list[tuple[Technique, list[FieldSpec], dict[str, Any]]] = []
    for i in range(1, count + 1):
        default_key, default_cfg = _step_defaults(cfg_type, i)
        with st.container(border=True):
            key = st.selectbox(
                f"Step {i}", keys, index=keys.index(default_key) if default_key in keys else 0,
                key=step_key(key_prefix, i, "technique"),
                format_func=lambda k: f"{by_key[k].family} · {by_key[k].title}",
            )
            tech = by_key[key]
            specs = form_spec(tech.config_type)
            if default_cfg is not None and type(default_cfg) is tech.config_type:
                specs = [dataclasses.replace(s, default=getattr(default_cfg, s.name)) for s in specs]
            raw = {s.name: _widget(s, step_key(key_prefix, i, f"{key}.{s.name}")) for s in specs}
            raw_steps.append((tech, specs, raw))
    if not st.button(submit_label, type="primary", key=f"{key_prefix}.submit"):
        return None
    try:
        step_choices: list[tuple[str, list[TechniqueConfig]]] = []
        for i, (tech, specs, raw) in enumerate(raw_steps, 1):
            try:
                fixed, sweeps = _split_values(specs, raw)
                step_choices.append((tech.key, expand_configs(tech.config_type, fixed, sweeps)))
            except ValueError as e:
                raise ValueError(f"step {i} ({tech.title}): {e}") from None
        return expand_pipelines(cfg_type, step_choices)
    except ValueError as e:
        st.error(f"{technique.title}: {e}")
        return []
