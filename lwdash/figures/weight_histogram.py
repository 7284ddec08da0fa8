"""One original-vs-compressed weight histogram as plain records: :func:`histogram_info` and :class:`HistogramInfo`.

Reads the JSON-safe weight summaries of ``lwdash.measure.weight_summary`` (see
:mod:`lwdash.figures.histogram`), for one layer or every layer pooled onto one grid; also the
summary helpers the multi-result overlay (:mod:`lwdash.figures.multi_histogram`) reuses.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = ["HistogramInfo", "histogram_info", "layer_names", "rebin", "zero_fraction_text"]

_WHOLE_MODEL_BINS = 80


class HistogramInfo(NamedTuple):
    """What one overlay shows; ``compressed_*`` fields are ``None`` when that side has no such layer.

    Attributes:
        layer: the layer name, or ``None`` for the whole model.
        edges: bin edges shared by both sides (``len(counts) + 1`` values).
        original_counts / compressed_counts: counts of nonzero weights per bin.
        original_zeros / compressed_zeros: exact zero weights.
        original_numel / compressed_numel: all weights (zeros included).
        original_unique / compressed_unique: distinct values (a quantized layer has few).
        note: a caveat shown under the chart ("" when none).
        compressed_levels: the distinct nonzero values of a quantized compressed layer (its grid),
            ``None`` when the layer is not quantized (or for the whole model).
    """

    layer: str | None
    title: str
    edges: tuple[float, ...]
    original_counts: tuple[int, ...]
    compressed_counts: tuple[int, ...] | None
    original_zeros: int
    original_numel: int
    compressed_zeros: int | None
    compressed_numel: int | None
    original_unique: int | None
    compressed_unique: int | None
    note: str
    compressed_levels: tuple[float, ...] | None = None

    @property
    def original_zero_fraction(self) -> float:
        return self.original_zeros / self.original_numel if self.original_numel else 0.0

    @property
    def compressed_zero_fraction(self) -> float | None:
        if self.compressed_numel is None or self.compressed_zeros is None:
            return None
        return self.compressed_zeros / self.compressed_numel if self.compressed_numel else 0.0


def layer_names(summary: Mapping[str, Any] | None) -> list[str]:
    """Names of the layers in a weight summary, in model order."""
    if not summary:
        return []
    return [str(layer["name"]) for layer in summary.get("layers", [])]


def _layers(summary: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    return {str(layer["name"]): layer for layer in (summary or {}).get("layers", [])}


def _hist(layer: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    hist = layer.get("hist") or {}
    edges = np.asarray(hist.get("edges", []), dtype=float)
    counts = np.asarray(hist.get("counts", []), dtype=float)
    if edges.size != counts.size + 1:
        return np.zeros(0), np.zeros(0)
    return edges, counts


def rebin(layers: Sequence[Mapping[str, Any]], edges: np.ndarray) -> np.ndarray:
    """Pool per-layer histograms onto common ``edges``, placing each bin's count at its centre."""
    out = np.zeros(edges.size - 1)
    for layer in layers:
        e, c = _hist(layer)
        if c.size == 0:
            continue
        centres = (e[:-1] + e[1:]) / 2
        idx = np.clip(np.searchsorted(edges, centres, side="right") - 1, 0, out.size - 1)
        np.add.at(out, idx, c)
    return out


def _common_edges(layers: Sequence[Mapping[str, Any]]) -> np.ndarray:
    lows, highs = [], []
    for layer in layers:
        e, c = _hist(layer)
        if c.size:
            lows.append(e[0])
            highs.append(e[-1])
    if not lows:
        return np.array([0.0, 1.0])
    lo, hi = min(lows), max(highs)
    if hi <= lo:
        hi = lo + 1e-12
    return np.linspace(lo, hi, _WHOLE_MODEL_BINS + 1)


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def histogram_info(
    baseline_weights: Mapping[str, Any],
    compressed_weights: Mapping[str, Any] | None,
    layer: str | None = None,
) -> HistogramInfo:
    """Extract one original-vs-compressed histogram overlay.

    Args:
        baseline_weights: the original model's weight summary.
        compressed_weights: the compressed model's summary (``None`` when it was not recorded).
        layer: a layer name from the baseline summary, or ``None`` for every layer pooled.

    Returns:
        The :class:`HistogramInfo`. For one layer the bins are the recorded ones; for the whole
        model each layer's bins are pooled onto a common grid spanning every layer's range.

    Raises:
        ValueError: ``layer`` is not in the baseline summary (the message lists the layers).
    """
    base_layers = _layers(baseline_weights)
    comp_layers = _layers(compressed_weights)
    notes: list[str] = []
    if layer is None:
        base_list = list(base_layers.values())
        comp_list = list(comp_layers.values())
        edges = _common_edges(base_list + comp_list)
        orig = rebin(base_list, edges)
        comp = rebin(comp_list, edges) if compressed_weights else None
        o_zeros, o_numel = _total(baseline_weights, base_list, "zeros"), _total(baseline_weights, base_list, "numel")
        c_zeros = _total(compressed_weights, comp_list, "zeros") if compressed_weights else None
        c_numel = _total(compressed_weights, comp_list, "numel") if compressed_weights else None
        o_unique = c_unique = None
        c_levels = None
        title = f"Whole model: {len(base_list)} weight tensors"
        notes.append("Per-layer histograms pooled onto one grid (each bin's count placed at its centre).")
        if any("BatchNorm" in str(r.get("note", "")) for r in (compressed_weights or {}).get("per_layer") or []):
            notes.append("Some convs had their BatchNorm folded into their weights by the compressed graph, which "
                         "rescales them: compare those layers one by one (their notes say which).")
        if compressed_weights and set(comp_layers) != set(base_layers):
            notes.append(
                f"The compressed model's layers differ from the original's "
                f"({len(comp_layers)} vs {len(base_layers)} weight tensors): layers were replaced or removed."
            )
    else:
        if layer not in base_layers:
            raise ValueError(f"unknown layer {layer!r}; the original model has: {', '.join(base_layers) or 'none'}")
        b = base_layers[layer]
        edges, orig = _hist(b)
        o_zeros, o_numel, o_unique = int(b.get("zeros", 0)), int(b.get("numel", 0)), _int(b.get("unique_count"))
        title = f"{layer} ({b.get('kind', 'layer')}, shape {tuple(b.get('shape', ()))})"
        c = comp_layers.get(layer)
        c_levels = None
        if c is None:
            comp, c_zeros, c_numel, c_unique = None, None, None, None
            if compressed_weights:
                notes.append(f"{layer} is not in the compressed model (it was replaced or removed).")
        else:
            ce, cc = _hist(c)
            if ce.size == edges.size and np.allclose(ce, edges):
                comp = cc
            else:
                comp = rebin([c], edges) if edges.size else cc
                notes.append("The compressed layer's bins differ from the original's; its counts were re-binned.")
            c_zeros, c_numel, c_unique = int(c.get("zeros", 0)), int(c.get("numel", 0)), _int(c.get("unique_count"))
            if c.get("levels"):
                c_levels = tuple(float(v) for v in c["levels"])
            rec: Mapping[str, Any] = next((r for r in (compressed_weights or {}).get("per_layer") or [] if r.get("name") == layer), {})
            if "BatchNorm" in str(rec.get("note", "")):
                notes.append("The compressed graph folded this conv's BatchNorm into its weights (scaled per output "
                             "channel), so the two distributions differ by more than the compression itself; the "
                             "per-layer weight error is measured against the folded original.")
            if tuple(c.get("shape", ())) != tuple(b.get("shape", ())):
                notes.append(f"Shape changed: {tuple(b.get('shape', ()))} -> {tuple(c.get('shape', ()))}.")
    if compressed_weights is None:
        notes.append("No weight summary was recorded for the compressed model.")
    return HistogramInfo(
        layer=layer,
        title=title,
        edges=tuple(float(e) for e in edges),
        original_counts=tuple(int(v) for v in np.rint(orig)),
        compressed_counts=None if comp is None else tuple(int(v) for v in np.rint(comp)),
        original_zeros=o_zeros,
        original_numel=o_numel,
        compressed_zeros=c_zeros,
        compressed_numel=c_numel,
        original_unique=o_unique,
        compressed_unique=c_unique,
        note=" ".join(notes),
        compressed_levels=c_levels,
    )


def _total(summary: Mapping[str, Any] | None, layers: Sequence[Mapping[str, Any]], key: str) -> int:
    total = (summary or {}).get("total") or {}
    if isinstance(total, Mapping) and total.get(key) is not None:
        return int(total[key])
    return int(sum(int(layer.get(key, 0)) for layer in layers))


def zero_fraction_text(info: HistogramInfo) -> str:
    """One sentence for the page: how many weights are exactly zero before and after."""
    before = f"{100 * info.original_zero_fraction:.1f} %"
    after = info.compressed_zero_fraction
    if after is None or math.isnan(after):
        return f"{before} of the original weights are zero."
    return f"Zeros: {before} of weights before, {100 * after:.1f} % after."
