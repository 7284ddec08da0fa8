"""A model's own baseline: its measured metrics on the chosen data set, the reproduce command, (re)measuring it."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from lwdash.analysis.baseline import BASELINE_KIND, baseline_spec, latest_baseline
from lwdash.jobs.spec import JobRecord, JobStatus
from lwdash.measure.catalogue import LARGE_BATCH, PRIMARY_RUNTIME
from lwdash.reproduce import reproduce_command
from lwdash.runtimes import LATENCY_BATCHES, get_runtime, list_runtimes
from lwdash.ui import state
from lwdash.ui.datasets import pick_data
from lwdash.ui.jobs import JOB_REFRESH_S
from lwdash.ui.records import bytes_text, cli_refs, fitting_records
from lwdash.ui.resources import get_store
from lwdash.ui.text import literal
from lwdash.workspace import Store

__all__ = ["model_baseline", "queue_baseline"]


def _pending_baselines(store: Store, model_id: str, data_ref: str) -> list[JobRecord]:
    return store.jobs_of(BASELINE_KIND, model_id, data_ref=data_ref, status=[JobStatus.QUEUED, JobStatus.RUNNING])


def queue_baseline(store: Store, model_id: str, data_ref: str) -> str | None:
    """Queue a baseline measurement of ``model_id`` on ``data_ref``, unless one is already waiting.

    Returns:
        The job id, or ``None`` when the data set does not fit the model (the reason is shown).
    """
    pending = _pending_baselines(store, model_id, data_ref)
    if pending:
        return pending[0].id
    if fitting_records(store, model_id, data_ref, "The baseline was not measured") is None:
        return None
    return store.submit(baseline_spec(model_id, data_ref))


@st.fragment(run_every=JOB_REFRESH_S)
def _baseline_progress(model_id: str, data_ref: str) -> None:
    """Live progress of this model's baseline measurement; reruns the page when it ends."""
    store = get_store()
    pending = _pending_baselines(store, model_id, data_ref)
    for j in pending:
        st.progress(min(max(j.progress, 0.0), 1.0), text=f"Measuring the baseline · {j.status.value} · "
                    f"{j.message or 'waiting for the worker'}")
    if not pending:
        st.rerun(scope="app")


def model_baseline(store: Store, model_id: str) -> None:
    """The model's own measured metrics on the chosen data set, with the button that (re)measures them."""
    st.markdown("**Baseline, measured on this machine**")
    data_ref = pick_data(store, key=state.MODELS_DATA, model_id=model_id)
    measured = latest_baseline(store, model_id, data_ref)
    failed = store.jobs_of(BASELINE_KIND, model_id, data_ref=data_ref, status=[JobStatus.FAILED], limit=1)
    if failed and (measured is None or (failed[0].finished_at or 0) > measured.created_at):
        st.error(f"The last measurement failed: {literal((failed[0].error or 'no reason recorded').splitlines()[0])}")
    if measured is not None:
        m = measured.metrics
        cols = st.columns(6)
        cols[0].metric("Top-1, ONNX Runtime", f"{100 * m.top1_acc:.2f} %")
        cols[1].metric("Top-1, PyTorch", f"{100 * m.torch_top1_acc:.2f} %")
        cols[2].metric("ONNX file", bytes_text(m.onnx_bytes))
        cols[3].metric("MACs per sample", f"{m.macs:,}")
        primary = get_runtime(PRIMARY_RUNTIME)
        for col, batch in zip(cols[4:], LATENCY_BATCHES, strict=False):
            col.metric(f"{primary.short} latency, batch {batch}", f"{m.latency_ms(primary.key, batch):.3f} ms")
        when = pd.Timestamp(measured.created_at, unit="s").strftime("%Y-%m-%d %H:%M UTC")
        source = ("a baseline measurement" if measured.source == BASELINE_KIND
                  else f"the baseline of result `{measured.source_id[:8]}`")
        cpu = measured.environment.get("cpu_model") or "this machine"
        others = "".join(f"{rt.title} batch {LARGE_BATCH}: {m.latency_ms(rt.key, LARGE_BATCH):.3f} ms · "
                         for rt in list_runtimes() if rt.key != primary.key and rt.key in m.runtimes)
        st.caption(f"{m.test_samples} test samples · medians after warm-up, {m.threads} thread(s) on {cpu} · "
                   f"{others}from {source}, {when}.")
        model_arg, arch, data_arg = cli_refs(store, model_id, data_ref)
        st.code(reproduce_command("measure", model=model_arg, arch=arch, data=data_arg), language="bash")
    if _pending_baselines(store, model_id, data_ref):
        _baseline_progress(model_id, data_ref)
        return
    if measured is None:
        st.caption("Not measured on this data set yet: accuracy, size, MACs and latency, the way every "
                   "compression result's baseline is measured (a background job, seconds for the samples).")
    label = "Measure again" if measured is not None else "Measure the baseline"
    if st.button(label, key=state.MODELS_MEASURE, icon=":material/speed:"):
        if queue_baseline(store, model_id, data_ref):
            st.rerun()
