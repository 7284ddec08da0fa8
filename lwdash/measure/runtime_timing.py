"""Every selected runtime timed on its artifact, each in its own process where its engine is native; their downloads.

:func:`measure_latencies` times each runtime of the selection (:func:`selected_runtimes`: a job's
runtimes, else ``LWDASH_RUNTIMES``, else every runtime registered with ``default=True``) at every
batch of :data:`~lwdash.runtimes.LATENCY_BATCHES`, with one :class:`TimingPolicy` and one thread
count. Per batch, the runtime loads its artifact afresh, prepares the batch and runs it once:
that is the batch's ``compile_s`` (loading, compiling for the compiling runtimes, the first
run); then the timed runs follow (:func:`lwdash.measure.latency.time_callable`).

A runtime registered with ``isolated=True`` (OpenVINO, torch.compile, TVM) is timed in a child
process (:func:`lwdash.isolate.call_isolated`) under a time limit (``LWDASH_RUNTIME_TIMEOUT_S``)
and the job's memory cap: if its native engine crashes (a segfault) or hangs, that runtime's
measurement fails with the reason in ``latency_notes``, and the job and the other runtimes go on.
A runtime that raises (in or out of a child) fails the same way; one that cannot take the
artifact says so in one line (:class:`~lwdash.runtimes.UnsupportedArtifact`).

:func:`export_runtime_artifacts` writes each selected runtime's own download (OpenVINO IR, the
TVM library), isolated the same way.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lwdash.data import Split
from lwdash.measure.latency import DEFAULT_POLICY, TimingPolicy, batch_from_split, time_callable
from lwdash.measure.metrics import LatencyRecord
from lwdash.runtimes import LATENCY_BATCHES, Runtime, UnsupportedArtifact, list_runtimes, resolve_runtimes

__all__ = [
    "NOT_SELECTED",
    "QUICK_POLICY",
    "compare_artifacts",
    "export_runtime_artifacts",
    "measure_latencies",
    "selected_runtimes",
]

#: The note of a registered runtime left out of a measurement's selection.
NOT_SELECTED = ("not measured in this job: not among its runtimes (choose them on the Compress page, with "
                "--runtimes, or with LWDASH_RUNTIMES)")


#: A short timing per round, for choices made inside a job (several rounds, interleaved, make it robust).
QUICK_POLICY = TimingPolicy(warmup_runs=2, warmup_max_s=0.3, min_runs=5, min_time_s=0.1, max_runs=50,
                            max_time_s=0.5, floor_runs=3)


def selected_runtimes(runtimes: Sequence[str] | str | None = None) -> tuple[str, ...]:
    """The runtime keys to measure: ``runtimes`` when given (non-empty), else the ``LWDASH_RUNTIMES`` setting,
    else every runtime registered with ``default=True``; in registry order.

    Raises:
        ValueError: an unknown runtime key, or an invalid ``LWDASH_RUNTIMES``.
    """
    if runtimes is None or (not isinstance(runtimes, str) and len(runtimes) == 0) or runtimes == "":
        from lwdash.config import get_settings

        runtimes = get_settings().runtimes
    return resolve_runtimes(runtimes)


def _limits(timeout_s: float | None, memory_mb: int | None) -> tuple[float, int]:
    if timeout_s is not None and memory_mb is not None:
        return float(timeout_s), int(memory_mb)
    from lwdash.config import get_settings

    settings = get_settings()
    return (settings.runtime_timeout_s if timeout_s is None else float(timeout_s),
            settings.job_memory_mb if memory_mb is None else int(memory_mb))


def _one_line(e: BaseException, title: str) -> str:
    text = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
    return f"{title} failed: {type(e).__name__}" + (f": {text[:300]}" if text else "")


def _time_runtime(rt: Runtime, artifact: Any, batches: dict[int, np.ndarray], threads: int,
                  policy: TimingPolicy) -> tuple[list[LatencyRecord], list[str]]:
    """Time ``rt`` at each batch (a fresh load per batch); ``(records, per-batch refusals)``.

    Runs in this process or in a child (its arguments and result pickle: numpy batches, no tensors).
    """
    import importlib

    for name in rt.imports:  # the engine's import is not the model's compile time
        importlib.import_module(name)
    records: list[LatencyRecord] = []
    refused: list[str] = []
    for b, array in batches.items():
        x = torch.from_numpy(array)
        t0 = time.perf_counter()
        runner = rt.load(artifact, threads)
        with runner.scope():
            try:
                feed = runner.prepare(x)
            except ValueError as e:  # a batch this artifact cannot take (a fixed batch size)
                refused.append(f"batch {b}: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}")
                continue
            runner.run(feed)
            compile_s = time.perf_counter() - t0
            stats = time_callable(functools.partial(runner.run, feed), batch_size=b, policy=policy)
        records.append(LatencyRecord(rt.key, b, stats.median_ms, stats.p90_ms, compile_s))
    return records, refused


def _call(rt: Runtime, fn: Any, *args: Any, timeout_s: float, memory_mb: int) -> Any:
    """``fn(*args)`` here, or in a child process for an isolated runtime."""
    if not rt.isolated:
        return fn(*args)
    from lwdash.isolate import call_isolated

    return call_isolated(fn, *args, timeout_s=timeout_s, memory_mb=memory_mb)


def _failure(rt: Runtime, e: BaseException, timeout_s: float) -> str:
    from lwdash.isolate import IsolationError

    if isinstance(e, UnsupportedArtifact):
        return (str(e).strip().splitlines() or [f"{rt.title} cannot take this artifact"])[0]
    if isinstance(e, IsolationError):
        what = "hung" if e.kind == "timeout" else "crashed"
        return f"{rt.title} {what}: {e.reason}; this measurement failed, the others went on"
    return _one_line(e, rt.title)


def measure_latencies(
    artifacts: Mapping[str, Any],
    split: Split,
    *,
    threads: int = 1,
    policy: TimingPolicy = DEFAULT_POLICY,
    runtimes: Sequence[str] | str | None = None,
    timeout_s: float | None = None,
    memory_mb: int | None = None,
) -> tuple[tuple[LatencyRecord, ...], dict[str, str]]:
    """Time every selected runtime on its artifact at every batch of ``LATENCY_BATCHES``.

    Args:
        artifacts: artifact kind (``"onnx"``, ``"pytorch"``, ``"pt2"``) -> what that kind's runtimes load
            (``None`` for a kind that does not exist, e.g. no ``.pt2``).
        split: batch ``b`` is its first ``b`` samples (:func:`batch_from_split`).
        threads: intra-op threads of every runtime.
        policy: the one stopping rule of every timing.
        runtimes: the runtime keys to time (:func:`selected_runtimes`); the others get a note.
        timeout_s: the time limit of an isolated runtime's measurement (default ``LWDASH_RUNTIME_TIMEOUT_S``).
        memory_mb: the address-space cap of its child process (default ``LWDASH_JOB_MEMORY_MB``).

    Returns:
        ``(records, notes)``: a :class:`LatencyRecord` per runtime and batch timed, in registry
        order, and runtime key -> the one-line reason it was not timed (not selected, not
        available here, no such artifact, refused the artifact, failed, crashed or hung).
    """
    chosen = set(selected_runtimes(runtimes))
    timeout, memory = _limits(timeout_s, memory_mb)
    batches = {b: batch_from_split(split, b).detach().cpu().numpy() for b in LATENCY_BATCHES}
    records: list[LatencyRecord] = []
    notes: dict[str, str] = {}
    for rt in list_runtimes():
        reason = None if rt.key in chosen else NOT_SELECTED
        if reason is None:
            reason = rt.unavailable_reason()
        if reason is None and artifacts.get(rt.artifact) is None:
            reason = f"{rt.title}: no {rt.artifact} artifact to run"
        if reason is None:
            try:
                got, refused = _call(rt, _time_runtime, rt, artifacts[rt.artifact], batches, int(threads), policy,
                                     timeout_s=timeout, memory_mb=memory)
                records.extend(got)
                if refused:
                    reason = f"{rt.title}: " + "; ".join(refused)
            except Exception as e:
                reason = _failure(rt, e, timeout)
        if reason is not None:
            notes[rt.key] = reason
    return tuple(records), notes


def _export(rt: Runtime, artifact: Any, out_dir: Path) -> dict[str, Path]:
    assert rt.export is not None
    return {str(k): Path(v) for k, v in rt.export(artifact, out_dir).items()}


def export_runtime_artifacts(
    artifacts: Mapping[str, Any],
    out_dir: Path,
    *,
    runtimes: Sequence[str] | str | None = None,
    timeout_s: float | None = None,
    memory_mb: int | None = None,
) -> tuple[dict[str, Path], dict[str, str]]:
    """Write each selected runtime's own downloadable artifact into ``out_dir``.

    Only runtimes with an ``export`` (OpenVINO: ``model.xml`` + ``model.bin``; TVM:
    ``model_tvm.so``) write anything; the others run the ONNX or ``.pt2`` download as it is.

    Returns:
        ``(files, notes)``: file name -> path, and runtime key -> why its artifact was not written.
    """
    chosen = set(selected_runtimes(runtimes))
    timeout, memory = _limits(timeout_s, memory_mb)
    out_dir = Path(out_dir)
    files: dict[str, Path] = {}
    notes: dict[str, str] = {}
    for rt in list_runtimes():
        if rt.export is None or rt.key not in chosen:
            continue
        reason = rt.unavailable_reason()
        if reason is None and artifacts.get(rt.artifact) is None:
            reason = f"{rt.title}: no {rt.artifact} artifact to convert"
        if reason is None:
            try:
                written = _call(rt, _export, rt, artifacts[rt.artifact], out_dir, timeout_s=timeout, memory_mb=memory)
                files.update({name: p for name, p in written.items() if p.is_file()})
            except Exception as e:
                reason = _failure(rt, e, timeout)
        if reason is not None:
            notes[rt.key] = reason
    return files, notes


def _compare(rt: Runtime, paths: dict[str, Any], array: np.ndarray, threads: int, rounds: int,
             policy: TimingPolicy) -> dict[str, float]:
    """Median of per-round medians (ms) of each artifact, rounds interleaved (a, b, c, a, b, c, ...)."""
    import importlib

    for name in rt.imports:
        importlib.import_module(name)
    x = torch.from_numpy(array)
    loaded = []
    for name, artifact in paths.items():
        runner = rt.load(artifact, threads)
        with runner.scope():
            feed = runner.prepare(x)
            runner.run(feed)
        loaded.append((name, runner, feed))
    medians: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, runner, feed in loaded:
            with runner.scope():
                stats = time_callable(functools.partial(runner.run, feed), batch_size=len(x), policy=policy)
            medians[name].append(stats.median_ms)
    return {name: float(np.median(v)) for name, v in medians.items()}


def compare_artifacts(
    runtime: str,
    artifacts: Mapping[str, Any],
    x: torch.Tensor,
    *,
    threads: int = 1,
    rounds: int = 3,
    policy: TimingPolicy = QUICK_POLICY,
    timeout_s: float | None = None,
    memory_mb: int | None = None,
) -> dict[str, float]:
    """Time several artifacts of one kind on one runtime on the same batch, interleaved; name -> median ms.

    For choices a technique makes by measurement (which int8 format runs fastest here). Each
    artifact is loaded once; then ``rounds`` rounds time each one in turn with ``policy``, so
    that a slow spell of a shared CPU hits every candidate alike. An isolated runtime runs in a
    child process, as in :func:`measure_latencies`.

    Raises:
        ValueError: an unknown runtime key.
        RuntimeError: the runtime is not available here, cannot take an artifact, failed, crashed
            or hung (the message is the one line :func:`measure_latencies` would note).
    """
    from lwdash.runtimes import get_runtime

    rt = get_runtime(runtime)
    reason = rt.unavailable_reason()
    if reason is not None:
        raise RuntimeError(reason)
    timeout, memory = _limits(timeout_s, memory_mb)
    array = x.detach().cpu().contiguous().numpy()
    try:
        return _call(rt, _compare, rt, dict(artifacts), array, int(threads), int(rounds), policy,
                     timeout_s=timeout, memory_mb=memory)
    except Exception as e:
        raise RuntimeError(_failure(rt, e, timeout)) from None
