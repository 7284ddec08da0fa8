"""Jobs: the live queue (refreshes itself every 2 s), with cancel and retry."""
from __future__ import annotations

import streamlit as st

from lwdash.ui import panels, resources

resources.ensure_router()
st.title("Jobs")
panels.worker_status(resources.get_store())
panels.job_panel()
