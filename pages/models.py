"""Models: the bundled samples and uploads, importing models and evaluation sets, the selected model."""
from __future__ import annotations

import streamlit as st

from lwdash.ui import panels, resources

resources.ensure_router()
st.title("Models")
st.caption("Pick a bundled sample or upload your own model; the selected one is what Compress starts from.")
store = resources.get_store()

selected = panels.model_gallery(store)

upload_model, upload_data = st.columns(2)
with upload_model, st.container(border=True):
    panels.model_upload(store)
with upload_data, st.container(border=True):
    panels.dataset_upload(store)

if selected:
    st.divider()
    panels.model_summary(store, selected)
    panels.model_baseline(store, selected)
