"""Compare: accuracy vs size and accuracy vs latency Pareto fronts, the results table, one result in detail."""
from __future__ import annotations

import streamlit as st

from lwdash.ui import charts, panels, resources, state

resources.ensure_router()
st.title("Compare")
store = resources.get_store()
frame = resources.results_frame()
if frame.empty:
    st.info("No results yet: queue compression jobs on the Compress page; finished ones appear here.")
    st.page_link("pages/compress.py", label="Go to Compress", icon=":material/arrow_forward:")
    st.stop()

frame = panels.model_filter(frame, key=state.COMPARE_MODELS)
ratio = st.toggle("Show ratios to each result's own baseline", key=state.COMPARE_RATIO)

size_col, latency_col = st.columns(2)
with size_col:
    size_metric = panels.size_metric_choice(key=state.COMPARE_SIZE_METRIC)
    charts.tradeoff_chart(frame, size_metric, ratio_to_baseline=ratio, key=state.COMPARE_SIZE_CHART,
                          title="Accuracy vs size", on_select=panels.select_result)
with latency_col:
    latency_metric = panels.latency_metric_choice(state.COMPARE_LAT_RUNTIME, state.COMPARE_LAT_BATCH)
    charts.tradeoff_chart(frame, latency_metric, ratio_to_baseline=ratio, key=state.COMPARE_LAT_CHART,
                          title="Accuracy vs latency", on_select=panels.select_result)

panels.results_table(frame)
st.divider()
result_id = panels.pick_result(frame, key=state.COMPARE_PICK)
if result_id:
    panels.result_detail(store, result_id)
