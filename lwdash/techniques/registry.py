"""The registry of techniques: :func:`register` records a config type and its function under a stable key.

Importing :mod:`lwdash.techniques` imports every family module, whose ``@register`` decorators
fill the registry; :func:`get_technique` and :func:`list_techniques` read it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from lwdash.techniques.context import CompressedModel, RunContext
from lwdash.techniques.knobs import C, TechniqueConfig

__all__ = ["ApplyFn", "Technique", "get_technique", "list_techniques", "register"]

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


# No loading step is needed before a lookup: Python imports the package ``lwdash.techniques`` (whose
# ``__init__`` imports every family module, running their @register decorators) before any of its
# submodules, this one included.


def get_technique(key: str) -> Technique:
    try:
        return _REGISTRY[key]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"unknown technique {key!r}; registered: {known}") from None


def list_techniques() -> list[Technique]:
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]
