"""lwdash: make neural networks lighter and see, honestly, what it costs.

The library never imports streamlit; only ``lwdash.ui`` does.
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
