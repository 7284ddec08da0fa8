"""Choosing the evaluation data: the bundled sets installed here and the uploads, with each one's description.

A bundled set that cannot be used on this machine (Fashion-MNIST without its Debian package) is not
offered; its install hint is shown instead (``st.info``), and every page keeps working with the
sets that are there (digits always is).
"""
from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from lwdash.data.bundled import DEFAULT_DATA, default_data_for
from lwdash.store.records import DatasetRecord
from lwdash.ui import state
from lwdash.workspace import Store

__all__ = ["data_label", "pick_data", "show_unavailable"]


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def data_label(rec: DatasetRecord) -> str:
    """The text a data-set choice shows: its name or title, sample count and input shape."""
    return f"{rec.name} · {rec.samples_count:,} samples · input {_shape(rec.input_shape)}"


def show_unavailable(records: Sequence[DatasetRecord]) -> None:
    """One ``st.info`` per reason, naming the bundled sets it keeps out of the choice and how to install them."""
    by_reason: dict[str, list[str]] = {}
    for rec in records:
        if rec.unavailable:
            by_reason.setdefault(rec.unavailable, []).append(f"**{rec.name}**")
    for reason, titles in by_reason.items():
        names = " and ".join(titles) if len(titles) <= 2 else ", ".join(titles[:-1]) + " and " + titles[-1]
        verb = "is" if len(titles) == 1 else "are"
        st.info(f"{names} {verb} not offered on this machine: {reason}.", icon=":material/download:")


def _model_shape(store: Store, model_id: str | None) -> tuple[int, ...] | None:
    if not model_id:
        return None
    try:
        return tuple(store.get_model(model_id).input_shape)
    except Exception:  # an unknown or unreadable model: no shape to match
        return None


def pick_data(store: Store, key: str, model_id: str | None = None) -> str:
    """A data-set selectbox: the bundled sets that are installed here, then the uploads, newest first.

    It starts at (and updates) the shared data selection; the chosen set's description is shown
    below it, and the bundled sets that are not installed are named with their install hint.
    With ``model_id``, no selection, or a bundled set whose input shape the model cannot take,
    moves to the bundled set made for the model's input shape (:func:`default_data_for`), and a
    caption says so; an uploaded set stays chosen (a job on it is refused with the reason).

    Returns:
        The chosen data reference (a bundled set's name or ``"dataset/<sha16>"``).
    """
    records = store.list_datasets()
    usable = {d.id: d for d in records if not d.unavailable}
    ids = list(usable)
    selected = state.get(state.SELECTED_DATA)
    shape = _model_shape(store, model_id)
    fallback = default_data_for(shape)
    if fallback not in ids:
        fallback = DEFAULT_DATA if DEFAULT_DATA in ids else ids[0]
    if st.session_state.get(key) not in ids:
        st.session_state[key] = selected if selected in ids else fallback
    current = usable[st.session_state[key]]
    if (shape is not None and current.kind == "builtin" and tuple(current.input_shape) != shape
            and tuple(usable[fallback].input_shape) == shape):
        st.caption(f"{current.name} holds {_shape(current.input_shape)} inputs and this model takes "
                   f"{_shape(shape)}: switched to {usable[fallback].name}.")
        st.session_state[key] = fallback
    choice = str(st.selectbox("Evaluation data", ids, format_func=lambda i: data_label(usable[i]), key=key))
    state.put(state.SELECTED_DATA, choice)
    if usable[choice].description:
        st.caption(usable[choice].description)
    show_unavailable(records)
    return choice
