"""Per-layer statistics and histograms of a model's weight kernels: :func:`weight_summary`, :func:`summary_ranges`.

The tensors summarized are those :func:`lwdash.measure.weight_tensors.collect_weight_tensors` counts
(quantized weights by their dequantized values). Re-exported by :mod:`lwdash.measure.weights`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from torch import nn

from lwdash.measure.weight_tensors import collect_weight_tensors

__all__ = ["LEVELS_CAP", "UNIQUE_COUNT_CAP", "summary_ranges", "weight_summary"]

UNIQUE_COUNT_CAP = 4096  # unique values are counted up to this many; above it ``unique_count`` is None

#: A layer whose weights take at most this many distinct values, each used by 4 weights or more on
#: average (or that is stored as integers), lists them as ``levels``: its quantization grid.
LEVELS_CAP = 256


def _finite_range(lo: float, hi: float) -> tuple[float, float]:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0, 1.0
    if hi <= lo:
        pad = max(abs(lo) * 0.05, 1e-6)
        return lo - pad, hi + pad
    return lo, hi


def _stats(
    name: str,
    kind: str,
    shape: tuple[int, ...] | None,
    values: np.ndarray,
    dtype: str,
    bins: int,
    rng: tuple[float, float] | None,
) -> dict[str, Any]:
    numel = int(values.size)
    nonzero = values[values != 0]
    zeros = numel - int(nonzero.size)
    finite = values[np.isfinite(values)]
    if finite.size:
        vmin, vmax = float(finite.min()), float(finite.max())
        mean, std = float(finite.astype(np.float64).mean()), float(finite.astype(np.float64).std())
    else:
        vmin = vmax = mean = std = 0.0
    uniq = np.unique(values) if numel else np.empty(0)
    unique_count = int(uniq.size) if uniq.size <= UNIQUE_COUNT_CAP else None
    stored_int = dtype.startswith(("int", "uint"))
    quantized = 0 < uniq.size <= LEVELS_CAP and (stored_int or uniq.size * 4 <= numel)
    levels = [float(v) for v in uniq[np.isfinite(uniq) & (uniq != 0)]] if quantized else None
    nz_finite = nonzero[np.isfinite(nonzero)]
    if rng is None:
        lo, hi = (float(nz_finite.min()), float(nz_finite.max())) if nz_finite.size else (vmin, vmax)
    else:
        lo, hi = float(rng[0]), float(rng[1])
    lo, hi = _finite_range(lo, hi)
    below = int((nz_finite < lo).sum())
    above = int((nz_finite > hi).sum())
    # Values outside a shared range are counted in the outermost bins, so counts always sum to
    # numel - zeros; ``below_range`` / ``above_range`` say how many were clipped that way.
    counts, edges = np.histogram(np.clip(nz_finite, lo, hi), bins=bins, range=(lo, hi))
    return {
        "name": name,
        "kind": kind,
        "shape": list(shape) if shape is not None else None,
        "numel": numel,
        "zeros": zeros,
        "min": vmin,
        "max": vmax,
        "mean": mean,
        "std": std,
        "unique_count": unique_count,
        "levels": levels,
        "hist": {
            "edges": [float(e) for e in edges],
            "counts": [int(c) for c in counts],
            "below_range": below,
            "above_range": above,
            "non_finite": int(nonzero.size - nz_finite.size),
        },
        "dtype": dtype,
    }


def _lookup_range(name: str, ranges: Mapping[str, tuple[float, float]]) -> tuple[float, float] | None:
    """``ranges[name]``, else the one entry that matches ``name`` up to a wrapper prefix.

    A compressed model is sometimes the baseline inside a wrapper (``inner.fc.weight`` for the
    baseline's ``fc.weight``) or the other way round; such names still share the baseline's range.
    """
    if name in ranges:
        return ranges[name]
    matches = [k for k in ranges if k != "total" and (name.endswith("." + k) or k.endswith("." + name))]
    return ranges[matches[0]] if len(matches) == 1 else None


def weight_summary(
    module: nn.Module,
    bins: int = 60,
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, Any]:
    """JSON-safe statistics and histograms of every conv / linear kernel (``ndim >= 2``).

    Histograms count the NONZERO values only: exact zeros (pruned weights) are reported
    separately in ``zeros``, so ``sum(hist.counts) == numel - zeros`` always holds (values outside
    a shared range are clipped into the outermost bins and counted in ``below_range`` /
    ``above_range``; non-finite values are left out and counted in ``non_finite``). Quantized
    weights are summarized by their dequantized values (see the module docstring).

    Args:
        module: the model (plain, GraphModule or torchao-quantized).
        bins: histogram bins per layer, >= 1.
        ranges: optional ``{layer name or "total": (lo, hi)}`` histogram ranges, e.g. the
            baseline's (:func:`summary_ranges`), so a compressed model's histograms align with the
            baseline's for overlays. A name also matches across a wrapper prefix
            (``inner.fc.weight`` takes ``fc.weight``'s range). Layers not in it use their own
            nonzero min / max.

    Returns:
        ``{"layers": [{"name", "kind", "shape", "numel", "zeros", "min", "max", "mean", "std",
        "unique_count", "levels", "hist": {"edges", "counts", "below_range", "above_range", "non_finite"},
        "dtype"}, ...], "total": {... same keys, over all layers}}``. ``levels`` lists the distinct
        nonzero values of a quantized layer (see :data:`LEVELS_CAP`), else ``None``.

    Raises:
        ValueError: ``bins`` < 1.
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    ranges = ranges or {}
    layers: list[dict[str, Any]] = []
    all_values: list[np.ndarray] = []
    dtypes: list[str] = []
    for w in collect_weight_tensors(module):
        if not w.is_kernel:
            continue
        arr = w.values.numpy().reshape(-1)
        all_values.append(arr)
        dtypes.append(w.dtype_label)
        layers.append(_stats(w.name, w.kind, w.shape, arr, w.dtype_label, bins, _lookup_range(w.name, ranges)))
    total_values = np.concatenate(all_values) if all_values else np.empty(0, dtype=np.float32)
    uniq_dtypes = sorted(set(dtypes))
    total = _stats(
        "total",
        "all",
        None,
        total_values,
        uniq_dtypes[0] if len(uniq_dtypes) == 1 else ("mixed: " + ", ".join(uniq_dtypes) if uniq_dtypes else "none"),
        bins,
        ranges.get("total"),
    )
    return {"layers": layers, "total": total}


def summary_ranges(summary: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """The histogram range of every layer (and ``"total"``) of a :func:`weight_summary` result.

    Pass it as ``ranges=`` when summarizing a compressed model so its histograms share the
    baseline's bin edges.
    """
    out: dict[str, tuple[float, float]] = {}
    for layer in [*summary.get("layers", []), summary.get("total")]:
        if layer and layer.get("hist", {}).get("edges"):
            edges = layer["hist"]["edges"]
            out[str(layer["name"])] = (float(edges[0]), float(edges[-1]))
    return out
