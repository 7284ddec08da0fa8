"""Compare and Layers page sections: filters, the 3-D view, jobs without a point, exports,
side-by-side comparison, per-layer views and the sensitivity scan.

Like :mod:`lwdash.ui.panels`, each section reads the store, renders, and keeps only selections
and ids in session state; the numbers and figures come from the library (``lwdash.analysis``,
``lwdash.figures``, ``lwdash.report``).
"""
from __future__ import annotations

import io
import math
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from lwdash.analysis.filters import JOB_STATUSES, ResultFilter, filter_jobs, filter_results, jobs_frame
from lwdash.analysis.layers import layer_frame
from lwdash.analysis.sensitivity import SCAN_TYPE, ScanConfig, scan_technique
from lwdash.figures import histogram_info, layer_names, plot_tradeoff_3d, plot_weight_histogram, tradeoff3d_info
from lwdash.figures.comparison import comparison_info
from lwdash.figures.histogram import multi_histogram_info, plot_multi_histogram
from lwdash.figures.layers import (
    layer_error_info,
    layer_share_info,
    layer_sparsity_info,
    plot_layer_bars,
    plot_sensitivity,
    sensitivity_info,
)
from lwdash.jobs.spec import JobSpec, JobStatus
from lwdash.store.records import NotFoundError
from lwdash.ui import state
from lwdash.ui.records import fitting_records
from lwdash.ui.resources import get_store, model_title
from lwdash.ui.text import literal
from lwdash.workspace import Store

__all__ = [
    "SCAN_REFRESH_S",
    "chart_3d",
    "compare_filters",
    "follow_result_model",
    "jobs_without_points",
    "layer_histogram",
    "layer_views",
    "report_downloads",
    "scan_launcher",
    "scan_progress",
    "scan_results",
    "side_by_side",
]

#: Seconds between refreshes of the scan-progress fragment.
SCAN_REFRESH_S = 2.0
_WHOLE_MODEL = "(whole model)"


# ------------------------------------------------------------------------------------------ compare


def compare_filters(store: Store, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, ResultFilter]:
    """Model, technique-family, job-status and date filters.

    Returns:
        The kept results (points), the kept jobs without a point, and the filter itself.
    """
    jobs = jobs_frame(store.list_jobs(limit=2000))
    names = dict(zip(frame["model_id"], frame["model_name"], strict=False))
    for m in jobs["model_id"]:
        names.setdefault(m, m)
    families = sorted(set(frame["family"]) | set(jobs["family"]))
    c = st.columns([3, 3, 2, 2])
    models = c[0].multiselect("Models", list(names), default=list(names), format_func=names.__getitem__,
                              key=state.COMPARE_MODELS)
    fams = c[1].multiselect("Technique families", families, default=families, key=state.COMPARE_FAMILIES)
    statuses = c[2].multiselect(
        "Job status", list(JOB_STATUSES), default=["done", "failed"], key=state.COMPARE_STATUSES,
        help="Only finished (done) jobs have a point. Failed, cancelled, running and queued jobs are listed "
        "under the charts: the configs missing from the front, and why.",
    )
    days = [d for d in [*pd.to_datetime(frame["created_at"]).dt.date, *jobs["created_at"].dt.date] if d]
    raw = c[3].date_input(
        "Finished between", value=[], min_value=min(days) if days else None, max_value=max(days) if days else None,
        key=state.COMPARE_DATES, help="Leave empty for every date.",
    )
    picked: tuple[Any, ...] = tuple(raw) if isinstance(raw, (list, tuple)) else (raw,) if raw else ()
    flt = ResultFilter(
        models=tuple(models), families=tuple(fams), statuses=tuple(statuses),
        date_from=picked[0] if picked else None, date_to=picked[1] if len(picked) > 1 else (picked[0] if picked else None),
    )
    return filter_results(frame, flt), filter_jobs(jobs, flt), flt


def chart_3d(frame: pd.DataFrame, *, ratio_to_baseline: bool, latency_metric: str) -> None:
    """The 3-D accuracy / size / latency view (non-dominated in all three highlighted), in an expander."""
    with st.expander("3-D view: accuracy / size / latency", icon=":material/view_in_ar:"):
        info = tradeoff3d_info(frame, "onnx_bytes", latency_metric, "top1_acc", ratio_to_baseline)
        st.plotly_chart(plot_tradeoff_3d(info), key=state.COMPARE_3D_CHART, width="stretch")
        front = sum(p.on_front for p in info.points)
        st.caption(f"{front} of {len(info.points)} result(s) are non-dominated in all three objectives (bold). "
                   "Drag to rotate; the latency axis follows the runtime and batch chosen above.")


def jobs_without_points(jobs: pd.DataFrame) -> None:
    """The selected failed / cancelled / running / queued jobs: configs that have no point, and why."""
    if jobs.empty:
        return
    counts = jobs["status"].value_counts()
    st.markdown("**Jobs without a point** · " + " · ".join(f"{n} {s}" for s, n in counts.items()))
    jobs = jobs.assign(model_id=[model_title(m) for m in jobs["model_id"]])
    view = jobs[["status", "label", "model_id", "family", "created_at", "progress", "error", "id"]].rename(
        columns={"label": "config", "model_id": "model", "created_at": "created", "error": "reason / message"}
    )
    st.dataframe(view, hide_index=True, width="stretch",
                 column_config={"progress": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0)})


def _png_zip(frame: pd.DataFrame, ratio: bool) -> bytes:
    from lwdash.report import compare_figures, write_pngs

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_pngs(compare_figures(frame, ratio_to_baseline=ratio), Path(tmp))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in paths:
                zf.write(p, arcname=p.name)
        return buf.getvalue()


def report_downloads(store: Store, frame: pd.DataFrame, flt: ResultFilter, *, ratio: bool) -> None:
    """Download the shown results as a self-contained HTML report and the charts as PNG images."""
    from lwdash.report import build_report_html

    left, right, _ = st.columns([1, 1, 2])

    def html() -> bytes:
        names = {m: model_title(m) for m in flt.models or ()}
        return build_report_html(store, frame, scope=flt.describe(names)).encode("utf-8")

    left.download_button(
        "Download the HTML report", data=html, file_name="lwdash-report.html", mime="text/html",
        key=state.COMPARE_REPORT, icon=":material/description:", on_click="ignore", disabled=frame.empty,
        help="One file that opens offline: interactive charts, the results table, configs and environment.",
    )
    right.download_button(
        "Download the charts as PNG", data=lambda: _png_zip(frame, ratio), file_name="lwdash-charts.zip",
        mime="application/zip", key=state.COMPARE_PNG, icon=":material/image:", on_click="ignore",
        disabled=frame.empty, help="Rendered with kaleido; takes a few seconds.",
    )


def side_by_side(store: Store, frame: pd.DataFrame) -> None:
    """Pick 2-4 results: their metrics side by side and their weight histograms overlaid."""
    st.subheader("Side by side")
    labels = {r.id: f"{r.label} · {r.model_name} · {r.id[:6]}" for r in frame.itertuples()}
    chosen = st.multiselect("Choose 2 to 4 to compare", list(labels), format_func=labels.__getitem__,
                            max_selections=4, key=state.COMPARE_SIDE)
    if len(chosen) < 2:
        st.caption("Choose two to four results to see their metrics side by side and their weights overlaid.")
        return
    try:
        records = [store.get_result(rid) for rid in chosen]
    except NotFoundError as e:
        st.warning(f"A chosen result no longer exists: {e}")
        return
    info = comparison_info(records)
    table = info.table.copy()
    table["best"] = [info.best.get(i, "").rsplit(" · ", 1)[0] for i in table.index]
    st.dataframe(table, width="stretch", height=35 * (len(table) + 1) + 3)
    if info.note:
        st.caption(info.note)
    first = records[0]
    same = [r for r in records if r.model_id == first.model_id]
    layers = layer_names(first.baseline_weights)
    if not layers:
        return
    left, right = st.columns([3, 1])
    options = [_WHOLE_MODEL, *layers]
    if st.session_state.get(state.COMPARE_SIDE_LAYER) not in options:
        st.session_state[state.COMPARE_SIDE_LAYER] = _WHOLE_MODEL
    choice = left.selectbox("Overlay the weights of", options, key=state.COMPARE_SIDE_LAYER)
    log_y = right.toggle("Log scale", value=True, key=state.COMPARE_SIDE_LOG)
    overlay = multi_histogram_info(first.baseline_weights, [(r.label, r.compressed_weights) for r in same],
                                   None if choice == _WHOLE_MODEL else choice)
    st.plotly_chart(plot_multi_histogram(overlay, log_y=log_y), key=f"{state.COMPARE_SIDE}.hist", width="stretch")
    if overlay.note:
        st.caption(overlay.note)


# ------------------------------------------------------------------------------------------ layers


def layer_histogram(rec: Any, layer_key: str, log_key: str, chart_key: str) -> None:
    """Original-vs-compressed weight histogram of one layer (or the whole model) of a result."""
    layers = layer_names(rec.baseline_weights)
    if not layers:
        st.info("No weight summary was recorded for this result.")
        return
    left, right = st.columns([3, 1])
    options = [_WHOLE_MODEL, *layers]
    if st.session_state.get(layer_key) not in options:
        st.session_state[layer_key] = _WHOLE_MODEL
    choice = left.selectbox("Weights of", options, key=layer_key)
    log_y = right.toggle("Log scale", value=True, key=log_key)
    info = histogram_info(rec.baseline_weights, rec.compressed_weights or None,
                          None if choice == _WHOLE_MODEL else choice)
    st.plotly_chart(plot_weight_histogram(info, log_y=log_y), key=chart_key, width="stretch")
    if info.note:
        st.caption(info.note)


def layer_views(store: Store, result_id: str) -> None:
    """Per-layer views of one result: histograms, sparsity, parameter / MAC share, weight error."""
    try:
        rec = store.get_result(result_id)
    except NotFoundError:
        st.warning(f"Result {result_id} no longer exists.")
        return
    st.caption(f"{rec.technique} ({rec.family}) · model `{rec.model_id}` · result `{rec.id}`")
    frame = layer_frame(rec.baseline_weights, rec.compressed_weights)
    if frame.empty:
        st.info("No per-layer weight summary was recorded for this result.")
        return
    tabs = st.tabs(["Weights", "Sparsity", "Parameters & MACs", "Weight error", "Table"])
    with tabs[0]:
        layer_histogram(rec, state.LAYERS_HIST_LAYER, state.LAYERS_HIST_LOG, f"{state.LAYERS_PICK}.hist")
    for tab, info, name in ((tabs[1], layer_sparsity_info(frame), "sparsity"),
                            (tabs[2], layer_share_info(frame), "share"),
                            (tabs[3], layer_error_info(frame), "error")):
        with tab:
            if info.empty:  # nothing to draw: say why instead of showing empty axes
                st.info(info.note or "Nothing was recorded for this view.", icon=":material/info:")
                continue
            st.plotly_chart(plot_layer_bars(info), key=f"{state.LAYERS_PICK}.{name}", width="stretch")
            if info.note:
                st.caption(info.note)
    with tabs[4]:
        view = frame.copy()
        for col in ("params_share", "macs_share", "sparsity_before", "sparsity_after"):
            view[col] = view[col] * 100.0
        st.dataframe(
            view, hide_index=True, width="stretch",
            column_config={
                "params_share": st.column_config.NumberColumn("params %", format="%.1f"),
                "macs_share": st.column_config.NumberColumn("MACs %", format="%.1f"),
                "sparsity_before": st.column_config.NumberColumn("zeros before %", format="%.1f"),
                "sparsity_after": st.column_config.NumberColumn("zeros after %", format="%.1f"),
                "mse": st.column_config.NumberColumn("MSE", format="%.3e"),
                "sqnr_db": st.column_config.NumberColumn("SQNR dB", format="%.1f"),
            },
        )


# ------------------------------------------------------------------------------------------ scans


def follow_result_model(frame: pd.DataFrame, result_id: str | None) -> None:
    """When the picked result changes, make its model the one the scan section works on."""
    if not result_id or state.get(f"{state.LAYERS_PICK}.followed") == result_id:
        return
    state.put(f"{state.LAYERS_PICK}.followed", result_id)
    rows = frame.loc[frame["id"] == result_id, "model_id"]
    if len(rows):
        state.put(state.SELECTED_MODEL, str(rows.iloc[0]))
        st.session_state[state.LAYERS_MODEL] = str(rows.iloc[0])


def _parse_levels(text: str) -> list[float]:
    out = []
    for part in text.replace(";", ",").split(","):
        if part.strip():
            out.append(float(part))
    return out


def scan_launcher(store: Store, model_id: str, data_ref: str) -> str | None:
    """Mode and levels of a per-layer sensitivity scan, and the button that queues it as a background job.

    Returns:
        The queued job's id (also kept in session state), or ``None``.
    """
    left, right = st.columns([1, 2])
    mode = left.radio("Change one layer at a time by", ["prune", "quantize"], horizontal=True, key=state.LAYERS_MODE,
                      format_func={"prune": "magnitude pruning", "quantize": "fake-quantization"}.__getitem__)
    defaults = {"prune": "0.3, 0.5, 0.7, 0.9", "quantize": "8, 6, 4"}
    if st.session_state.get(f"{state.LAYERS_LEVELS}.mode") != mode:  # the mode changed: its default levels
        st.session_state[state.LAYERS_LEVELS] = defaults[mode]
        st.session_state[f"{state.LAYERS_LEVELS}.mode"] = mode
    levels_text = right.text_input(
        "Levels" + (" (fraction of the layer's weights removed)" if mode == "prune" else " (bits per weight)"),
        key=state.LAYERS_LEVELS,
    )
    if not st.button("Run the sensitivity scan", key=state.LAYERS_LAUNCH, type="primary",
                     icon=":material/play_arrow:"):
        return None
    try:
        cfg = ScanConfig.from_dict({"mode": mode, "levels": _parse_levels(levels_text)})
    except ValueError as e:
        st.error(f"The scan was not queued: {e}")
        return None
    if fitting_records(store, model_id, data_ref, "The scan was not queued") is None:
        return None
    levels = ", ".join(f"{v:g}" for v in cfg.levels)
    job_id = store.submit(JobSpec(model_id=model_id, data_ref=data_ref, technique=scan_technique(cfg),
                                  label=f"sensitivity scan: {cfg.mode} {levels}", kind="sensitivity"))
    state.put(state.LAYERS_SCAN_JOB, job_id)
    st.success(f"Queued the scan as job `{job_id[:8]}`: its progress shows below.")
    return job_id


@st.fragment(run_every=SCAN_REFRESH_S)
def scan_progress(model_id: str) -> None:
    """Live progress of this model's queued and running scans; reruns the page when one finishes."""
    store = get_store()
    jobs = store.jobs_of("sensitivity", model_id, status=[JobStatus.QUEUED, JobStatus.RUNNING])
    for j in jobs:
        st.progress(min(max(j.progress, 0.0), 1.0),
                    text=f"{j.spec.label} · {j.status.value} · {j.message or ''}".rstrip(" ·"))
    watched = state.get(state.LAYERS_SCAN_JOB)
    if watched and not any(j.id == watched for j in jobs):
        try:
            job = store.get_job(watched)
        except NotFoundError:
            job = None
        state.put(state.LAYERS_SCAN_JOB, None)
        if job is not None and job.status is JobStatus.FAILED:
            st.error(f"The scan failed: {literal((job.error or 'no reason recorded').splitlines()[0])}")
        elif job is not None and job.status is JobStatus.DONE:
            state.put(state.LAYERS_SCAN, job.result_id)
            st.rerun(scope="app")  # its curves appear below


def scan_results(store: Store, model_id: str) -> None:
    """The finished scans of a model: pick one, see its curves, the most sensitive layers and the table."""
    scans = [a for a in store.list_analyses(model_id=model_id, kind="sensitivity")
             if a.config.get("type") == SCAN_TYPE]
    if not scans:
        st.info("No sensitivity scan of this model yet: run one above (it takes seconds for the samples).")
        return
    labels = {}
    for a in scans:
        levels = ", ".join(f"{v:g}" for v in a.payload.get("levels", []))
        when = pd.Timestamp(a.created_at, unit="s").strftime("%Y-%m-%d %H:%M")
        labels[a.id] = f"{a.payload.get('mode', '?')} at {levels} · {when} · {a.id[:6]}"
    if st.session_state.get(state.LAYERS_SCAN) not in labels:
        st.session_state[state.LAYERS_SCAN] = scans[0].id
    chosen = st.selectbox("Scan", list(labels), format_func=labels.__getitem__, key=state.LAYERS_SCAN)
    scan = next(a for a in scans if a.id == chosen)
    info = sensitivity_info(scan.payload)
    st.plotly_chart(plot_sensitivity(info), key=f"{state.LAYERS_SCAN}.chart", width="stretch")
    p = scan.payload
    st.caption(f"{info.summary} Each layer changed alone, no fine-tuning; {p.get('metric', '')} on "
               f"{p.get('test_samples', '?')} samples, {p.get('threads', '?')} thread(s); the scan took "
               f"{float(p.get('wall_s', math.nan)):.1f} s.")
    table = pd.DataFrame(
        {f"{v:g}": [100.0 * r["acc"][k] for r in p["layers"]] for k, v in enumerate(p["levels"])},
        index=[r["name"] for r in p["layers"]],
    )
    table.insert(0, "params", [r["params"] for r in p["layers"]])
    st.dataframe(table, width="stretch", column_config={
        c: st.column_config.NumberColumn(f"acc % at {c}", format="%.2f") for c in table.columns if c != "params"
    })
