"""Search: a multi-objective search (Optuna) over one technique's knobs; its trials run as jobs and fill the front."""
from __future__ import annotations

import streamlit as st

from lwdash.ui import panels, resources, search, state

resources.ensure_router()
st.title("Search")
st.caption("A sampler (TPE, Bayesian GP, NSGA-II or random) proposes configs of one technique for accuracy and one "
           "or two costs; each trial runs as an ordinary background job, measured like any other, and lands on "
           "Compare. Nothing is estimated: a trial's numbers are its measurements.")
store = resources.get_store()

left, right = st.columns(2)
with left:
    model_id = panels.pick_model(store, key=state.SEARCH_MODEL)
with right:
    data_ref = panels.pick_data(store, key=state.SEARCH_DATA, model_id=model_id)
technique = search.pick_search_technique(key=state.SEARCH_TECHNIQUE)
search.search_form(store, model_id, data_ref, technique)

st.divider()
st.subheader("Searches")
search.search_list()
search.search_detail(store)
