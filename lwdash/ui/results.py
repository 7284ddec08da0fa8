"""The Compare page's result pickers and table: model filter, size and latency metric choices, the results table."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from lwdash.figures import latency_choices, latency_metric
from lwdash.measure.catalogue import LARGE_BATCH, PRIMARY_RUNTIME, latency_key, speedup_key
from lwdash.runtimes import get_runtime
from lwdash.ui import state

__all__ = [
    "SIZE_METRICS",
    "latency_metric_choice",
    "model_filter",
    "pick_result",
    "results_table",
    "select_result",
    "size_metric_choice",
]


def model_filter(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """A multiselect over the models that have results; returns the rows of the chosen ones."""
    names = dict(zip(frame["model_id"], frame["model_name"], strict=False))
    chosen = st.multiselect("Models", list(names), default=list(names), format_func=names.__getitem__, key=key)
    return frame[frame["model_id"].isin(chosen)].reset_index(drop=True)


SIZE_METRICS = {
    "onnx_bytes": "ONNX file (dense)",
    "compressed_bytes": "ONNX after zlib",
    "sparse_bytes": "sparse encoding",
}


def size_metric_choice(key: str) -> str:
    """Which size the size chart shows (dense ONNX bytes, compressed bytes, sparse bytes)."""
    return str(st.radio("Size measured as", list(SIZE_METRICS), format_func=SIZE_METRICS.__getitem__,
                        horizontal=True, key=key))


def latency_metric_choice(runtime_key: str, batch_key: str) -> str:
    """Which latency the latency chart shows: a registered runtime and a timed batch (1 / 32)."""
    choices = latency_choices()
    batches = list(choices.batches)
    left, right = st.columns([3, 2])
    rt = left.radio("Runtime", list(choices.runtimes), format_func=choices.runtimes.__getitem__, horizontal=True,
                    key=runtime_key)
    batch = right.radio("Batch", batches, index=batches.index(choices.default_batch), horizontal=True, key=batch_key)
    return latency_metric(str(rt), int(batch))


def results_table(frame: pd.DataFrame) -> None:
    """The results as a sortable table with ratios to each result's own baseline."""
    short = get_runtime(PRIMARY_RUNTIME).short
    lat_ms, lat_x = f"{short} b{LARGE_BATCH} ms", f"{short} b{LARGE_BATCH} speed-up"
    cols = {
        "starred": "★", "label": "result", "technique": "technique", "family": "family", "model_name": "model",
        "top1_acc": "top-1 %", "acc_delta": "Δ top-1 (pts)", "onnx_bytes": "ONNX KiB", "size_ratio": "size ratio",
        latency_key(PRIMARY_RUNTIME, LARGE_BATCH): lat_ms, speedup_key(PRIMARY_RUNTIME, LARGE_BATCH): lat_x,
        "macs_ratio": "MACs ratio", "team_note": "team note", "notes": "notes", "id": "id",
    }
    view = frame[[c for c in cols if c in frame.columns]].copy()
    for c in ("top1_acc", "acc_delta"):
        if c in view:
            view[c] = view[c] * 100.0
    if "onnx_bytes" in view:
        view["onnx_bytes"] = view["onnx_bytes"] / 1024.0
    if "starred" in view:
        view["starred"] = ["★" if s else "" for s in view["starred"]]
    st.dataframe(
        view.rename(columns=cols), hide_index=True, width="stretch",
        column_config={
            "top-1 %": st.column_config.NumberColumn(format="%.2f"),
            "Δ top-1 (pts)": st.column_config.NumberColumn(format="%+.2f"),
            "ONNX KiB": st.column_config.NumberColumn(format="%.1f"),
            "size ratio": st.column_config.NumberColumn(format="%.3fx"),
            lat_ms: st.column_config.NumberColumn(format="%.3f"),
            lat_x: st.column_config.NumberColumn(format="%.2fx"),
            "MACs ratio": st.column_config.NumberColumn(format="%.3fx"),
        },
    )
    st.download_button(
        "Download these results as CSV", data=frame.to_csv(index=False), file_name="lwdash-results.csv",
        mime="text/csv", key=state.COMPARE_CSV, icon=":material/table:", on_click="ignore",
    )


def select_result(result_id: str) -> None:
    """Make ``result_id`` the result shown in detail (chart selections call this)."""
    state.put(state.SELECTED_RESULT, result_id)


def _sync_pick(key: str) -> None:
    state.put(state.SELECTED_RESULT, st.session_state[key])


def pick_result(frame: pd.DataFrame, key: str) -> str | None:
    """Result selectbox, kept in step with chart selections; returns the selected result id."""
    if frame.empty:
        return None
    ids = list(frame["id"])
    labels = {r.id: f"{r.label} · {r.model_name} · {r.id[:8]}" for r in frame.itertuples()}
    selected = state.get(state.SELECTED_RESULT)
    if selected not in ids:
        selected = ids[0]
        state.put(state.SELECTED_RESULT, selected)
    st.session_state[key] = selected
    st.selectbox("Result", ids, format_func=labels.__getitem__, key=key, on_change=_sync_pick, args=(key,),
                 help="Or click a point on either chart.")
    return str(selected)
