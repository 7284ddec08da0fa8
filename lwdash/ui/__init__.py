"""The only package that imports streamlit: session-state keys, resources, forms, panels, charts.

Pages import the submodules they need (``from lwdash.ui import panels``); nothing is imported
here so that importing one helper does not pull in the others.
"""
from __future__ import annotations
