"""Shared resources: the store (one per process and data dir), the worker, cached frames.

``@st.cache_resource`` holds only the store; DataFrames go through ``@st.cache_data`` keyed by
the store's cheap ``revision()``, so a new result shows up on the next rerun.
"""
from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from lwdash.config import get_settings
from lwdash.store.records import ModelRecord
from lwdash.workspace import SqliteStore

__all__ = ["data_dir", "ensure_router", "ensure_worker_running", "get_store", "model_names", "results_frame"]

#: How often (seconds) the app re-checks that a worker is alive and starts one if not.
WORKER_CHECK_S = 60


def ensure_router() -> None:
    """Run the page through ``app.py`` when Streamlit started it alone (call first on every page).

    Because a ``pages/`` folder exists, Streamlit starts each process in its legacy pages-folder
    mode until some session calls ``st.navigation``: the first visitor of a deep link (``/compare``)
    on a fresh server gets that page alone, with no page config, no worker check and the file
    names as navigation. ``st.navigation`` turns that mode off for the process; here the router
    script runs in place (it routes back to this page) and this outer run then stops, all in
    one script run, so no widget event is lost.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
        from streamlit.runtime.scriptrunner import get_script_run_ctx
    except ImportError:  # pragma: no cover - a Streamlit without the legacy mode
        return
    ctx = get_script_run_ctx()
    if not PagesManager.uses_pages_directory or ctx is None:
        return
    import runpy

    PagesManager.uses_pages_directory = False
    runpy.run_path(ctx.main_script_path, run_name="__main__")
    st.stop()


def data_dir() -> str:
    """The resolved data directory (``LWDASH_DATA_DIR`` or ``./.lwdash-data``)."""
    return str(get_settings().data_dir)


@st.cache_resource(show_spinner=False)
def _store(path: str) -> SqliteStore:
    return SqliteStore(path)


def get_store() -> SqliteStore:
    """The process-wide store for the current data directory."""
    return _store(data_dir())


@st.cache_resource(show_spinner=False, ttl=WORKER_CHECK_S)
def _worker(path: str) -> bool:
    from lwdash.jobs.worker import ensure_worker

    return ensure_worker(path)


def ensure_worker_running() -> bool:
    """Start a background worker unless one is alive (checked at most once a minute per process).

    ``LWDASH_NO_WORKER=1`` turns this off (tests that must not spawn processes).

    Returns:
        True if this call started a worker.
    """
    if os.environ.get("LWDASH_NO_WORKER", "") not in ("", "0"):
        return False
    return _worker(data_dir())


@st.cache_data(show_spinner=False, max_entries=16)
def _results_frame(path: str, revision: int) -> pd.DataFrame:
    del revision  # only part of the cache key
    from lwdash.analysis.frame import load_results_frame
    from lwdash.models.base import ModelLoadError

    frame = load_results_frame(_store(path))
    try:
        names = {m.id: m.title or m.name for m in _store(path).list_models()}
    except ModelLoadError:  # no sample manifest: show ids rather than nothing
        names = {}
    frame.insert(3, "model_name", [names.get(m, m) for m in frame["model_id"]])
    return frame


def results_frame() -> pd.DataFrame:
    """Every result as one flat row (see :func:`lwdash.analysis.frame.results_frame`) plus ``model_name``."""
    store = get_store()
    return _results_frame(data_dir(), store.revision("results", "models", "annotations"))


@st.cache_data(show_spinner=False, max_entries=4)
def _model_titles(path: str, revision: int) -> dict[str, str]:
    del revision  # only part of the cache key
    try:
        return {m.id: m.title or m.name for m in _store(path).list_models()}
    except Exception:  # a broken sample manifest: ids stand in for names rather than take the page down
        return {}


def model_title(model_id: str) -> str:
    """The name a person knows a model by (a sample's title, an upload's file name); the id when unknown."""
    return _model_titles(data_dir(), get_store().revision("models", "annotations")).get(model_id, model_id)


def model_names(models: list[ModelRecord]) -> dict[str, str]:
    """Model id -> a display name ("digits_cnn (sample)", "net.onnx (upload)")."""
    return {m.id: f"{m.title or m.name} ({m.kind})" for m in models}
