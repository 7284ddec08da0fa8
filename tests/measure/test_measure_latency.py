"""The CPU timer: ordered statistics, adaptive repeats, real inputs, thread count restored."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from _measure_models import SmallCNN, make_split

from lwdash.data import Dataset
from lwdash.measure.latency import (
    LatencyStats,
    TimingPolicy,
    batch_from_split,
    measure_ort_latency,
    measure_torch_latency,
    time_callable,
)

FAST = TimingPolicy(warmup_runs=1, min_runs=10, min_time_s=0.02, max_runs=50, max_time_s=0.2, floor_runs=5)


def _check_ordered(stats: LatencyStats) -> None:
    assert stats.min_ms > 0
    assert stats.min_ms <= stats.q1_ms <= stats.median_ms <= stats.q3_ms
    assert stats.median_ms <= stats.p90_ms
    assert stats.iqr_ms >= 0
    assert stats.throughput_per_s > 0


def test_time_callable_ordered_and_within_run_bounds() -> None:
    x = torch.randn(64, 64)
    started = time.perf_counter()
    stats = time_callable(lambda: x @ x, batch_size=64, policy=FAST)
    spent_s = time.perf_counter() - started
    _check_ordered(stats)
    assert FAST.floor_runs <= stats.runs <= FAST.max_runs
    # fewer than min_runs only when the time cap was hit (a loaded machine)
    assert stats.runs >= FAST.min_runs or spent_s >= FAST.max_time_s
    assert stats.batch_size == 64


def test_slow_call_stops_at_time_cap_with_floor_runs() -> None:
    calls = 0

    def slow() -> None:
        nonlocal calls
        calls += 1
        time.sleep(0.03)  # a 30 ms "model": 20 runs would exceed the 0.1 s cap

    policy = TimingPolicy(
        warmup_runs=3, warmup_max_s=0.01, min_runs=20, min_time_s=0.05, max_runs=200, max_time_s=0.1, floor_runs=4
    )
    stats = time_callable(slow, policy=policy)
    assert stats.runs == 4  # the floor, reached after the cap
    assert calls == 5  # one warm-up: the warm-up time cap stopped the other two
    assert stats.median_ms >= 30.0


def test_fast_call_stops_at_max_runs() -> None:
    policy = TimingPolicy(warmup_runs=0, min_runs=5, min_time_s=10.0, max_runs=30, max_time_s=20.0, floor_runs=5)
    assert time_callable(lambda: None, policy=policy).runs == 30


def test_invalid_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="floor_runs"):
        TimingPolicy(min_runs=2, floor_runs=5)
    with pytest.raises(ValueError, match="min_time_s"):
        TimingPolicy(min_time_s=3.0, max_time_s=1.0)


def test_batch_from_split_uses_real_samples_and_repeats() -> None:
    split = make_split(5, 7)
    batch = batch_from_split(split, 32)
    assert batch.shape == (32, 1, 8, 8)
    assert torch.equal(batch[:5], split.x) and torch.equal(batch[5:10], split.x)
    assert torch.equal(batch_from_split(make_split(40, 7), 32), make_split(40, 7).x[:32])
    with pytest.raises(ValueError, match="batch_size"):
        batch_from_split(split, 0)


def test_torch_and_ort_latency_positive_and_threads_restored(cnn: SmallCNN, cnn_onnx: Path, data: Dataset) -> None:
    before = torch.get_num_threads()
    for batch in (1, 32):
        x = batch_from_split(data.test, batch)
        torch_stats = measure_torch_latency(cnn, x, threads=1, policy=FAST)
        ort_stats = measure_ort_latency(cnn_onnx, x, threads=1, policy=FAST)
        _check_ordered(torch_stats)
        _check_ordered(ort_stats)
        assert torch_stats.batch_size == ort_stats.batch_size == batch
    assert torch.get_num_threads() == before
