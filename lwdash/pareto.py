"""Non-dominated sorting and 2-D hypervolume (numpy only).

Every objective is turned into a minimisation once, by negating the maximised columns (as
Optuna's ``_normalize_value`` does), so the dominance test below has one direction only.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = ["Direction", "front_order", "hypervolume_2d", "pareto_mask", "to_minimisation"]

Direction = Literal["max", "min"]


def to_minimisation(points: npt.ArrayLike, directions: Sequence[str]) -> np.ndarray:
    """Return ``points`` as a float ``(N, K)`` array where smaller is better in every column.

    Args:
        points: ``(N, K)`` objective values, one row per point.
        directions: ``K`` entries, each ``"max"`` or ``"min"``.

    Returns:
        A new float64 array with the ``"max"`` columns negated.

    Raises:
        ValueError: ``points`` is not 2-D, or ``directions`` has the wrong length or an unknown entry.
    """
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 1 and arr.size == 0:
        arr = arr.reshape(0, len(directions))
    if arr.ndim != 2:
        raise ValueError(f"points must be a 2-D (N, K) array, got shape {arr.shape}")
    if len(directions) != arr.shape[1]:
        raise ValueError(f"got {len(directions)} directions for {arr.shape[1]} objectives")
    bad = [d for d in directions if d not in ("max", "min")]
    if bad:
        raise ValueError(f"directions must be 'max' or 'min', got {bad}")
    sign = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    return arr * sign  # (N, K)


def pareto_mask(points: npt.ArrayLike, directions: Sequence[str]) -> np.ndarray:
    """Mark the non-dominated points.

    A point is dominated when another point is at least as good in every objective and strictly
    better in one. Exact duplicates do not dominate each other, so all copies of a front point
    stay on the front. Rows with a NaN are never on the front and dominate nothing.

    Args:
        points: ``(N, K)`` objective values, one row per point.
        directions: ``K`` entries, each ``"max"`` or ``"min"``.

    Returns:
        Boolean ``(N,)`` array, True where the point is non-dominated.

    Raises:
        ValueError: see :func:`to_minimisation`.
    """
    loss = to_minimisation(points, directions)  # (N, K), smaller is better
    n = loss.shape[0]
    valid = ~np.isnan(loss).any(axis=1)
    mask = valid.copy()
    cand = loss[valid]  # (M, K)
    for i in np.flatnonzero(valid):
        p = loss[i]
        dominated = np.all(cand <= p, axis=1) & np.any(cand < p, axis=1)
        if dominated.any():
            mask[i] = False
    assert mask.shape == (n,)
    return mask


def front_order(points: npt.ArrayLike, directions: Sequence[str]) -> np.ndarray:
    """Indices of the 2-D front, ordered along the first objective from best to worst.

    Args:
        points: ``(N, 2)`` objective values.
        directions: two entries, ``"max"`` or ``"min"``.

    Returns:
        Integer indices into ``points`` of the non-dominated points, sorted so that a line through
        them in this order traces the front (the first objective improves towards index 0).
    """
    loss = to_minimisation(points, directions)
    if loss.shape[1] != 2:
        raise ValueError(f"front_order needs 2 objectives, got {loss.shape[1]}")
    idx = np.flatnonzero(pareto_mask(points, directions))
    order = np.lexsort((loss[idx, 1], loss[idx, 0]))
    return idx[order]


def hypervolume_2d(points: npt.ArrayLike, directions: Sequence[str], reference: Sequence[float]) -> float:
    """Area dominated by the front of ``points`` and bounded by ``reference`` (two objectives).

    Args:
        points: ``(N, 2)`` objective values.
        directions: two entries, ``"max"`` or ``"min"``.
        reference: a point worse than the front in both objectives, in the same units and
            directions as ``points`` (e.g. accuracy 0.0 and the largest acceptable size).

    Returns:
        The hypervolume; points that do not strictly improve on ``reference`` in both objectives
        add nothing, so an empty or all-worse set gives 0.0.
    """
    loss = to_minimisation(points, directions)
    if loss.shape[1] != 2:
        raise ValueError(f"hypervolume_2d needs 2 objectives, got {loss.shape[1]}")
    ref = to_minimisation(np.asarray(reference, dtype=np.float64).reshape(1, 2), directions)[0]
    keep = ~np.isnan(loss).any(axis=1) & np.all(loss < ref, axis=1)
    pts = loss[keep]
    if pts.size == 0:
        return 0.0
    front = pts[pareto_mask(pts, ["min", "min"])]
    front = front[np.lexsort((front[:, 1], front[:, 0]))]  # x ascending, so y descending
    volume = 0.0
    prev_y = ref[1]
    for x, y in front:
        if y < prev_y:
            volume += (ref[0] - x) * (prev_y - y)
            prev_y = y
    return float(volume)
