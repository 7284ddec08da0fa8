"""Layers: per-layer views of one result, and per-layer sensitivity scans run in the background."""
from __future__ import annotations

import streamlit as st

from lwdash.ui import inspect, panels, resources, state

resources.ensure_router()
st.title("Layers")
store = resources.get_store()
frame = resources.results_frame()

st.subheader("Per-layer views of a result")
if frame.empty:
    st.info("No results yet: per-layer views appear once a compression job has finished.")
else:
    result_id = panels.pick_result(frame, key=state.LAYERS_PICK)
    inspect.follow_result_model(frame, result_id)
    if result_id:
        inspect.layer_views(store, result_id)

st.divider()
st.subheader("Sensitivity scan")
st.caption("Prune or fake-quantize one layer at a time at a few levels and measure test accuracy: the layers "
           "whose curves fall first are the ones to compress least. Runs as a background job.")
model_id = panels.pick_model(store, key=state.LAYERS_MODEL)
if model_id:
    data_ref = panels.pick_data(store, key=state.LAYERS_DATA, model_id=model_id)
    inspect.scan_launcher(store, model_id, data_ref)
    inspect.scan_progress(model_id)
    inspect.scan_results(store, model_id)
