"""Forms generated from technique configs: sweep parsing, grid expansion, and the rendered form."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest
from streamlit.testing.v1 import AppTest

from lwdash.techniques import TechniqueConfig, knob
from lwdash.ui.forms import MAX_CONFIGS, expand_configs, parse_values


@dataclass(frozen=True)
class GridConfig(TechniqueConfig):
    """A small config with two sweepable knobs, for grid tests."""

    amount: float = knob(0.5, ge=0.0, lt=1.0, step=0.05, help="fraction", sweepable=True)
    steps: int = knob(1, ge=1, le=10, help="steps", sweepable=True)
    mode: Literal["a", "b"] = knob("a", help="mode")


def test_parse_values_splits_strips_and_drops_repeats() -> None:
    assert parse_values(" 0.3, 0.5 ,,0.5;0.7 ", "Amount") == ["0.3", "0.5", "0.7"]
    with pytest.raises(ValueError, match="Amount: enter at least one value"):
        parse_values(" , ", "Amount")


def test_expand_configs_builds_the_grid_in_order() -> None:
    cfgs = expand_configs(GridConfig, {"mode": "b"}, {"amount": ["0.3", "0.5"], "steps": ["1", "2"]})
    assert [(c.amount, c.steps, c.mode) for c in cfgs] == [(0.3, 1, "b"), (0.3, 2, "b"), (0.5, 1, "b"), (0.5, 2, "b")]


def test_expand_configs_drops_equal_configs() -> None:
    cfgs = expand_configs(GridConfig, {}, {"amount": ["0.5", "0.50"]})
    assert len(cfgs) == 1 and cfgs[0].amount == 0.5


def test_expand_configs_names_each_bad_value() -> None:
    with pytest.raises(ValueError) as err:
        expand_configs(GridConfig, {}, {"amount": ["0.3", "1.5", "abc"]})
    msg = str(err.value)
    assert "amount=1.5: amount must be < 1.0" in msg
    assert "amount=abc: amount: cannot read 'abc' as float" in msg


def test_expand_configs_refuses_huge_grids() -> None:
    values = [str(v / 100) for v in range(MAX_CONFIGS + 1)]
    with pytest.raises(ValueError, match=f"at most {MAX_CONFIGS}"):
        expand_configs(GridConfig, {}, {"amount": values})


def _form_app() -> None:
    import streamlit as st

    from lwdash.techniques import get_technique
    from lwdash.ui.forms import technique_form

    configs = technique_form(get_technique("magnitude_pruning"), "t")
    if configs is not None:
        st.session_state["configs"] = configs


def test_rendered_form_sweeps_a_knob_into_several_configs() -> None:
    at = AppTest.from_function(_form_app).run()
    assert not at.exception
    assert "configs" not in at.session_state  # nothing before submit
    at.text_input(key="t.magnitude_pruning.amount").set_value("0.3, 0.5, 0.7")
    at.multiselect(key="t.magnitude_pruning.scope").set_value(["per_layer"])
    at.button(key="t.submit").click().run()
    assert not at.exception and not at.error
    cfgs = at.session_state["configs"]
    assert [c.amount for c in cfgs] == [0.3, 0.5, 0.7]
    assert {c.scope for c in cfgs} == {"per_layer"}


def test_rendered_form_shows_bad_values_with_st_error() -> None:
    at = AppTest.from_function(_form_app).run()
    at.text_input(key="t.magnitude_pruning.amount").set_value("0.3, 1.2")
    at.button(key="t.submit").click().run()
    assert not at.exception
    assert at.session_state["configs"] == []
    assert "amount=1.2" in at.error[0].value and "< 1.0" in at.error[0].value
