"""Compress: model + data + technique -> a generated form -> one queued job per config."""
from __future__ import annotations

import streamlit as st

from lwdash.ui import forms, panels, resources, runtimes, state

resources.ensure_router()
st.title("Compress")
st.caption("Several comma-separated values in a field make a sweep: one job per value (or combination).")
store = resources.get_store()

left, right = st.columns(2)
with left:
    model_id = panels.pick_model(store, key=state.COMPRESS_MODEL)
with right:
    data_ref = panels.pick_data(store, key=state.COMPRESS_DATA, model_id=model_id)
technique = panels.pick_technique(key=state.COMPRESS_TECHNIQUE)

chosen_runtimes = runtimes.runtime_choice(state.COMPRESS_RUNTIMES)
configs = forms.technique_form(technique, state.COMPRESS_PREFIX)
if configs and model_id:
    panels.queue_jobs(store, model_id, data_ref, technique, configs, chosen_runtimes)
panels.submitted_jobs(technique.key)
