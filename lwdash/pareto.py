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
    n, k = loss.shape
    mask = ~np.isnan(loss).any(axis=1)
    idx = np.flatnonzero(mask)
    if idx.size < 2:
        return mask
    cand = loss[idx]  # (M, K), NaN-free
    if k == 2:
        mask[idx] = _front_2d(cand)
        return mask
    # K objectives: compare every valid point with every other, in blocks so memory stays
    # bounded (block x M x K booleans) while all the work is vectorised.
    block = max(1, _BLOCK_ELEMS // max(1, cand.shape[0]))
    keep = np.ones(cand.shape[0], dtype=bool)
    cols = [np.ascontiguousarray(cand[:, j]) for j in range(k)]
    for start in range(0, cand.shape[0], block):
        stop = start + block
        le = np.ones((min(stop, cand.shape[0]) - start, cand.shape[0]), dtype=bool)  # (B, M)
        lt = np.zeros_like(le)
        for col in cols:  # one objective at a time: 2-D comparisons, no (B, M, K) temporaries
            p = col[start:stop, None]  # (B, 1)
            le &= col[None, :] <= p  # candidate j at least as good as point i here
            lt |= col[None, :] < p  # strictly better here
        keep[start:stop] = ~np.any(le & lt, axis=1)
    mask[idx] = keep
    assert mask.shape == (n,)
    return mask


# Elements of one (block, M) comparison matrix in pareto_mask: ~16 M booleans at most.
_BLOCK_ELEMS = 1 << 24


def _front_2d(loss: np.ndarray) -> np.ndarray:
    """Non-dominated flags of NaN-free ``(M, 2)`` minimisation points in O(M log M).

    Sorted by the first objective (ties by the second), a point is dominated exactly when an
    earlier point with a strictly smaller first objective has a second objective <= its own, or an
    earlier point with the same first objective has a strictly smaller second objective.
    """
    order = np.lexsort((loss[:, 1], loss[:, 0]))
    x, y = loss[order, 0], loss[order, 1]
    m = x.size
    # Groups of equal x: within a group the smallest y comes first (lexsort).
    new_group = np.ones(m, dtype=bool)
    new_group[1:] = x[1:] != x[:-1]
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(m), 0))
    group_min_y = y[group_start]  # best y of the point's own x group
    # Best y among all points with strictly smaller x: running min up to the group start.
    run_min = np.minimum.accumulate(y)
    prev_best = np.full(m, np.inf)
    has_prev = group_start > 0
    prev_best[has_prev] = run_min[group_start[has_prev] - 1]
    dominated = (prev_best <= y) | (group_min_y < y)
    out = np.empty(m, dtype=bool)
    out[order] = ~dominated
    return out


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
