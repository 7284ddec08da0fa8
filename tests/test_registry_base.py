"""The registry machinery itself: knobs, form specs, coercion, duplicate keys, allow-listed decoding."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest
from torch import nn

from lwdash.techniques.base import (
    CompressedModel,
    RunContext,
    TechniqueConfig,
    build_config,
    config_from_dict,
    form_spec,
    knob,
    register,
)


@dataclass(frozen=True)
class _DemoConfig(TechniqueConfig):
    """A demo config."""

    amount: float = knob(0.5, ge=0.0, lt=1.0, help="fraction", sweepable=True)
    steps: int = knob(2, ge=1, le=10, help="steps")
    mode: Literal["a", "b"] = knob("a", help="mode")
    enabled: bool = knob(True, help="on/off")
    scale: float = knob(1.0, gt=0.0, help="unbounded above")


def test_form_spec_maps_types_to_widgets() -> None:
    spec = {f.name: f for f in form_spec(_DemoConfig)}
    assert spec["amount"].widget == "slider" and spec["amount"].sweepable
    assert spec["steps"].widget == "int"
    assert spec["mode"].widget == "select" and spec["mode"].options == ("a", "b")
    assert spec["enabled"].widget == "toggle"
    assert spec["scale"].widget == "number"  # no upper bound: no slider


def test_bounds_and_choices_are_enforced_on_construction() -> None:
    with pytest.raises(ValueError, match=r"amount must be < 1\.0"):
        _DemoConfig(amount=1.2)
    with pytest.raises(ValueError, match="mode must be one of"):
        _DemoConfig(mode="z")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"scale must be > 0\.0"):
        _DemoConfig(scale=0.0)


def test_build_config_coerces_cli_strings() -> None:
    cfg = build_config(_DemoConfig, {"amount": "0.3", "steps": "4", "mode": "b", "enabled": "false"})
    assert cfg == _DemoConfig(amount=0.3, steps=4, mode="b", enabled=False)
    with pytest.raises(ValueError, match="steps"):
        build_config(_DemoConfig, {"steps": "many"})
    with pytest.raises(ValueError, match="enabled must be true or false"):
        build_config(_DemoConfig, {"enabled": "maybe"})


def test_duplicate_key_is_rejected() -> None:
    def fn(model: nn.Module, cfg: _DemoConfig, ctx: RunContext) -> CompressedModel:
        return CompressedModel(module=model)

    from lwdash.techniques.registry import _REGISTRY

    register("_demo_registry_test", _DemoConfig, family="test")(fn)
    try:
        with pytest.raises(ValueError, match="already registered"):
            register("_demo_registry_test", _DemoConfig, family="test")(fn)
    finally:  # the registry is the process's: later tests list every technique
        _REGISTRY.pop("_demo_registry_test")


def test_from_dict_accepts_only_registered_keys_and_declared_fields() -> None:
    with pytest.raises(KeyError, match="unknown technique"):
        config_from_dict({"type": "os.system", "data": {}})
    with pytest.raises(ValueError, match="unknown fields"):
        config_from_dict({"type": "magnitude_pruning", "data": {"__class__": "x"}})
