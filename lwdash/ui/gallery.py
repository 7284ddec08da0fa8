"""The Models page's sections: the model gallery, model and data-set uploads, the selected model's summary."""
from __future__ import annotations

import math

import pandas as pd
import streamlit as st
from torch import nn

from lwdash.analysis.baseline import BASELINE_KIND, baseline_spec
from lwdash.data import DataError
from lwdash.data.bundled import DEFAULT_DATA, default_data_for, get_bundled
from lwdash.jobs.spec import JobStatus
from lwdash.models.base import ModelLoadError
from lwdash.store.records import ModelRecord, NotFoundError
from lwdash.ui import state
from lwdash.ui.records import bytes_text, list_models, shape_text
from lwdash.ui.resources import data_dir, get_store
from lwdash.ui.text import literal
from lwdash.ui.workspace import workspace_panel
from lwdash.uploads import MODEL_SUFFIXES
from lwdash.workspace import Store

__all__ = ["dataset_upload", "layer_table", "model_gallery", "model_summary", "model_upload"]

_NO_ARCH = "(not a state dict)"


def _select_model(model_id: str) -> None:
    state.put(state.SELECTED_MODEL, model_id)


def model_gallery(store: Store, *, columns: int = 3) -> str | None:
    """Cards for every sample and upload, each with a select button; returns the selected model id."""
    models = list_models(store)
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
            facts = [f"input {shape_text(m.input_shape)}", f"{m.num_classes} classes", m.source_format]
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


def model_upload(store: Store) -> None:
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


def _measure_on_upload(store: Store, rec: ModelRecord) -> None:
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


def _selected_input_shape(store: Store) -> tuple[int, ...] | None:
    model_id = state.get(state.SELECTED_MODEL)
    if not model_id:
        return None
    try:
        return tuple(store.get_model(model_id).input_shape)
    except (NotFoundError, ModelLoadError):
        return None


def dataset_upload(store: Store) -> None:
    """Upload an ``.npz`` (``x``, ``y``) or a zipped image folder; errors are shown, never raised.

    Image folders are resized to the selected model's input shape.
    """
    target = _selected_input_shape(store)
    fit = f" Images are resized to the selected model's input {shape_text(target)}." if target else ""
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
            outcome = (outcome_key, "ok", f"{rec.id}: {rec.samples_count} samples, input {shape_text(rec.input_shape)}, "
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


def model_summary(store: Store, model_id: str) -> None:
    """The selected model's format, input shape, classes, parameter count and layer table."""
    try:
        rec = store.get_model(model_id)
        layers = _model_layers(data_dir(), model_id)
    except (NotFoundError, ModelLoadError) as e:
        st.error(f"Model {model_id} cannot be shown: {e}")
        return
    st.subheader(("★ " if rec.starred else "") + (rec.title or rec.name))
    if rec.note:
        st.markdown(f"**Team note:** {literal(rec.note)}")
    c = st.columns(5)
    c[0].metric("Format", rec.source_format)
    c[1].metric("Input shape", shape_text(rec.input_shape))
    c[2].metric("Classes", rec.num_classes)
    c[3].metric("Parameters", f"{int(layers['params'].sum()):,}")
    c[4].metric("File size", bytes_text(rec.size_bytes))
    if rec.arch:
        st.caption(f"Architecture: `{rec.arch}` · id `{rec.id}`")
    st.dataframe(layers, hide_index=True, width="stretch")
    workspace_panel(store, "model", rec.id, title=rec.title or rec.name, deletable=rec.kind == "upload",
                    forget=(state.SELECTED_MODEL,))
