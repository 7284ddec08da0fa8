"""Progress reporting of a run: the :data:`ProgressFn` callback type and the wrappers that scale and order it."""
from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["ProgressFn", "monotonic", "stage"]

ProgressFn = Callable[[float, str], None]


def stage(progress: ProgressFn, lo: float, hi: float) -> ProgressFn:
    """Map a sub-step's 0..1 progress onto [lo, hi] of the whole run."""

    def report(fraction: float, message: str) -> None:
        f = fraction if math.isfinite(fraction) else 0.0
        progress(lo + (hi - lo) * min(max(f, 0.0), 1.0), message)

    return report


def monotonic(progress: ProgressFn) -> ProgressFn:
    """Never report less than already reported (a technique's sub-steps may restart their count)."""
    high = [0.0]

    def report(fraction: float, message: str) -> None:
        high[0] = max(high[0], fraction if math.isfinite(fraction) else 0.0)
        progress(min(high[0], 1.0), message)

    return report
