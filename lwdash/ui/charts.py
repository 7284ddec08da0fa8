"""Chart wrappers: plotly charts whose point selection picks a result."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lwdash.figures import plot_tradeoff, tradeoff_info

__all__ = ["selected_result_id", "show", "tradeoff_chart"]


def selected_result_id(event: Any) -> str | None:
    """The result id carried in ``customdata`` by the first selected point, if any.

    Args:
        event: the chart's selection state (``st.plotly_chart(..., on_select=...)`` return value or
            its session-state entry): ``{"selection": {"points": [{"customdata": ...}, ...]}}``.
    """
    if not isinstance(event, Mapping):
        return None
    selection = event.get("selection") or {}
    points = selection.get("points") or [] if isinstance(selection, Mapping) else []
    for point in points:
        data = point.get("customdata") if isinstance(point, Mapping) else None
        if isinstance(data, (list, tuple)):
            data = data[0] if data else None
        if isinstance(data, str) and data:
            return data
    return None


def show(fig: go.Figure, key: str, on_select: Callable[[str], None] | None = None) -> str | None:
    """Draw ``fig`` with point selection; returns the selected result id (or ``None``).

    Args:
        fig: a figure whose selectable markers carry a result id in ``customdata``.
        key: the chart's widget key (namespaced ``"<page>.<field>"``).
        on_select: called with the result id when the user selects a point (before the rerun).
    """

    def _changed() -> None:
        rid = selected_result_id(st.session_state.get(key))
        if rid and on_select is not None:
            on_select(rid)

    event = st.plotly_chart(fig, key=key, on_select=_changed, selection_mode="points", width="stretch")
    return selected_result_id(event)


def tradeoff_chart(
    frame: pd.DataFrame,
    x_metric: str,
    *,
    ratio_to_baseline: bool,
    key: str,
    title: str,
    on_select: Callable[[str], None] | None = None,
    per_model: bool = False,
) -> str | None:
    """Extract, draw and caption one accuracy-vs-``x_metric`` Pareto chart; returns the selected id.

    ``per_model``: one front per model, coloured by model (else one front across models).
    """
    info = tradeoff_info(frame, x_metric, "top1_acc", ratio_to_baseline, per_model=per_model)
    picked = show(plot_tradeoff(info, title=title), key, on_select)
    front = sum(p.on_front for p in info.points)
    where = (f"their model's front ({len(info.model_names)} model(s), one colour each; the marker is the technique "
             "family)" if per_model else "the front")
    text = f"{front} of {len(info.points)} result(s) on {where} (bold, joined by the dotted step line)."
    if info.skipped:
        text += f" {info.skipped} result(s) without this measurement are not drawn."
    st.caption(text)
    return picked
