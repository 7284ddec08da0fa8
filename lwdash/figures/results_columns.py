"""Reading the results frame for the trade-off charts: metric columns, shown values, knob summaries, hover text.

Shared by the 2-D (:mod:`lwdash.figures.tradeoff_points`) and 3-D (:mod:`lwdash.figures.tradeoff3d`)
extractors.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lwdash.figures.axes import METRICS
from lwdash.measure.catalogue import LARGE_BATCH, PRIMARY_RUNTIME, latency_key
from lwdash.runtimes import get_runtime

__all__ = ["config_text", "config_texts", "hover_texts", "metric_column", "shown_array", "text_column"]

# Metrics listed in every point's hover text, in this order.
_HOVER_METRICS = {
    "top1_acc": "top-1 (ONNX Runtime)",
    "onnx_bytes": "ONNX size",
    latency_key(PRIMARY_RUNTIME, LARGE_BATCH): f"{get_runtime(PRIMARY_RUNTIME).title} batch-{LARGE_BATCH} median",
    "macs": "MACs",
}


def metric_column(frame: pd.DataFrame, metric: str, baseline: bool) -> pd.Series:
    """A metric column as floats: the compressed model's under its own name, the baseline's as ``baseline_<name>``."""
    name = f"baseline_{metric}" if baseline else metric
    if name in frame.columns:
        return pd.to_numeric(frame[name], errors="coerce").astype(float)
    return pd.Series(np.nan, index=frame.index, dtype=float)


def text_column(frame: pd.DataFrame, name: str, default: str = "") -> list[str]:
    if name not in frame.columns:
        return [default] * len(frame)
    return ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in frame[name]]


def _shown(metric: str, value: float, base: float, ratio: bool) -> float:
    info = METRICS[metric]
    if not ratio:
        return value * info.scale
    if info.accuracy_like:
        return (value - base) * 100.0  # percentage points
    return value / base if base else math.nan


def config_text(frame: pd.DataFrame, row: int) -> str:
    """A one-line ``knob=value`` summary of row ``row``'s config (the frame's ``cfg.<knob>`` columns)."""
    return config_texts(frame.iloc[[row]])[0]


def config_texts(frame: pd.DataFrame) -> list[str]:
    """:func:`config_text` of every row at once (one pass per ``cfg.`` column, not per cell)."""
    cols = [c for c in frame.columns if isinstance(c, str) and c.startswith("cfg.")]
    parts: list[list[str]] = [[] for _ in range(len(frame))]
    for col in cols:
        name = col[4:]
        for i, v in enumerate(frame[col].tolist()):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            parts[i].append(f"{name}={_knob_value(v)}")
    return [", ".join(p) for p in parts]


def _knob_value(v: object) -> str:
    """A knob's value as typed: a mixed frame stores integer knobs as floats (NaN where absent), so 15.0 shows as 15."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def shown_array(metric: str, values: np.ndarray, base: np.ndarray, ratio: bool) -> np.ndarray:
    """:func:`_shown` over whole columns."""
    info = METRICS[metric]
    values, base = values.astype(float), base.astype(float)
    if not ratio:
        return values * info.scale
    if info.accuracy_like:
        return (values - base) * 100.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(base != 0, values / base, np.nan)


def hover_texts(
    frame: pd.DataFrame,
    rows: np.ndarray,
    labels: list[str],
    techniques: list[str],
    families: list[str],
    names: list[str],
) -> list[str]:
    """Hover text of the given rows: label, technique, model, full config, headline metrics vs baseline."""
    configs = config_texts(frame.iloc[rows]) if len(rows) else []
    cols = {m: (metric_column(frame, m, False).to_numpy(), metric_column(frame, m, True).to_numpy()) for m in _HOVER_METRICS}
    out = []
    for j, i in enumerate(rows):
        lines = [
            f"<b>{labels[i] or techniques[i]}</b>",
            f"technique: {techniques[i]} ({families[i]}) · model: {names[i]}",
            f"config: {configs[j] or 'defaults'}",
        ]
        for m, name in _HOVER_METRICS.items():
            c, b = float(cols[m][0][i]), float(cols[m][1][i])
            line = f"{name}: {_fmt(m, c)}"
            if math.isfinite(b) and METRICS[m].accuracy_like:
                line += f" ({(c - b) * 100:+.2f} pts vs baseline)"
            elif math.isfinite(b) and b != 0:
                line += f" ({c / b:.2f}x baseline)"
            lines.append(line)
        out.append("<br>".join(lines))
    return out


def _fmt(metric: str, value: float) -> str:
    info = METRICS[metric]
    if not math.isfinite(value):
        return "n/a"
    return f"{value * info.scale:.2f} {info.unit.rpartition(', ')[2]}"
