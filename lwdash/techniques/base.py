"""The technique registry: each technique is a typed, frozen config plus one registered function.

A technique function takes the caller's model (never mutated), its config and a
:class:`RunContext`, and returns a :class:`CompressedModel`. Forms (``lwdash.ui.forms``),
the CLI and the contract tests are all generated from :func:`form_spec` and the registry,
so adding a technique needs no UI or engine change.
"""
from __future__ import annotations

import dataclasses
import enum
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import torch
from torch import nn

if typing.TYPE_CHECKING:
    import onnx

    from lwdash.data import Dataset

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

ProgressFn = Callable[[float, str], None]


def _no_progress(fraction: float, message: str) -> None:  # pragma: no cover - trivial
    del fraction, message


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


def knob_fields(cfg: type[TechniqueConfig] | TechniqueConfig) -> list[dataclasses.Field[Any]]:
    """A config's fields in display order: the technique's own, then each group's (shared knobs declared in a
    base class, such as recovery's), each in declaration order. Forms, labels and listings use this order."""
    return sorted(dataclasses.fields(cfg), key=lambda f: bool(f.metadata.get("group")))


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


#: The note of a technique that worked on the uploaded ONNX graph itself.
UPLOADED_GRAPH_NOTE = ("Built from the uploaded ONNX graph itself, not from a re-export of its PyTorch conversion "
                       "(the PyTorch form is built from the conversion).")


@dataclass(frozen=True)
class RunContext:
    """What a technique may use besides the model: data splits, seed, threads, progress.

    ``source_onnx`` is the uploaded ONNX graph of the model a technique is given, when the model
    was uploaded as ONNX with a dynamic batch and ONNX Runtime reproduces its conversion's
    outputs; ``None`` otherwise, and for every pipeline step after the first (its input is no
    longer the upload). Techniques that act on an ONNX graph use it through :meth:`input_onnx`.
    ``teacher`` is the job's own input model (frozen, eval mode), the same for every pipeline
    step: what recovery training distils from (:mod:`lwdash.techniques.recovery`).
    """

    data: Dataset
    seed: int = 0
    threads: int = 1
    progress: ProgressFn = _no_progress
    source_onnx: onnx.ModelProto | None = None
    teacher: nn.Module | None = None

    def input_onnx(self, model: nn.Module) -> tuple[onnx.ModelProto, bool]:
        """The fp32 ONNX graph of ``model``, the technique's own input: ``(graph, is_the_upload)``.

        The uploaded graph (a copy) when there is one, else the runner's export of ``model``.
        """
        if self.source_onnx is not None:
            import onnx

            graph = onnx.ModelProto()
            graph.CopyFrom(self.source_onnx)
            return graph, True
        import copy

        from lwdash.techniques._common import export_onnx_proto

        return export_onnx_proto(copy.deepcopy(model).eval(), tuple(self.input_shape)), False

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.data.input_shape

    def example_inputs(self, batch: int = 1) -> tuple[torch.Tensor]:
        """A real batch from the calibration split, shaped ``(batch, *input_shape)``."""
        return (self.data.calib.x[:batch].clone(),)


@dataclass
class CompressedModel:
    """A technique's output.

    Attributes:
        module: the PyTorch form; runs on float32 input ``(B, *input_shape)`` and is saved as ``.pt2``.
        onnx_model: set when the technique builds the ONNX artifact itself (for example ONNX
            Runtime quantization); otherwise the runner exports ``module``.
        notes: honest flags shown next to the result (for example "zeros do not speed up dense kernels").
        steps: per-step records for pipelines (free-form dicts of metrics).
    """

    module: nn.Module
    onnx_model: onnx.ModelProto | None = None
    notes: tuple[str, ...] = ()
    steps: tuple[dict[str, Any], ...] = ()


C = TypeVar("C", bound=TechniqueConfig)
ApplyFn = Callable[[nn.Module, Any, RunContext], CompressedModel]


@dataclass(frozen=True)
class Technique:
    key: str
    config_type: type[TechniqueConfig]
    fn: ApplyFn
    family: str
    title: str
    description: str
    when: str = ""  # when a user should reach for it (and when not), shown beside the form

    def apply(self, model: nn.Module, cfg: TechniqueConfig, ctx: RunContext) -> CompressedModel:
        if not isinstance(cfg, self.config_type):
            raise TypeError(f"{self.key} expects {self.config_type.__name__}, got {type(cfg).__name__}")
        return self.fn(model, cfg, ctx)


_REGISTRY: dict[str, Technique] = {}


def register(
    key: str, config_type: type[C], *, family: str, title: str | None = None, when: str = ""
) -> Callable[[Callable[[nn.Module, C, RunContext], CompressedModel]], Callable[[nn.Module, C, RunContext], CompressedModel]]:
    """Register ``fn`` under the stable, persisted ``key``; a duplicate key raises.

    ``when``: when to use the technique and what it does to a deployed model, in a sentence or two
    (the Compress page shows it under the technique's one-line description).
    """

    def deco(fn: Callable[[nn.Module, C, RunContext], CompressedModel]) -> Callable[[nn.Module, C, RunContext], CompressedModel]:
        if key in _REGISTRY:
            raise ValueError(f"technique {key!r} is already registered")
        doc = (config_type.__doc__ or "").strip().splitlines()
        _REGISTRY[key] = Technique(
            key=key,
            config_type=config_type,
            fn=fn,
            family=family,
            title=title or key.replace("_", " ").capitalize(),
            description=doc[0] if doc else "",
            when=when,
        )
        return fn

    return deco


def _ensure_loaded() -> None:
    # Importing the family modules runs their @register decorators.
    import lwdash.techniques  # noqa: F401


def get_technique(key: str) -> Technique:
    _ensure_loaded()
    try:
        return _REGISTRY[key]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"unknown technique {key!r}; registered: {known}") from None


def list_techniques() -> list[Technique]:
    _ensure_loaded()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


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
