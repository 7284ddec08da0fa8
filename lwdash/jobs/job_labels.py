"""Short human labels of technique configs (:func:`job_label`) and of their knob values."""
from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["fmt_value", "job_label"]


def job_label(technique: dict[str, Any]) -> str:
    """A short human label of a technique config: its key, its sweepable knobs (the ones a front is
    drawn along, always shown) and the other knobs that differ from the defaults.

    Example: ``"magnitude_pruning amount=0.7"`` (also at the default amount).
    """
    key = str(technique.get("type", "?"))
    data = dict(technique.get("data") or {})
    try:
        from lwdash.techniques import form_spec, get_technique

        cfg_type = get_technique(key).config_type
        defaults = {f.name: f.default for f in dataclasses.fields(cfg_type)}
        always = {s.name for s in form_spec(cfg_type) if s.sweepable}
    except Exception:
        defaults, always = {}, set()
    parts = []
    for k, v in data.items():
        d = defaults.get(k, dataclasses.MISSING)
        d = getattr(d, "value", d)
        if k not in always and d is not dataclasses.MISSING and (v == d or (isinstance(d, tuple) and v == list(d))):
            continue
        parts.append(f"{k}={fmt_value(v)}")
    return " ".join([key, *parts])


def fmt_value(v: Any) -> str:
    if isinstance(v, dict) and "technique" in v:  # a pipeline step: its key and non-default knobs
        from lwdash.techniques.pipeline import describe_step_dict

        return describe_step_dict(v)
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ",".join(fmt_value(x) for x in v)
    return str(v)
