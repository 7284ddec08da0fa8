"""Jobs: the live queue and worker status (refreshing themselves every 2 s), with cancel and retry."""
from __future__ import annotations

import streamlit as st

from lwdash.ui import panels, resources

resources.ensure_router()
st.title("Jobs")
panels.job_panel()
