"""Per-layer charts: sparsity, parameter / MAC share, weight error, and sensitivity-scan curves.

Extractors take the per-layer table of :func:`lwdash.analysis.layers.layer_frame` (or a stored
scan dict) and return plain records; the builders draw horizontal bars, so long layer names stay
readable on the y axis whatever their number.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go

__all__ = [
    "LayerBarsInfo",
    "SensitivityInfo",
    "layer_error_info",
    "layer_share_info",
    "layer_sparsity_info",
    "plot_layer_bars",
    "plot_sensitivity",
    "sensitivity_info",
]

_BEFORE, _AFTER, _THIRD = "#1f77b4", "#d62728", "#2ca02c"


class LayerBarsInfo(NamedTuple):
    """Grouped horizontal bars: one group per layer, one bar per series.

    Attributes:
        layers: layer names, model order (drawn top to bottom).
        series: ``(name, values, colour, text)`` per bar series; NaN values are not drawn.
        x_title: the value axis title with its unit.
        note: what is missing and why ("" when nothing is).
    """

    title: str
    layers: tuple[str, ...]
    series: tuple[tuple[str, tuple[float, ...], str, tuple[str, ...]], ...]
    x_title: str
    note: str

    @property
    def empty(self) -> bool:
        """Whether no series has a single value to draw (the note then says why)."""
        return not any(math.isfinite(v) for _, values, _, _ in self.series for v in values)


def _vals(frame: pd.DataFrame, col: str, scale: float = 1.0) -> tuple[float, ...]:
    return tuple(float(v) * scale for v in pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float))


def _pct_text(values: tuple[float, ...]) -> tuple[str, ...]:
    return tuple("" if not math.isfinite(v) else f"{v:.1f} %" for v in values)


def layer_sparsity_info(frame: pd.DataFrame) -> LayerBarsInfo:
    """Fraction of exact zeros per layer, before and after compression (in %)."""
    before, after = _vals(frame, "sparsity_before", 100), _vals(frame, "sparsity_after", 100)
    missing = [str(n) for n, v in zip(frame["layer"], after, strict=True) if not math.isfinite(v)]
    note = f"Not in the compressed model: {', '.join(missing)}." if missing else ""
    return LayerBarsInfo(
        title="Sparsity per layer (exact zeros)",
        layers=tuple(str(n) for n in frame["layer"]),
        series=(("original", before, _BEFORE, _pct_text(before)), ("compressed", after, _AFTER, _pct_text(after))),
        x_title="weights that are exactly zero (%)",
        note=note,
    )


def layer_share_info(frame: pd.DataFrame) -> LayerBarsInfo:
    """Each layer's share of the original's parameters and of its MACs (in %)."""
    params, macs = _vals(frame, "params_share", 100), _vals(frame, "macs_share", 100)
    note = "" if any(math.isfinite(v) for v in macs) else (
        "No per-layer MACs were recorded for this result (results from before per-layer records, or a model "
        "without conv / linear modules)."
    )
    return LayerBarsInfo(
        title="Share of parameters and MACs per layer (original model)",
        layers=tuple(str(n) for n in frame["layer"]),
        series=(("parameters", params, "#7f7f7f", _pct_text(params)), ("MACs", macs, "#9467bd", _pct_text(macs))),
        x_title="share of the model total (%)",
        note=note,
    )


def layer_error_info(frame: pd.DataFrame) -> LayerBarsInfo:
    """Signal-to-quantization-noise ratio (dB) of each layer's compressed weights vs the original's."""
    sqnr = _vals(frame, "sqnr_db")
    mse = _vals(frame, "mse")
    text = tuple(
        "unchanged" if (math.isfinite(m) and m == 0) else ("" if not math.isfinite(s) else f"{s:.1f} dB · MSE {m:.2e}")
        for s, m in zip(sqnr, mse, strict=True)
    )
    notes = [_sentence(f"{n}: {t}") for n, t in zip(frame["layer"], frame["note"], strict=True)
             if t and t != "unchanged"]
    unchanged = [str(n) for n, m in zip(frame["layer"], mse, strict=True) if math.isfinite(m) and m == 0]
    if unchanged:
        notes.append(f"Unchanged (infinite SQNR): {', '.join(unchanged)}.")
    if not any(math.isfinite(v) for v in mse):
        notes.insert(0, "No per-layer weight error was recorded for this result: weights are compared one to one "
                        "only where a layer keeps its shape (structural changes remove or factorize channels).")
    return LayerBarsInfo(
        title="Weight error per layer vs the original (higher SQNR = closer)",
        layers=tuple(str(n) for n in frame["layer"]),
        series=(("SQNR", sqnr, _THIRD, text),),
        x_title="SQNR = 10·log10(mean w² / mean (w' - w)²), dB",
        note=" ".join(notes),
    )


def _sentence(text: str) -> str:
    text = str(text).strip().rstrip(";")
    return text if text.endswith((".", "!", "?")) else text + "."


def plot_layer_bars(info: LayerBarsInfo) -> go.Figure:
    """Horizontal grouped bars, layers top to bottom in model order, values printed on the bars."""
    fig = go.Figure()
    for name, values, colour, text in info.series:
        fig.add_trace(
            go.Bar(
                y=list(info.layers), x=[v if math.isfinite(v) else None for v in values], orientation="h",
                name=name, marker={"color": colour}, text=list(text), textposition="outside", cliponaxis=False,
                hovertemplate="%{y}<br>" + name + ": %{text}<extra></extra>",
            )
        )
    rows = max(1, len(info.layers))
    finite = [v for _, values, _, _ in info.series for v in values if math.isfinite(v)]
    # Room on the right for the value printed after the longest bar.
    xrange = [0.0, max(finite) * 1.35] if finite and max(finite) > 0 else None
    fig.update_layout(
        title={"text": info.title, "x": 0.0, "xanchor": "left"},
        barmode="group",
        xaxis={"title": info.x_title, "range": xrange},
        yaxis={"autorange": "reversed", "automargin": True, "title": None},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 1, "xanchor": "right"},
        height=min(900, 140 + rows * (26 * len(info.series) + 14)),
        margin={"l": 10, "r": 20, "t": 60, "b": 50},
        template="plotly_white",
    )
    return fig


# ------------------------------------------------------------------------------ sensitivity


class SensitivityInfo(NamedTuple):
    """Accuracy curves of a per-layer scan.

    Attributes:
        levels: the x values (fraction removed, or bits).
        curves: ``(layer, accuracies in %)`` per layer, model order.
        baseline_acc: the unchanged model's accuracy, %.
        most_sensitive: layers by drop at the strongest level, largest first: ``(layer, drop in points)``.
    """

    mode: str
    levels: tuple[float, ...]
    x_title: str
    y_title: str
    curves: tuple[tuple[str, tuple[float, ...]], ...]
    baseline_acc: float
    most_sensitive: tuple[tuple[str, float], ...]
    summary: str


def sensitivity_info(scan: Mapping[str, Any]) -> SensitivityInfo:
    """Extract the curves of a stored scan (:func:`lwdash.analysis.sensitivity.run_scan` output).

    Raises:
        ValueError: the dict is not a scan (no ``layers`` / ``levels``).
    """
    if "layers" not in scan or "levels" not in scan:
        raise ValueError("not a sensitivity scan: expected 'layers' and 'levels' keys")
    mode = str(scan.get("mode", "prune"))
    levels = tuple(float(v) for v in scan["levels"])
    base = 100.0 * float(scan.get("baseline_acc", math.nan))
    curves = tuple((str(r["name"]), tuple(100.0 * float(a) for a in r["acc"])) for r in scan["layers"])
    strongest = len(levels) - 1 if mode == "prune" else 0  # most removed / fewest bits
    drops = sorted(((n, base - a[strongest]) for n, a in curves if a), key=lambda t: -t[1])
    x_title = "fraction of the layer's weights removed (magnitude)" if mode == "prune" else "bits per weight (fake-quant)"
    strong = f"{levels[strongest]:g}" + (" removed" if mode == "prune" else " bits") if levels else ""
    summary = ""
    if drops:
        summary = (f"Most sensitive at {strong}: " + ", ".join(f"{n} ({-d:+.1f} pts)" for n, d in drops[:3])
                   + f". Least: {drops[-1][0]} ({-drops[-1][1]:+.1f} pts).")  # signed changes: a gain reads +0.3
    return SensitivityInfo(
        mode=mode, levels=levels, x_title=x_title, y_title=f"{scan.get('metric', 'top-1 accuracy')} (%)",
        curves=curves, baseline_acc=base, most_sensitive=tuple(drops), summary=summary,
    )


_CURVE_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
                  "#bcbd22", "#7f7f7f")


def plot_sensitivity(info: SensitivityInfo) -> go.Figure:
    """One accuracy curve per layer against the level, with the unchanged model as a dashed line."""
    fig = go.Figure()
    for k, (name, accs) in enumerate(info.curves):
        fig.add_trace(
            go.Scatter(
                x=list(info.levels), y=list(accs), mode="lines+markers", name=name,
                line={"color": _CURVE_COLOURS[k % len(_CURVE_COLOURS)], "width": 2},
                hovertemplate=name + "<br>level %{x}<br>accuracy %{y:.2f} %<extra></extra>",
            )
        )
    if math.isfinite(info.baseline_acc):
        fig.add_hline(y=info.baseline_acc, line={"dash": "dash", "color": "#111111", "width": 1},
                      annotation_text=f"unchanged model {info.baseline_acc:.2f} %", annotation_position="top left")
    lo = min([min(a) for _, a in info.curves if a] + [info.baseline_acc]) if info.curves else 0.0
    fig.update_layout(
        xaxis={"title": info.x_title, "tickvals": list(info.levels),
               "autorange": "reversed" if info.mode == "quantize" else True},
        # up to 100 %, plus room for the top markers: an accuracy axis never shows 105 %
        yaxis={"title": info.y_title, "range": [max(0.0, float(np.floor(lo / 5) * 5) - 2), 101.5], "dtick": 5},
        legend={"title": {"text": "layer changed alone"}, "orientation": "v", "x": 1.01, "y": 1},
        height=440,
        margin={"l": 60, "r": 10, "t": 30, "b": 50},
        template="plotly_white",
    )
    return fig
