"""lwdash: the router. Page config, a running worker, and the page list (st.navigation)."""
from __future__ import annotations

import streamlit as st

from lwdash.ui import resources

st.set_page_config(page_title="lwdash", page_icon=":material/compress:", layout="wide")
resources.ensure_worker_running()

st.navigation(
    [
        st.Page("pages/models.py", title="Models", icon=":material/deployed_code:", default=True),
        st.Page("pages/compress.py", title="Compress", icon=":material/compress:"),
        st.Page("pages/jobs.py", title="Jobs", icon=":material/work_history:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/scatter_plot:"),
        st.Page("pages/search.py", title="Search", icon=":material/travel_explore:"),
        st.Page("pages/layers.py", title="Layers", icon=":material/stacked_bar_chart:"),
    ]
).run()
