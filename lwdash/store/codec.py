"""How records become the flat rows a backend stores: JSON for structured fields."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["dumps", "loads"]


def dumps(obj: Any) -> str:
    """``obj`` as JSON, with paths, sets, tuples and numpy / torch scalars and arrays converted."""
    return json.dumps(obj, default=_json_default, allow_nan=True)


def loads(text: str | None) -> Any:
    """The value :func:`dumps` wrote (``None`` for a missing column)."""
    return None if text is None else json.loads(text)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")
