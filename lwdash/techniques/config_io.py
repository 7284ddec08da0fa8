"""Configs as data: pipeline steps, the versioned JSON form of a config, and coercion of loose values.

:func:`config_to_dict` / :func:`config_from_dict` are the stored form (only registered keys and
declared fields are accepted back); :func:`build_config` builds a config from CLI strings or JSON.
"""
from __future__ import annotations

import dataclasses
import enum
import typing
from dataclasses import dataclass
from typing import Any, Literal

from lwdash.techniques.knobs import C, TechniqueConfig, knob_fields
from lwdash.techniques.registry import _REGISTRY, get_technique

__all__ = [
    "CONFIG_FORMAT_VERSION",
    "PipelineStep",
    "build_config",
    "config_from_dict",
    "config_to_dict",
    "jsonable",
]


@dataclass(frozen=True)
class PipelineStep:
    """One step of a pipeline: a registered technique key and its (validated) config.

    Its dict form is flat: ``{"technique": "structured_pruning", "ratio": 0.5}``; knobs left out
    take their defaults.
    """

    technique: str
    config: TechniqueConfig

    def __post_init__(self) -> None:
        if not isinstance(self.technique, str) or not self.technique:
            raise ValueError(f"a pipeline step needs a technique key, got {self.technique!r}")
        if not isinstance(self.config, TechniqueConfig):
            raise ValueError(f"pipeline step {self.technique!r}: config must be a TechniqueConfig, got {self.config!r}")

    def to_dict(self) -> dict[str, Any]:
        """The flat, JSON-safe form ``{"technique": key, **knobs}``."""
        return {"technique": self.technique, **config_to_dict(self.technique, self.config)["data"]}

    @classmethod
    def from_dict(cls, d: Any, *, position: int | None = None) -> PipelineStep:
        """Parse ``{"technique": key, **knobs}``; unknown keys and bad values raise ``ValueError``."""
        where = f"step {position}" if position is not None else "pipeline step"
        if isinstance(d, PipelineStep):
            return d
        if not isinstance(d, dict):
            raise ValueError(f'{where}: expected an object like {{"technique": "int8_static"}}, got {d!r}')
        data = dict(d)
        key = data.pop("technique", None)
        if not isinstance(key, str):
            raise ValueError(f'{where}: needs a "technique" key naming a registered technique, got {d!r}')
        try:
            tech = get_technique(key)
        except KeyError as e:
            raise ValueError(f"{where}: {e.args[0]}") from None
        try:
            _, cfg = config_from_dict({"type": key, "data": data})
        except ValueError as e:
            raise ValueError(f"{where} ({key}): {e}") from None
        assert isinstance(cfg, tech.config_type)
        return cls(key, cfg)


#: 2: knobs may declare ``stored_default`` (what a version-1 record that lacks them ran with).
#: 3: ``int8_static`` chooses its activation type by measurement (``activations``; version-2 records ran int8).
#: 4: recovery knobs (``recipe``, ``optimizer``, ``teacher_weight``; older records ran plain Adam, no teacher).
CONFIG_FORMAT_VERSION = 4


def config_to_dict(key: str, cfg: TechniqueConfig) -> dict[str, Any]:
    """Serialize as ``{"type", "version", "data"}`` (JSON-safe)."""
    data = {f.name: _jsonable(getattr(cfg, f.name)) for f in knob_fields(cfg)}  # display order
    return {"type": key, "version": CONFIG_FORMAT_VERSION, "data": data}


def jsonable(v: Any) -> Any:
    """A knob value in its JSON form (enums by value, tuples as lists, pipeline steps as flat dicts)."""
    return _jsonable(v)


def _jsonable(v: Any) -> Any:
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, PipelineStep):
        return v.to_dict()
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    return v


def config_from_dict(d: dict[str, Any]) -> tuple[str, TechniqueConfig]:
    """Inverse of :func:`config_to_dict`; only registered keys and declared fields are accepted."""
    key = d.get("type")
    if not isinstance(key, str):
        raise ValueError("config dict has no 'type'")
    tech = get_technique(key)
    data = dict(d.get("data") or {})
    fields = dataclasses.fields(tech.config_type)
    names = {f.name for f in fields}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown fields for {key}: {sorted(unknown)}; accepted: {sorted(names)}")
    version = int(d.get("version") or CONFIG_FORMAT_VERSION)
    if version < CONFIG_FORMAT_VERSION:
        _fill_stored_defaults(tech.config_type, data, version)
        for step in data.get("steps") or ():  # a stored pipeline's steps were written in full too
            if isinstance(step, dict) and isinstance(step.get("technique"), str) and step["technique"] in _REGISTRY:
                _fill_stored_defaults(_REGISTRY[step["technique"]].config_type, step, version)
    return key, build_config(tech.config_type, data)


def _fill_stored_defaults(cfg_type: type[TechniqueConfig], data: dict[str, Any], version: int) -> None:
    """A config stored in full (at ``version``) before a knob existed ran with the knob's ``stored_default``: fill it in."""
    for f in dataclasses.fields(cfg_type):
        if f.name not in data and "stored_default" in f.metadata and version < f.metadata["since"]:
            data[f.name] = f.metadata["stored_default"]


def build_config(cfg_type: type[C], values: dict[str, Any]) -> C:
    """Build a config from loosely typed values (CLI strings, JSON), coercing to the annotations.

    Raises:
        ValueError: a value cannot be coerced or the config rejects it (bounds, choices).
    """
    hints = typing.get_type_hints(cfg_type)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cfg_type):
        if f.name not in values:
            continue
        kwargs[f.name] = _coerce(f.name, hints[f.name], values[f.name])
    return cfg_type(**kwargs)


def _coerce(name: str, tp: Any, v: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is tuple and typing.get_args(tp)[:1] == (PipelineStep,):
        return _coerce_steps(name, v)
    try:
        if origin is Literal:
            choices = typing.get_args(tp)
            for c in choices:
                if v == c or str(v) == str(c):
                    return c
            raise ValueError(f"{name} must be one of {list(choices)}, got {v!r}")
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return tp(v)
        if tp is bool:
            if isinstance(v, str):
                if v.lower() in {"1", "true", "yes", "on"}:
                    return True
                if v.lower() in {"0", "false", "no", "off"}:
                    return False
                raise ValueError(f"{name} must be true or false, got {v!r}")
            return bool(v)
        if tp is int:
            if isinstance(v, float) and not v.is_integer():
                raise ValueError(f"{name} must be an integer, got {v!r}")
            return int(v)
        if tp is float:
            return float(v)
        if tp is str:
            return str(v)
    except (TypeError, ValueError) as e:
        if isinstance(e, ValueError) and str(e).startswith(name):
            raise
        raise ValueError(f"{name}: cannot read {v!r} as {getattr(tp, '__name__', tp)}") from e
    return v


def _coerce_steps(name: str, v: Any) -> tuple[PipelineStep, ...]:
    """Steps from a JSON string, a list of flat step dicts, or ``PipelineStep`` objects."""
    if isinstance(v, str):
        import json

        try:
            v = json.loads(v)
        except json.JSONDecodeError as e:
            raise ValueError(
                f'{name}: not valid JSON ({e.msg}); expected a list like '
                '[{"technique": "structured_pruning", "ratio": 0.5}, {"technique": "int8_static"}]'
            ) from None
    if not isinstance(v, (list, tuple)):
        raise ValueError(f"{name}: expected a list of steps, got {type(v).__name__}")
    try:
        return tuple(PipelineStep.from_dict(item, position=i) for i, item in enumerate(v, 1))
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
