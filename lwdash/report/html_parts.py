"""The HTML report's building blocks: its style sheet, table markup and how each kind of number is written."""
from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from lwdash.runtimes import get_runtime

__all__ = ["CSS", "cell", "table"]


def cell(kind: str, v: Any) -> str:
    """``v`` as the report writes a number of ``kind`` (pct, pts, kib, x3, x2, ms, time, runtime; "-" when missing)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if kind == "pct":
        return f"{100 * float(v):.2f}"
    if kind == "pts":
        return f"{100 * float(v):+.2f}"
    if kind == "kib":
        return f"{float(v) / 1024:,.1f}"
    if kind == "x3":
        return f"{float(v):.3f}x"
    if kind == "x2":
        return f"{float(v):.2f}x"
    if kind == "ms":
        return f"{float(v):.4g}"
    if kind == "time":
        return pd.Timestamp(v).strftime("%Y-%m-%d %H:%M")
    if kind == "runtime":
        try:
            return get_runtime(str(v)).short
        except ValueError:
            return str(v)
    return str(v)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, numeric_from: int = 99) -> str:
    """An HTML table; columns from ``numeric_from`` on are right-aligned numbers."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for r in rows:
        cells = "".join(
            f'<td class="{"num" if i >= numeric_from else ""}">{html.escape(c)}</td>' for i, c in enumerate(r)
        )
        body.append(f"<tr>{cells}</tr>")
    return f'<table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1200px;color:#222;
padding:0 16px}
h1{margin-bottom:4px}h2{margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#666}.warn{color:#b00020}table{border-collapse:collapse;width:100%;font-size:13px;margin:8px 0}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}.chart{margin:12px 0 24px}
code{background:#f4f4f4;padding:1px 4px;border-radius:3px}.note{color:#8a5a00}
.wide{overflow-x:auto;max-width:100%}
@media print{body{max-width:none;margin:0;padding:0}.wide{overflow:visible}table{font-size:8px}.chart{break-inside:avoid}}
ul.headline{font-size:17px;line-height:1.5;padding-left:20px}ul.headline li.met{color:#0b5d1e}
"""
