"""Store records as the page sections need them: models listed with the error shown, a model and a data set
checked for fit, the CLI's references to them, shapes and sizes as text.

The lowest module of the panels: every section may import it; it imports none of them.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from lwdash.models.base import ModelLoadError
from lwdash.reproduce import cli_data_arg, cli_model_arg
from lwdash.store.records import ModelRecord, NotFoundError
from lwdash.ui.text import literal
from lwdash.workspace import Store

__all__ = ["bytes_text", "cli_refs", "fitting_records", "list_models", "shape_text"]


def list_models(store: Store) -> list[ModelRecord]:
    """Every sample and upload; an unreadable sample manifest is shown with ``st.error`` (and leaves the uploads)."""
    try:
        return store.list_models()
    except ModelLoadError as e:  # a missing or broken sample manifest must not take uploads down with it
        st.error(f"The bundled samples could not be listed: {e}")
        return []


def shape_text(shape: Sequence[int]) -> str:
    """``(1, 28, 28)``."""
    return "(" + ", ".join(str(d) for d in shape) + ")"


def bytes_text(n: int) -> str:
    """A size in KiB, or in MiB from 1 MiB up."""
    return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n / 1024:,.1f} KiB"


def cli_refs(store: Store, model_id: str, data_ref: str) -> tuple[str, str | None, str]:
    """``--model``, ``--arch`` and ``--data`` of the CLI command that reproduces a measurement."""
    try:
        rec = store.get_model(model_id)
        model, arch = cli_model_arg(model_id, rec.path), (rec.arch if rec.source_format == "state_dict" else None)
    except (NotFoundError, ModelLoadError):
        model, arch = model_id, None
    try:
        data = cli_data_arg(data_ref, store.get_dataset(data_ref).path)
    except NotFoundError:
        data = data_ref
    return model, arch, data


def fitting_records(store: Store, model_id: str, data_ref: str, refusal: str) -> tuple[ModelRecord, Any] | None:
    """The model's and the data set's records if the data fits the model; else ``None``, the reason shown.

    Args:
        refusal: the start of the error, e.g. ``"The scan was not queued"``.
    """
    from lwdash.data.fit import records_mismatch

    try:
        model, data = store.get_model(model_id), store.get_dataset(data_ref)
    except (NotFoundError, ModelLoadError) as e:
        st.error(f"{refusal}: {literal(e)}")
        return None
    mismatch = records_mismatch(model, data)
    if mismatch:
        st.error(f"{refusal}: {literal(mismatch)}")
        return None
    return model, data
