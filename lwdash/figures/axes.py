"""What a chart axis can show: every metric of the catalogue, with its title, unit and direction.

:data:`METRICS` is a live view of :mod:`lwdash.measure.catalogue`: a runtime registered at any
time adds its latency metrics here, and :func:`latency_choices` offers it on the Compare page's
latency chart.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

from lwdash.measure.catalogue import (
    BEST,
    BEST_TITLE,
    LARGE_BATCH,
    latency_key,
    latency_metrics,
    live_view,
    metric,
    metrics_for,
)
from lwdash.runtimes import LATENCY_BATCHES, list_runtimes

__all__ = [
    "METRICS",
    "LatencyChoices",
    "MetricInfo",
    "axis_title",
    "latency_choices",
    "latency_metric",
    "metric_info",
    "short_axis_title",
]


@dataclass(frozen=True)
class MetricInfo:
    """How one metric is shown on an axis.

    Attributes:
        title: axis title without units.
        unit: unit shown after scaling (``%``, ``KiB``, ``median, ms``...).
        scale: factor from the stored unit to the shown one.
        direction: ``"max"`` when larger is better.
        accuracy_like: ratio mode shows the change in percentage points instead of a ratio.
    """

    title: str
    unit: str
    scale: float
    direction: Literal["max", "min"]
    accuracy_like: bool = False


def _axis_metrics() -> dict[str, MetricInfo]:
    return {s.key: MetricInfo(s.label, s.axis_unit, s.scale, s.direction, s.accuracy_like) for s in metrics_for("axis")}


#: Every metric a trade-off axis can show (a live view of the catalogue's ``axis`` metrics).
METRICS: Mapping[str, MetricInfo] = live_view(_axis_metrics)


def metric_info(metric_key: str) -> MetricInfo:
    """The :class:`MetricInfo` of an axis metric.

    Raises:
        ValueError: an unknown metric (the message lists the known ones).
    """
    try:
        return METRICS[metric_key]
    except KeyError:
        raise ValueError(f"unknown metric {metric_key!r}; choose one of {sorted(METRICS)}") from None


def axis_title(metric_key: str, ratio_to_baseline: bool) -> str:
    """The axis title for a metric with its unit, e.g. ``ONNX Runtime latency, batch 32 (median, ms)``."""
    info = metric_info(metric_key)
    if not ratio_to_baseline:
        return f"{info.title} ({info.unit})"
    qualifier = info.unit.rpartition(", ")[0]
    title = f"{info.title} ({qualifier})" if qualifier else info.title
    if info.accuracy_like:
        return f"{title}: change vs baseline (points)"
    return f"{title}: ratio to baseline (x)"


def short_axis_title(metric_key: str, ratio_to_baseline: bool) -> str:
    """A compact axis title for 3-D scenes, where long titles collide: ``ONNX size (KiB)``, ``ORT b32 latency (ms)``."""
    info = metric_info(metric_key)
    name = metric(metric_key).short
    if ratio_to_baseline:
        return f"Δ {name} (pts)" if info.accuracy_like else f"{name} (x baseline)"
    return f"{name} ({info.unit.rpartition(', ')[2]})"


class LatencyChoices(NamedTuple):
    """What the latency chart can be drawn for.

    Attributes:
        runtimes: runtime key -> title, every registered runtime in display order, then
            ``best`` (each result's fastest runtime at that batch).
        batches: the timed batch sizes.
        default_batch: the batch shown first.
    """

    runtimes: dict[str, str]
    batches: tuple[int, ...]
    default_batch: int


def latency_choices() -> LatencyChoices:
    """The runtimes and batches a latency axis can show (the runtime registry, read now), and "best runtime"."""
    timed = {s.runtime for s in latency_metrics(stat="median")}
    runtimes = {rt.key: rt.title for rt in list_runtimes() if rt.key in timed}
    runtimes[BEST] = f"{BEST_TITLE} (each result's fastest)"
    return LatencyChoices(runtimes, LATENCY_BATCHES, LARGE_BATCH)


def latency_metric(runtime: str, batch: int, stat: str = "median") -> str:
    """The axis metric of a runtime and batch (``latency_metric("ort", 32) == "ort_b32_median_ms"``).

    Raises:
        ValueError: the runtime is not registered or the batch is not timed.
    """
    key = latency_key(runtime, batch, stat)
    metric(key)  # raises for a runtime or batch that is not in the catalogue
    return key
