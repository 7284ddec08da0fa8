"""Reusable page sections: model gallery and uploads, pickers, the live job panel, result detail.

Each panel reads from the store, renders, and writes only selections and ids to session state.
Library errors (``ModelLoadError``, ``DataError``, ``ValueError`` from configs) are shown with
``st.error`` so that bad input never stops the app.
"""
from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st
from torch import nn

from lwdash.analysis.baseline import BASELINE_KIND, baseline_spec, latest_baseline
from lwdash.analysis.notes import split_notes
from lwdash.cli import reproduce_command
from lwdash.data import DataError
from lwdash.data.bundled import DEFAULT_DATA, default_data_for, get_bundled
from lwdash.figures import latency_choices, latency_metric
from lwdash.jobs.spec import JobRecord, JobSpec, JobStatus
from lwdash.measure.catalogue import (
    LARGE_BATCH,
    PRIMARY_RUNTIME,
    latency_key,
    metrics_for,
    speedup_key,
    table_format,
    table_value,
)
from lwdash.measure.metrics import Metrics
from lwdash.models.base import ModelLoadError
from lwdash.runtimes import LATENCY_BATCHES, get_runtime, list_runtimes
from lwdash.store.records import ModelRecord, NotFoundError
from lwdash.store.sqlite import MODEL_SUFFIXES, SqliteStore
from lwdash.techniques import Technique, TechniqueConfig, config_to_dict, list_techniques
from lwdash.ui import runtimes as runtime_views
from lwdash.ui import state
from lwdash.ui.datasets import pick_data
from lwdash.ui.inspect import layer_histogram
from lwdash.ui.resources import data_dir, get_store, model_names, model_title
from lwdash.ui.text import literal

__all__ = [
    "JOB_REFRESH_S",
    "comparison_view",
    "config_table",
    "dataset_upload",
    "fitting_records",
    "headline_metrics",
    "job_panel",
    "latency_metric_choice",
    "layer_table",
    "metrics_comparison",
    "model_baseline",
    "model_filter",
    "model_gallery",
    "model_summary",
    "model_upload",
    "pick_data",
    "pick_model",
    "pick_result",
    "pick_technique",
    "queue_baseline",
    "queue_jobs",
    "result_detail",
    "results_table",
    "select_result",
    "size_metric_choice",
    "steps_table",
    "submitted_jobs",
    "worker_status",
]

#: Seconds between refreshes of the live job panel (only that fragment reruns).
JOB_REFRESH_S = 2.0
_NO_ARCH = "(not a state dict)"
_STATUS_ICON = {
    JobStatus.QUEUED: ":material/schedule:",
    JobStatus.RUNNING: ":material/autorenew:",
    JobStatus.DONE: ":material/check_circle:",
    JobStatus.FAILED: ":material/error:",
    JobStatus.CANCELLED: ":material/cancel:",
}


# ------------------------------------------------------------------------------------------ models


def _list_models(store: SqliteStore) -> list[ModelRecord]:
    try:
        return store.list_models()
    except ModelLoadError as e:  # a missing or broken sample manifest must not take uploads down with it
        st.error(f"The bundled samples could not be listed: {e}")
        return []


def _select_model(model_id: str) -> None:
    state.put(state.SELECTED_MODEL, model_id)


def model_gallery(store: SqliteStore, *, columns: int = 3) -> str | None:
    """Cards for every sample and upload, each with a select button; returns the selected model id."""
    models = _list_models(store)
    selected = state.get(state.SELECTED_MODEL)
    if selected not in {m.id for m in models}:
        selected = models[0].id if models else None
        state.put(state.SELECTED_MODEL, selected)
    cols = st.columns(columns)
    for i, m in enumerate(models):
        with cols[i % columns].container(border=True):
            role = f" · :violet-badge[{m.role}]" if m.role else ""
            st.markdown(f"**{m.title or m.name}**{role}")
            if m.description:
                st.caption(m.description)
            facts = [f"input {_shape(m.input_shape)}", f"{m.num_classes} classes", m.source_format]
            if m.params_count is not None:
                facts.insert(0, f"{m.params_count:,} params")
            st.caption(" · ".join(facts))
            if m.test_acc is not None:
                trained_on = get_bundled(default_data_for(m.input_shape, installed_only=False)).title
                st.caption(f"Recorded test accuracy {100 * m.test_acc:.2f} % (training script, PyTorch, {trained_on} "
                           "test split)")
            is_sel = m.id == selected
            st.button(
                "Selected" if is_sel else "Select", key=f"{state.MODELS_PICK}.{m.id}", disabled=is_sel,
                type="primary" if is_sel else "secondary", on_click=_select_model, args=(m.id,),
            )
    return selected


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def model_upload(store: SqliteStore) -> None:
    """Upload an ONNX / .pt2 / TorchScript / state-dict file; errors are shown, never raised."""
    from lwdash.models import list_architectures

    exts = [s.lstrip(".") for s in MODEL_SUFFIXES]
    up = st.file_uploader(
        "Upload a model", type=exts, key=state.MODELS_UPLOAD, max_upload_size=_upload_limit_mb(),
        help="ONNX (.onnx), torch.export programs (.pt2), TorchScript (.pt/.ts), or a state dict "
        "(.pt/.pth/.safetensors) of an architecture chosen below. Full pickled modules are refused.",
    )
    arch = st.selectbox(
        "Architecture (state dicts only)", [_NO_ARCH, *list_architectures()], key=state.MODELS_ARCH,
        help="A state dict holds only weights: name the architecture they belong to.",
    )
    if up is None:
        return
    arch_key = None if arch == _NO_ARCH else arch
    outcome_key = (up.file_id, arch_key)
    outcome = state.get(state.MODELS_UPLOAD_OUTCOME)
    if outcome is None or outcome[0] != outcome_key:
        try:
            rec = store.import_model(up.name, up.getvalue(), arch=arch_key)
        except ModelLoadError as e:
            outcome = (outcome_key, "error", str(e))
        except Exception as e:  # the app must keep working whatever the file holds
            outcome = (outcome_key, "error", f"{up.name} could not be imported: {type(e).__name__}: {e}")
        else:
            outcome = (outcome_key, "ok", rec.id)
            state.put(state.SELECTED_MODEL, rec.id)
            _measure_on_upload(store, rec)
        state.put(state.MODELS_UPLOAD_OUTCOME, outcome)
        if outcome[1] == "ok":
            st.rerun()  # once: the gallery above and the summary below now show the new model
    if outcome[1] == "error":
        st.error(f"{literal(up.name)} was not imported. {literal(outcome[2])}")
    else:
        st.success(f"Imported {literal(up.name)} as a new model, selected below (its id for the CLI: "
                   f"`{outcome[2]}`).")


def _measure_on_upload(store: SqliteStore, rec: ModelRecord) -> None:
    """A new upload gets its baseline measured at once: on the selected data set when it fits, else on the
    bundled set made for its input shape when there is one."""
    from lwdash.data.fit import records_mismatch

    for ref in dict.fromkeys([state.get(state.SELECTED_DATA) or DEFAULT_DATA, default_data_for(rec.input_shape)]):
        try:
            data = store.get_dataset(ref)
        except NotFoundError:
            continue
        if not data.unavailable and records_mismatch(rec, data) is None:
            if not store.jobs_of(BASELINE_KIND, rec.id, data_ref=ref, limit=1,
                                 status=[JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.DONE]):
                store.submit(baseline_spec(rec.id, ref))  # the same file uploaded again is measured once
            return


def _upload_limit_mb() -> int:
    """The upload limit for the browser's own check, in whole MiB (``LWDASH_MAX_UPLOAD_MB``)."""
    from lwdash.models.loading import max_upload_bytes

    return max(1, math.ceil(max_upload_bytes() / 2**20))


def _selected_input_shape(store: SqliteStore) -> tuple[int, ...] | None:
    model_id = state.get(state.SELECTED_MODEL)
    if not model_id:
        return None
    try:
        return tuple(store.get_model(model_id).input_shape)
    except (NotFoundError, ModelLoadError):
        return None


def dataset_upload(store: SqliteStore) -> None:
    """Upload an ``.npz`` (``x``, ``y``) or a zipped image folder; errors are shown, never raised.

    Image folders are resized to the selected model's input shape.
    """
    target = _selected_input_shape(store)
    fit = f" Images are resized to the selected model's input {_shape(target)}." if target else ""
    up = st.file_uploader(
        "Upload an evaluation set (.npz or a zipped image folder)", type=["npz", "zip"], key=state.MODELS_DATA_UPLOAD,
        max_upload_size=_upload_limit_mb(),
        help="Accepted: an .npz with x (N, ...) numeric inputs and y (N,) integer class ids, or a .zip of class "
        "folders (<class>/<image>.png or .jpg, grayscale or RGB; pixels scaled to [0, 1])." + fit
        + " Split 60/20/20 into train / calibration / test.",
    )
    if up is None:
        return
    outcome_key = (up.file_id, target)
    outcome = state.get(state.MODELS_DATA_OUTCOME)
    if outcome is None or outcome[0] != outcome_key:
        try:
            rec = store.import_dataset(up.name, up.getvalue(), input_shape=target)
        except DataError as e:
            outcome = (outcome_key, "error", str(e))
        except Exception as e:
            outcome = (outcome_key, "error", f"{up.name} could not be imported: {type(e).__name__}: {e}")
        else:
            outcome = (outcome_key, "ok", f"{rec.id}: {rec.samples_count} samples, input {_shape(rec.input_shape)}, "
                       f"{rec.num_classes} classes")
            state.put(state.SELECTED_DATA, rec.id)
            state.put(state.MODELS_DATA, rec.id)  # the baseline panel below measures on it next
        state.put(state.MODELS_DATA_OUTCOME, outcome)
    if outcome[1] == "error":
        st.error(f"{literal(up.name)} was not imported. {literal(outcome[2])}")
    else:
        st.success(f"Imported {up.name} as {outcome[2]}.")


def layer_table(module: nn.Module) -> pd.DataFrame:
    """One row per module that holds parameters itself: name, type, parameter count, weight shape."""
    rows = []
    for name, sub in module.named_modules():
        params = list(sub.parameters(recurse=False))
        if not params:
            continue
        weight = getattr(sub, "weight", None)
        rows.append(
            {
                "layer": name or "(root)",
                "type": type(sub).__name__,
                "params": int(sum(p.numel() for p in params)),
                "weight shape": str(tuple(weight.shape)) if weight is not None and hasattr(weight, "shape") else "",
            }
        )
    return pd.DataFrame(rows, columns=["layer", "type", "params", "weight shape"])


@st.cache_data(show_spinner="Reading the model...", max_entries=32)
def _model_layers(path: str, model_id: str) -> pd.DataFrame:
    del path  # part of the cache key: the same id in another data dir is another model
    return layer_table(get_store().load_model(model_id).module)


def model_summary(store: SqliteStore, model_id: str) -> None:
    """The selected model's format, input shape, classes, parameter count and layer table."""
    try:
        rec = store.get_model(model_id)
        layers = _model_layers(data_dir(), model_id)
    except (NotFoundError, ModelLoadError) as e:
        st.error(f"Model {model_id} cannot be shown: {e}")
        return
    st.subheader(rec.title or rec.name)
    c = st.columns(5)
    c[0].metric("Format", rec.source_format)
    c[1].metric("Input shape", _shape(rec.input_shape))
    c[2].metric("Classes", rec.num_classes)
    c[3].metric("Parameters", f"{int(layers['params'].sum()):,}")
    c[4].metric("File size", _bytes(rec.size_bytes))
    if rec.arch:
        st.caption(f"Architecture: `{rec.arch}` · id `{rec.id}`")
    st.dataframe(layers, hide_index=True, width="stretch")


def _bytes(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n / 1024:,.1f} KiB"


def _cli_refs(store: SqliteStore, model_id: str, data_ref: str) -> tuple[str, str | None, str]:
    """``--model``, ``--arch`` and ``--data`` of the CLI command that reproduces a measurement."""
    from lwdash.cli import cli_data_arg, cli_model_arg

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


def _pending_baselines(store: SqliteStore, model_id: str, data_ref: str) -> list[JobRecord]:
    return store.jobs_of(BASELINE_KIND, model_id, data_ref=data_ref, status=[JobStatus.QUEUED, JobStatus.RUNNING])


def fitting_records(store: SqliteStore, model_id: str, data_ref: str, refusal: str) -> tuple[ModelRecord, Any] | None:
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


def queue_baseline(store: SqliteStore, model_id: str, data_ref: str) -> str | None:
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


def model_baseline(store: SqliteStore, model_id: str) -> None:
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
        cols[2].metric("ONNX file", _bytes(m.onnx_bytes))
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
        model_arg, arch, data_arg = _cli_refs(store, model_id, data_ref)
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


# ------------------------------------------------------------------------------------------ compress


def pick_model(store: SqliteStore, key: str) -> str | None:
    """A model selectbox that starts at (and updates) the shared model selection."""
    models = _list_models(store)
    if not models:
        st.warning("No models yet: upload one on the Models page.")
        return None
    names = model_names(models)
    ids = list(names)
    selected = state.get(state.SELECTED_MODEL)
    if st.session_state.get(key) not in ids:
        st.session_state[key] = selected if selected in ids else ids[0]
    choice = st.selectbox("Model", ids, format_func=names.__getitem__, key=key)
    state.put(state.SELECTED_MODEL, choice)
    return str(choice)


def pick_technique(key: str) -> Technique:
    """A technique selectbox (grouped by family) with the chosen technique's description."""
    techniques = list_techniques()
    by_key = {t.key: t for t in techniques}
    keys = sorted(by_key, key=lambda k: (by_key[k].family, k))
    choice = st.selectbox(
        "Technique", keys, key=key, format_func=lambda k: f"{by_key[k].family} · {by_key[k].title}",
    )
    tech = by_key[choice]
    st.caption(tech.description or tech.title)
    if tech.when:
        st.caption(f"**When to use it:** {tech.when}")
    return tech


def queue_jobs(
    store: SqliteStore, model_id: str, data_ref: str, technique: Technique, configs: Sequence[TechniqueConfig],
    runtimes: Sequence[str] = (),
) -> list[str]:
    """Check every config against the model and the data, then queue one job per config.

    Nothing is queued when any config is refused: the reasons are shown with ``st.error``.
    ``runtimes``: the runtime keys each job measures (``()``: the worker's ``LWDASH_RUNTIMES`` or the defaults).

    Returns:
        The queued job ids (also kept in session state for the confirmation).
    """
    from lwdash.data import check_model_fits

    try:
        with st.spinner("Checking the configs against the model..."):
            model = store.load_model(model_id)
            check_model_fits(model, store.resolve_data(data_ref))
    except (ModelLoadError, DataError, NotFoundError) as e:
        st.error(f"Nothing was queued: {literal(e)}")
        return []
    refused = []
    for cfg in configs:
        try:
            cfg.validate_for(model.module, model.input_shape)
        except ValueError as e:
            refused.append(f"{literal(_knobs(cfg))}: {literal(e)}")
    if refused:
        st.error(f"Nothing was queued: {technique.title} cannot take {len(refused)} of the configs.\n\n- "
                 + "\n- ".join(refused))
        return []
    specs = [JobSpec(model_id=model_id, data_ref=data_ref, technique=config_to_dict(technique.key, c),
                     runtimes=tuple(runtimes)) for c in configs]
    existing = store.jobs_of("compress", model_id, data_ref=data_ref,
                             status=[JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.DONE], limit=100_000)
    twins = {i: next((j for j in existing if s.same_work(j.spec)), None) for i, s in enumerate(specs)}
    repeated = [(configs[i], j) for i, j in twins.items() if j is not None]
    if repeated:
        st.warning(f"Not queued again: {len(repeated)} of the {len(specs)} configs already have an identical job on "
                   "this model and data (retry it on the Jobs page to run it again):\n\n- "
                   + "\n- ".join(f"{_knobs(c)}: job `{j.id[:8]}`, {j.status.value}" for c, j in repeated))
    fresh = [s for i, s in enumerate(specs) if twins[i] is None]
    ids = store.submit_many(fresh) if fresh else []
    state.put(state.SUBMITTED_JOBS, (technique.key, ids))
    return ids


def _knobs(cfg: TechniqueConfig) -> str:
    return ", ".join(f"{k}={v}" for k, v in config_to_dict("", cfg)["data"].items())


def submitted_jobs(technique_key: str) -> None:
    """Confirm the last submit of ``technique_key``: the queued job ids and a link to the Jobs page.

    Nothing is shown once another technique is picked (the confirmation belongs to its form).
    """
    key, ids = state.get(state.SUBMITTED_JOBS) or ("", [])
    if not ids or key != technique_key:
        return
    st.success(f"Queued {len(ids)} job(s): " + ", ".join(f"`{i[:8]}`" for i in ids))
    st.page_link("pages/jobs.py", label="Follow them on the Jobs page", icon=":material/arrow_forward:")


# ------------------------------------------------------------------------------------------ jobs


def worker_status(store: SqliteStore) -> None:
    """Say whether a worker is serving the queue (jobs wait otherwise)."""
    from lwdash.config import get_settings

    workers = store.live_workers(get_settings().worker_max_age_s)
    counts = store.count_jobs()
    summary = " · ".join(f"{n} {s.value}" for s, n in counts.items() if n)
    if workers:
        st.caption(f"{len(workers)} worker(s) running (pid {', '.join(str(w.pid) for w in workers)}). {summary}")
    else:
        st.warning(f"No worker is running: queued jobs wait until one starts (`python -m lwdash worker`). {summary}")


def _job_label(job: JobRecord) -> str:
    if job.spec.label:
        return job.spec.label
    from lwdash.jobs.runner import job_label

    return job_label(job.spec.technique)


def _cancel(job_id: str) -> None:
    try:
        get_store().cancel(job_id)
    except NotFoundError:
        pass


def _retry(job_id: str) -> None:
    try:
        get_store().retry(job_id)
    except (NotFoundError, ValueError):
        pass  # it changed status meanwhile; the panel shows the new one


def _elapsed(job: JobRecord) -> str:
    if job.started_at is None:
        return f"queued {_ago(job.created_at)}"
    end = job.finished_at or time.time()
    return f"ran {end - job.started_at:.1f} s"


def eta_text(progress: float, started_at: float | None, now: float) -> str | None:
    """The time a running job has left, extrapolated linearly from its own progress so far ("about 90 s left").

    ``None`` before 5 % progress: a job's start (loading, export) is a poor predictor of the rest.
    """
    if started_at is None or not 0.05 <= progress < 1.0:
        return None
    left = (now - started_at) * (1.0 - progress) / progress
    return f"about {left:.0f} s left" if left < 120 else f"about {left / 60:.0f} min left"


def _ago(t: float) -> str:
    s = max(0.0, time.time() - t)
    return f"{s:.0f} s ago" if s < 120 else f"{s / 60:.0f} min ago"


def _job_row(job: JobRecord) -> None:
    with st.container(border=True):
        head, buttons = st.columns([5, 1])
        head.markdown(
            f"{_STATUS_ICON[job.status]} **{_job_label(job)}** · {job.status.value} · {literal(model_title(job.spec.model_id))} on "
            f"`{job.spec.data_ref}` · job `{job.id[:8]}` · {_elapsed(job)}"
        )
        if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
            eta = eta_text(job.progress, job.started_at, time.time()) if job.status is JobStatus.RUNNING else None
            text = job.message or job.status.value
            head.progress(min(max(job.progress, 0.0), 1.0), text=f"{text} · {eta}" if eta else text)
            buttons.button("Cancel", key=f"{state.JOBS_PREFIX}.cancel.{job.id}", on_click=_cancel, args=(job.id,))
        elif job.status is JobStatus.FAILED:
            first = (job.error or "failed").strip().splitlines()[0]
            head.error(first)
            with head.expander("Error details"):
                st.code(job.error or "(no details recorded)", language=None)
            buttons.button("Retry", key=f"{state.JOBS_PREFIX}.retry.{job.id}", on_click=_retry, args=(job.id,))
        elif job.status is JobStatus.CANCELLED:
            head.caption(job.message or "cancelled")
            buttons.button("Retry", key=f"{state.JOBS_PREFIX}.retry.{job.id}", on_click=_retry, args=(job.id,))
        elif job.result_id and job.spec.kind == "sensitivity":
            head.page_link("pages/layers.py", label=f"Scan {job.result_id[:8]}: see its curves on the Layers page",
                           icon=":material/arrow_forward:")
        elif job.result_id and job.spec.kind == BASELINE_KIND:
            head.page_link("pages/models.py", label="Measured: see the model's baseline on the Models page",
                           icon=":material/arrow_forward:")
        elif job.result_id:
            head.page_link("pages/compare.py", label=f"Result {job.result_id[:8]}: see it on the Compare page",
                           icon=":material/arrow_forward:")


@st.fragment(run_every=JOB_REFRESH_S)
def job_panel(limit: int = 50) -> None:
    """The worker status line and the live job list (progress, messages, errors, cancel / retry).

    Reruns alone every 2 s, so the counts and the cards never disagree.
    """
    store = get_store()
    worker_status(store)
    jobs = store.list_jobs(limit=limit)
    if not jobs:
        st.info("No jobs yet: queue some on the Compress page.")
        return
    for job in jobs:
        _job_row(job)


# ------------------------------------------------------------------------------------------ compare


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
        "label": "result", "technique": "technique", "family": "family", "model_name": "model",
        "top1_acc": "top-1 %", "acc_delta": "Δ top-1 (pts)", "onnx_bytes": "ONNX KiB", "size_ratio": "size ratio",
        latency_key(PRIMARY_RUNTIME, LARGE_BATCH): lat_ms, speedup_key(PRIMARY_RUNTIME, LARGE_BATCH): lat_x,
        "macs_ratio": "MACs ratio", "notes": "notes", "id": "id",
    }
    view = frame[[c for c in cols if c in frame.columns]].copy()
    for c in ("top1_acc", "acc_delta"):
        if c in view:
            view[c] = view[c] * 100.0
    if "onnx_bytes" in view:
        view["onnx_bytes"] = view["onnx_bytes"] / 1024.0
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


def metrics_comparison(baseline: Metrics, compressed: Metrics) -> pd.DataFrame:
    """Baseline vs compressed, one row per measured figure, with the change and the ratio.

    Accuracies change in percentage points (no ratio); everything else also gets
    ``compressed / baseline`` and, for latencies, the speed-up ``baseline / compressed``.
    """
    rows = []
    for spec in metrics_for("detail"):
        bv, cv = baseline.value(spec.key), compressed.value(spec.key)
        ratio = cv / bv if bv else math.nan
        rows.append(
            {
                "metric": spec.row,
                "baseline": table_value(spec, bv),
                "compressed": table_value(spec, cv),
                "change": (cv - bv) * 100.0 if spec.accuracy_like else table_value(spec, cv) - table_value(spec, bv),
                "ratio": math.nan if spec.accuracy_like else ratio,
                "speed-up": (bv / cv if cv else math.nan) if spec.kind == "ms" else math.nan,
            }
        )
    return pd.DataFrame(rows)


def comparison_view(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`metrics_comparison` as display strings, each row in its own unit's format."""
    fmts = [table_format(spec) for spec in metrics_for("detail")]

    def num(v: float, fmt: str, sign: str = "") -> str:
        return "" if not math.isfinite(v) else format(v, sign + fmt)

    def times(v: float, digits: int) -> str:
        return "" if not math.isfinite(v) else f"{v:.{digits}f}x"

    return pd.DataFrame(
        {
            "metric": table["metric"],
            "baseline": [num(v, f) for v, f in zip(table["baseline"], fmts, strict=True)],
            "compressed": [num(v, f) for v, f in zip(table["compressed"], fmts, strict=True)],
            "change": [num(v, f, "+") for v, f in zip(table["change"], fmts, strict=True)],
            "ratio": [times(v, 3) for v in table["ratio"]],
            "speed-up": [times(v, 2) for v in table["speed-up"]],
        }
    )


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "model"


def _artifact(store: SqliteStore, paths: dict[str, Path], artifact_dir: Path, name: str) -> Path | None:
    path = Path(paths.get(name) or artifact_dir / name).resolve()
    if not path.is_relative_to(store.artifacts_dir.resolve()) or not path.is_file():
        return None
    return path


def _downloads(store: SqliteStore, rec: Any) -> None:
    names = {"model.onnx": "ONNX model", "model.pt2": "PyTorch program (.pt2)", "model_card.md": "Model card",
             "model_card.json": "model card (JSON)", "result.json": "result.json"}
    present = {n: p for n in [*names, *runtime_views.runtime_download_names()]
               if (p := _artifact(store, rec.artifacts, rec.artifact_dir, n)) is not None}
    # each runtime's own artifact (OpenVINO IR, TVM library) when this result has one
    names.update({n: t for n, t in runtime_views.runtime_download_names().items() if n in present})
    cols = [c for _ in range(-(-len(names) // 3)) for c in st.columns(3)][: len(names)]  # rows of 3: labels stay whole
    for col, (name, title) in zip(cols, names.items(), strict=True):
        path = present.get(name)
        if path is None:
            col.caption(f"{title}: not available for this result")
            continue
        col.download_button(
            f"Download {title}", data=path.read_bytes, file_name=f"{_safe_name(rec.label)}-{name}",
            key=f"{state.COMPARE_DOWNLOAD}.{name}", icon=":material/download:", on_click="ignore",
            mime="text/markdown" if name.endswith(".md") else "application/json" if name.endswith(".json")
            else "application/xml" if name.endswith(".xml") else "application/octet-stream",
        )
    runtime_views.runtime_howto(list(present))


def result_detail(store: SqliteStore, result_id: str) -> None:
    """One result: metrics vs baseline, honest flags, weight histograms, downloads."""
    try:
        rec = store.get_result(result_id)
    except NotFoundError:
        st.warning(f"Result {result_id} no longer exists.")
        return
    st.subheader(rec.label)
    knobs = ", ".join(f"{k}={v}" for k, v in (rec.config.get("data") or {}).items())
    st.caption(
        f"{rec.technique} ({rec.family}) · {knobs or 'default config'} · model {literal(model_title(rec.model_id))} "
        f"(`{rec.model_id}`) · data "
        f"`{rec.data_ref}` · {rec.compressed.test_samples} test samples · {rec.compressed.threads} thread(s) · "
        f"seed {rec.seed} · result `{rec.id}`"
    )
    headline_metrics(rec.baseline, rec.compressed)
    warnings, described = split_notes(rec.notes)
    for note in warnings:  # a cost or a miss: what a reader must not overlook
        st.warning(note, icon=":material/flag:")
    if described:  # what the technique did: neutral
        st.info("\n".join(f"- {literal(n)}" for n in described), icon=":material/info:")
    table = comparison_view(metrics_comparison(rec.baseline, rec.compressed))
    st.dataframe(table, hide_index=True, width="stretch", height=35 * (len(table) + 1) + 3)
    runtime_views.latency_matrix_panel(rec.baseline, rec.compressed)
    config_col, steps_col = st.columns([1, 2])
    with config_col:
        st.markdown("**Configuration**")
        st.dataframe(config_table(rec.config), hide_index=True, width="stretch")
    with steps_col:
        st.markdown(f"**Steps** ({len(rec.steps)})" if rec.steps else "**Steps**")
        if rec.steps:
            st.dataframe(steps_table(rec.steps), hide_index=True, width="stretch")
        else:
            st.caption("A single-step technique: its metrics are the table above.")
    layer_histogram(rec, state.COMPARE_DETAIL_LAYER, state.COMPARE_DETAIL_LOG, state.COMPARE_DETAIL_CHART)
    st.page_link("pages/layers.py", label="Per-layer views of this result: sparsity, MAC share, weight error, "
                 "sensitivity scan", icon=":material/stacked_bar_chart:")
    _downloads(store, rec)
    model_arg, arch, data_arg = _cli_refs(store, rec.model_id, rec.data_ref)
    st.caption("The same job headless (it measures the baseline and the compressed model again, on this machine):")
    st.code(reproduce_command("run", model=model_arg, arch=arch, data=data_arg, technique=rec.config, seed=rec.seed,
                              threads=rec.threads, extra=["--out", f"out/{rec.id[:8]}"]), language="bash")
    with st.expander("Environment the numbers were measured in"):
        st.json(rec.environment, expanded=False)


def config_table(config: dict[str, Any]) -> pd.DataFrame:
    """A technique config (its dict form) as ``knob`` / ``value`` rows, pipeline steps spelled out."""
    rows = [{"knob": "technique", "value": f"{config.get('type', '?')} (config v{config.get('version', '?')})"}]
    for k, v in (config.get("data") or {}).items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            for i, step in enumerate(v, 1):
                knobs = ", ".join(f"{a}={b}" for a, b in (step.get("data") or step).items() if a != "type")
                rows.append({"knob": f"{k}[{i}]", "value": f"{step.get('technique', step.get('type', ''))} {knobs}"})
        else:
            rows.append({"knob": k, "value": str(v)})
    return pd.DataFrame(rows, columns=["knob", "value"])


def steps_table(steps: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Pipeline / technique steps, one row each, accuracies shown in % and counts with separators."""
    rows = []
    for step in steps:
        row = {}
        for k, v in step.items():
            if isinstance(v, float) and ("acc" in k or k == "agreement") and 0.0 <= v <= 1.0:
                row[f"{k} (%)"] = f"{100 * v:.2f}"
            elif isinstance(v, int) and not isinstance(v, bool):
                row[k] = f"{v:,}"
            elif isinstance(v, float):
                row[k] = f"{v:.4g}"
            else:
                row[k] = str(v)
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def headline_metrics(baseline: Metrics, compressed: Metrics) -> None:
    """The numbers a decision turns on (accuracy, size, ONNX Runtime latency, the best runtime), with their change.

    Deltas are signed so Streamlit colours them right: a smaller file or a shorter latency is green.
    """
    acc, size, lat, best = st.columns(4)
    acc.metric("Top-1 accuracy (ONNX Runtime)", f"{100 * compressed.top1_acc:.2f} %",
               f"{100 * (compressed.top1_acc - baseline.top1_acc):+.2f} pp vs {100 * baseline.top1_acc:.2f} %")
    size_ratio = compressed.onnx_bytes / baseline.onnx_bytes
    size.metric("ONNX file", f"{compressed.onnx_bytes / 1024:,.1f} KiB",
                f"{100 * (size_ratio - 1):+.1f} % ({size_ratio:.3f}x of {baseline.onnx_bytes / 1024:,.1f} KiB)",
                delta_color="inverse")
    primary = get_runtime(PRIMARY_RUNTIME)
    b_ms, c_ms = baseline.latency_ms(primary.key, LARGE_BATCH), compressed.latency_ms(primary.key, LARGE_BATCH)
    time_ratio = c_ms / b_ms
    lat.metric(f"Latency, batch {LARGE_BATCH} ({primary.title}, median)", f"{c_ms:.3f} ms",
               f"{100 * (time_ratio - 1):+.1f} % ({1 / time_ratio:.2f}x speed-up vs {b_ms:.3f} ms)",
               delta_color="inverse")
    runtime_views.best_runtime_metric(best, baseline, compressed)
