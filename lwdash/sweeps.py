"""Job specs from knob text: ``--set knob=value``, ``--sweep knob=v1,v2``, pipeline ``--step`` s, and their grid.

The command line (:mod:`lwdash.cli`) and the app's forms read knobs the same way: values stay
strings until the technique's config reads them (:func:`lwdash.techniques.build_config`). Bad
input raises :class:`UsageError` saying what is accepted. Nothing here imports torch.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lwdash.jobs.spec import JobSpec

__all__ = ["STEP_KNOB", "UsageError", "build_specs", "parse_assignments", "parse_step"]


class UsageError(ValueError):
    """Bad command-line input; printed as ``error: <message>`` with exit status 2."""


def parse_assignments(items: Sequence[str], *, sweep: bool) -> dict[str, Any]:
    """Parse ``k=v`` (``--set``) or ``k=v1,v2`` (``--sweep``) items into a dict (values stay strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or value.strip() == "":
            flag = "--sweep" if sweep else "--set"
            form = "name=v1,v2,..." if sweep else "name=value"
            raise UsageError(f"{flag} {item!r}: expected {form}")
        if key in out:
            raise UsageError(f"knob {key!r} is given twice")
        out[key] = [v.strip() for v in value.split(",") if v.strip()] if sweep else value.strip()
    return out


#: A sweep that reaches into a pipeline step: ``stepN.knob`` (N from 1).
STEP_KNOB = re.compile(r"^step(\d+)\.([A-Za-z_]\w*)$")


def parse_step(item: str, position: int) -> dict[str, Any]:
    """Parse one ``--step KEY[,knob=value,...]`` into a flat step dict (values stay strings)."""
    key, *pairs = [p.strip() for p in item.split(",")]
    if not key or "=" in key:
        raise UsageError(f"--step {item!r}: expected TECHNIQUE[,knob=value,...], e.g. structured_pruning,ratio=0.5")
    step: dict[str, Any] = {"technique": key}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UsageError(f"--step {position} {item!r}: expected knob=value after the technique, got {pair!r}")
        if name.strip() in step:
            raise UsageError(f"--step {position} {item!r}: knob {name.strip()!r} is given twice")
        step[name.strip()] = value.strip()
    return step


def _base_steps(fixed: dict[str, Any], step_items: Sequence[str], cfg_type: type) -> list[dict[str, Any]]:
    """The pipeline's steps as flat dicts: from --step, else --set steps=JSON, else the default pipeline."""
    from lwdash.techniques import jsonable

    if step_items:
        if "steps" in fixed:
            raise UsageError("give the steps either with --step or with --set steps=JSON, not both")
        return [parse_step(item, i) for i, item in enumerate(step_items, 1)]
    if "steps" in fixed:
        try:
            steps = json.loads(fixed["steps"])
        except json.JSONDecodeError as e:
            raise UsageError(f"--set steps=...: not valid JSON ({e.msg}); expected a list like "
                             '[{"technique": "structured_pruning", "ratio": 0.5}, {"technique": "int8_static"}]') from None
        if not isinstance(steps, list):
            raise UsageError("--set steps=...: expected a JSON list of steps")
        return steps
    return list(jsonable(cfg_type().steps))


def build_specs(
    technique: str,
    sets: Sequence[str],
    sweeps: Sequence[str],
    *,
    model_id: str,
    data_ref: str,
    seed: int,
    threads: int,
    label: str = "",
    steps: Sequence[str] = (),
) -> list[JobSpec]:
    """One :class:`JobSpec` per point of the ``--sweep`` grid (one without sweeps), configs validated.

    For ``--technique pipeline`` the steps come from ``steps`` (``--step`` items), and a sweep may
    reach into a step with ``stepN.knob=v1,v2`` (N from 1).

    Raises:
        UsageError: unknown technique or knob, or a value the config rejects.
    """
    from lwdash.jobs.spec import JobSpec
    from lwdash.techniques import build_config, config_to_dict, get_technique

    if threads < 1:
        raise UsageError(f"--threads must be >= 1, got {threads}")
    try:
        tech = get_technique(technique)
    except KeyError as e:
        raise UsageError(str(e.args[0])) from None
    names = [f.name for f in dataclasses.fields(tech.config_type)]
    is_pipeline = "steps" in names
    if steps and not is_pipeline:
        raise UsageError(f"--step is for --technique pipeline; {technique} has no steps (its knobs: {', '.join(names)})")
    fixed = parse_assignments(sets, sweep=False)
    grid = parse_assignments(sweeps, sweep=True)
    for key in [*fixed, *grid]:
        if is_pipeline and key in grid and STEP_KNOB.match(key):
            continue
        if key not in names:
            hint = " (sweep a step's knob with --sweep stepN.knob=v1,v2)" if is_pipeline else ""
            raise UsageError(f"{technique} has no knob {key!r}; its knobs: {', '.join(names) or '(none)'}{hint}")
    both = set(fixed) & set(grid)
    if both:
        raise UsageError(f"knob(s) {sorted(both)} given with both --set and --sweep")
    base_steps = _base_steps(fixed, steps, tech.config_type) if is_pipeline else []
    keys = list(grid)
    specs: list[JobSpec] = []
    for combo in itertools.product(*(grid[k] for k in keys)) if keys else [()]:
        values = {**fixed, **{k: v for k, v in zip(keys, combo, strict=True) if not STEP_KNOB.match(k)}}
        if is_pipeline:
            step_dicts = [dict(s) for s in base_steps]
            for k, v in zip(keys, combo, strict=True):
                m = STEP_KNOB.match(k)
                if m is None:
                    continue
                index = int(m.group(1))
                if not 1 <= index <= len(step_dicts):
                    raise UsageError(f"--sweep {k}: the pipeline has steps 1 to {len(step_dicts)}")
                step_dicts[index - 1][m.group(2)] = v
            values["steps"] = step_dicts
        try:
            cfg = build_config(tech.config_type, values)
        except (TypeError, ValueError) as e:
            raise UsageError(f"bad config for {technique}: {e}") from None
        as_dict = config_to_dict(technique, cfg)
        spec_label = label
        if not spec_label and is_pipeline:
            from lwdash.techniques.pipeline import describe_steps

            spec_label = f"{technique} {describe_steps(cfg.steps)}"  # type: ignore[attr-defined]
        elif not spec_label and (fixed or grid):  # name each point by the knobs the user gave
            given = " ".join(f"{k}={_fmt_knob(as_dict['data'][k])}" for k in [*fixed, *keys])
            spec_label = f"{technique} {given}"
        specs.append(
            JobSpec(
                model_id=model_id,
                data_ref=data_ref,
                technique=as_dict,
                seed=seed,
                threads=threads,
                label=spec_label,
            )
        )
    return specs


def _fmt_knob(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return ",".join(map(_fmt_knob, v))
    return str(v)
