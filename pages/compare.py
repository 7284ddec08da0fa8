"""Compare: Pareto fronts (size, latency, 3-D), filters, exports, side by side, one result in detail."""
from __future__ import annotations

import streamlit as st

from lwdash.ui import charts, inspect, panels, resources, state

resources.ensure_router()
st.title("Compare")
store = resources.get_store()
frame = resources.results_frame()
if frame.empty and not store.list_jobs(limit=1):
    st.info("No results yet: queue compression jobs on the Compress page; finished ones appear here.")
    st.page_link("pages/compress.py", label="Go to Compress", icon=":material/arrow_forward:")
    st.stop()

frame, jobs, flt = inspect.compare_filters(store, frame)
if frame.empty:  # the filters leave nothing: say so, instead of empty axes and an empty detail
    st.info("No result matches these filters: widen the model, family, status or date filters above.",
            icon=":material/filter_alt_off:")
    inspect.jobs_without_points(jobs)
    st.stop()
ratio = st.toggle("Show ratios to each result's own baseline", key=state.COMPARE_RATIO)
across = st.toggle("One front across models (compare architectures on the same data)", key=state.COMPARE_ACROSS,
                   help="Off: each model has its own Pareto front, in its own colour. On: one front over every result, "
                        "coloured by technique family.")

size_col, latency_col = st.columns(2)
with size_col:
    size_metric = panels.size_metric_choice(key=state.COMPARE_SIZE_METRIC)
    charts.tradeoff_chart(frame, size_metric, ratio_to_baseline=ratio, key=state.COMPARE_SIZE_CHART,
                          title="Accuracy vs size", on_select=panels.select_result, per_model=not across)
with latency_col:
    latency_metric = panels.latency_metric_choice(state.COMPARE_LAT_RUNTIME, state.COMPARE_LAT_BATCH)
    charts.tradeoff_chart(frame, latency_metric, ratio_to_baseline=ratio, key=state.COMPARE_LAT_CHART,
                          title="Accuracy vs latency", on_select=panels.select_result, per_model=not across)
inspect.chart_3d(frame, ratio_to_baseline=ratio, latency_metric=latency_metric)

panels.results_table(frame)
inspect.report_downloads(store, frame, flt, ratio=ratio)
inspect.jobs_without_points(jobs)
st.divider()
inspect.side_by_side(store, frame)
st.divider()
st.subheader("Result detail")
result_id = panels.pick_result(frame, key=state.COMPARE_PICK)
if result_id:
    panels.result_detail(store, result_id)
