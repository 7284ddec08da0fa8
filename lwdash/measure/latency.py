"""Wall-clock latency on the CPU of every registered runtime (:mod:`lwdash.runtimes`), at a fixed thread count.

Each configuration is timed with ``time.perf_counter`` around one full forward pass (PyTorch under
``torch.inference_mode()``), after warm-up runs (3, or fewer once 0.5 s is spent), with the
garbage collector paused. The number of
timed runs adapts to the model: runs continue until at least ``min_runs`` runs AND ``min_time_s``
seconds have been spent, but stop at ``max_runs`` runs or ``max_time_s`` seconds (keeping at least
``floor_runs``), so a small model is timed in well under a second per configuration while a
large one is capped. Inputs are real samples: batch ``b`` is the first ``b`` test samples
(repeated when the split is smaller).

Median and p90 are reported (and the interquartile range): timings on a shared CPU have a long
right tail, so the mean is not used.

:func:`lwdash.measure.runtime_timing.measure_latencies` times every selected runtime at every
batch of :data:`~lwdash.runtimes.LATENCY_BATCHES` with these primitives and one :class:`TimingPolicy`.
"""
from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from lwdash.data import Split
from lwdash.measure.accuracy import make_session
from lwdash.runtimes import Runner
from lwdash.runtimes.onnx_runtime import session_runner
from lwdash.runtimes.torch_eager import module_runner

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = [
    "DEFAULT_POLICY",
    "LatencyStats",
    "TimingPolicy",
    "batch_from_split",
    "measure_ort_latency",
    "measure_torch_latency",
    "time_callable",
    "time_runner",
]


@dataclass(frozen=True)
class TimingPolicy:
    """How many runs to time.

    Attributes:
        warmup_runs: untimed runs first (caches, lazy initialisation, allocator) ...
        warmup_max_s: ... stopping early (after at least one) once this many seconds are spent.
        min_runs: keep timing until at least this many runs ...
        min_time_s: ... and at least this many seconds of timed runs.
        max_runs: stop at this many runs,
        max_time_s: or after this many seconds, once ``floor_runs`` runs are done.
        floor_runs: the fewest timed runs ever reported.
    """

    warmup_runs: int = 3
    warmup_max_s: float = 0.5
    min_runs: int = 20
    min_time_s: float = 0.3
    max_runs: int = 200
    max_time_s: float = 2.0
    floor_runs: int = 5

    def __post_init__(self) -> None:
        if self.warmup_runs < 0 or self.floor_runs < 1 or self.min_runs < self.floor_runs or self.max_runs < self.min_runs:
            raise ValueError(
                "need warmup_runs >= 0 and 1 <= floor_runs <= min_runs <= max_runs, got "
                f"{self.warmup_runs}, {self.floor_runs}, {self.min_runs}, {self.max_runs}"
            )
        if self.warmup_max_s < 0 or self.min_time_s < 0 or self.max_time_s < self.min_time_s:
            raise ValueError(
                f"need warmup_max_s >= 0 and 0 <= min_time_s <= max_time_s, got {self.warmup_max_s}, "
                f"{self.min_time_s}, {self.max_time_s}"
            )


DEFAULT_POLICY = TimingPolicy()


@dataclass(frozen=True)
class LatencyStats:
    """Summary of repeated timings of one configuration (milliseconds per forward pass).

    Attributes:
        batch_size: samples per forward pass.
        runs: timed runs.
        median_ms: median latency.
        p90_ms: 90th percentile.
        q1_ms: 25th percentile.
        q3_ms: 75th percentile.
        min_ms: fastest run.
    """

    batch_size: int
    runs: int
    median_ms: float
    p90_ms: float
    q1_ms: float
    q3_ms: float
    min_ms: float

    @property
    def iqr_ms(self) -> float:
        return self.q3_ms - self.q1_ms

    @property
    def throughput_per_s(self) -> float:
        """Samples per second at the median latency."""
        return self.batch_size * 1000.0 / self.median_ms if self.median_ms > 0 else float("inf")


def time_callable(fn: Callable[[], Any], *, batch_size: int = 1, policy: TimingPolicy = DEFAULT_POLICY) -> LatencyStats:
    """Time ``fn()`` repeatedly under ``policy`` (see the module docstring).

    Args:
        fn: one forward pass; its result is discarded.
        batch_size: recorded in the result (for throughput).
        policy: warm-up and stopping rule.

    Returns:
        The :class:`LatencyStats` of the timed runs.
    """
    warm_start = time.perf_counter()
    for _ in range(policy.warmup_runs):
        fn()
        if time.perf_counter() - warm_start >= policy.warmup_max_s:
            break
    times_s: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        start_all = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            fn()
            times_s.append(time.perf_counter() - t0)
            n, spent = len(times_s), time.perf_counter() - start_all
            if n >= policy.max_runs:
                break
            if n >= policy.floor_runs and spent >= policy.max_time_s:
                break
            if n >= policy.min_runs and spent >= policy.min_time_s:
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    ms = np.asarray(times_s) * 1000.0
    q1, med, q3, p90 = np.percentile(ms, [25, 50, 75, 90])
    return LatencyStats(
        batch_size=int(batch_size),
        runs=len(times_s),
        median_ms=float(med),
        p90_ms=float(p90),
        q1_ms=float(q1),
        q3_ms=float(q3),
        min_ms=float(ms.min()),
    )


def batch_from_split(split: Split, batch_size: int) -> torch.Tensor:
    """The first ``batch_size`` samples of ``split`` (repeated in order when it has fewer).

    Raises:
        ValueError: the split is empty or ``batch_size`` < 1.
    """
    n = len(split)
    if n == 0:
        raise ValueError("cannot time a model on an empty split")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if n >= batch_size:
        return split.x[:batch_size].contiguous()
    reps = -(-batch_size // n)
    return split.x.repeat(reps, *([1] * (split.x.ndim - 1)))[:batch_size].contiguous()


def time_runner(runner: Runner, x: torch.Tensor, *, policy: TimingPolicy = DEFAULT_POLICY) -> LatencyStats:
    """Time ``runner`` on the batch ``x``: prepared once, then run under ``policy`` inside the runner's scope."""
    with runner.scope():
        feed = runner.prepare(x)
        return time_callable(lambda: runner.run(feed), batch_size=int(x.shape[0]), policy=policy)


def measure_torch_latency(
    module: nn.Module, x: torch.Tensor, *, threads: int = 1, policy: TimingPolicy = DEFAULT_POLICY
) -> LatencyStats:
    """Latency of ``module(x)`` in PyTorch eager, under ``torch.inference_mode()`` with ``threads`` threads."""
    return time_runner(module_runner(module, threads), x, policy=policy)


def measure_ort_latency(
    model: Path | ort.InferenceSession,
    x: torch.Tensor,
    *,
    threads: int = 1,
    policy: TimingPolicy = DEFAULT_POLICY,
) -> LatencyStats:
    """Latency of one ONNX Runtime ``run`` on ``x`` (a session made with ``threads`` threads for a path).

    Raises:
        ValueError: the model has a fixed batch size other than ``x``'s.
    """
    session = make_session(Path(model), threads) if isinstance(model, (str, Path)) else model
    return time_runner(session_runner(session), x, policy=policy)
