"""Text from outside the app (file names, engine errors) shown through Streamlit's Markdown, literally."""
from __future__ import annotations

import re

__all__ = ["literal"]

# What Markdown (and Streamlit's extensions: $...$ for LaTeX, :color[...] for colours) would restyle.
_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~$])")


def literal(text: object) -> str:
    """``text`` escaped so that Markdown shows it as written (``__main__`` stays ``__main__``, not bold "main")."""
    return _SPECIAL.sub(r"\\\1", str(text))
