"""What a job computes, and how its outcome is recorded: the part every executor shares.

A job's *kind* (``JobSpec.kind``) names a registered function that computes it::

    compress     lwdash.jobs.runner.execute -> a RunOutput (metrics + artifact files) -> a result
    sensitivity  lwdash.analysis.sensitivity.run_scan -> a JSON-safe dict -> an analysis
    baseline     lwdash.analysis.baseline.measure_baseline -> a JSON-safe dict -> an analysis

:func:`compute_job` is the one place that dispatches on it, for the local job process, the Ray
task and the immediate mode alike; :func:`register_job_kind` adds a kind (a duplicate key is
refused, as for techniques). :func:`run_claimed` computes a claimed job in the calling process
and records its result or its failure. Nothing here imports torch at module level.
"""
from __future__ import annotations

import shutil
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lwdash.jobs.spec import JobRecord, JobSpec

if TYPE_CHECKING:
    from lwdash.data import Dataset
    from lwdash.jobs.runner import RunOutput
    from lwdash.models.base import LoadedModel
    from lwdash.workspace import Store

__all__ = [
    "JobInputs",
    "JobKindFn",
    "ProgressFn",
    "compute_job",
    "failure_text",
    "is_allocation_failure",
    "job_kinds",
    "memory_limit_message",
    "record_output",
    "register_job_kind",
    "run_claimed",
    "time_limit_message",
]

#: Progress reports closer together than this are dropped (the last one, at 1.0, always goes through).
PROGRESS_MIN_INTERVAL_S = 0.25

ProgressFn = Callable[[float, str], None]


class JobInputs(Protocol):
    """Where a job's model and data come from: the store, or (on a Ray node) bytes shipped with the task."""

    def load_model(self, model_id: str) -> LoadedModel: ...

    def resolve_data(self, ref: str) -> Dataset: ...


#: ``fn(spec, out_dir, progress, inputs)``: a RunOutput (stored as a result) or a JSON-safe dict (an analysis).
JobKindFn = Callable[[JobSpec, Path, ProgressFn, JobInputs], "RunOutput | dict[str, Any]"]

_KINDS: dict[str, JobKindFn] = {}


def register_job_kind(kind: str, fn: JobKindFn) -> None:
    """Make ``JobSpec(kind=kind)`` computed by ``fn``.

    Args:
        kind: a stable snake_case key (it is stored with every job).
        fn: ``fn(spec, out_dir, progress, inputs)``; files it returns in a RunOutput must be under ``out_dir``.

    Raises:
        ValueError: ``kind`` is already registered.
    """
    if kind in _KINDS:
        raise ValueError(f"job kind {kind!r} is already registered")
    _KINDS[kind] = fn


def job_kinds() -> list[str]:
    """The registered job kinds, sorted."""
    return sorted(_KINDS)


def _compress(spec: JobSpec, out_dir: Path, progress: ProgressFn, inputs: JobInputs) -> RunOutput:
    from lwdash.jobs.runner import execute

    return execute(spec, inputs.load_model(spec.model_id), inputs.resolve_data(spec.data_ref), out_dir, progress)


def _sensitivity(spec: JobSpec, out_dir: Path, progress: ProgressFn, inputs: JobInputs) -> dict[str, Any]:
    from lwdash.analysis.sensitivity import run_scan

    model, data = inputs.load_model(spec.model_id), inputs.resolve_data(spec.data_ref)
    return run_scan(model.module, data, spec.technique, progress, threads=spec.threads)


def _baseline(spec: JobSpec, out_dir: Path, progress: ProgressFn, inputs: JobInputs) -> dict[str, Any]:
    from lwdash.analysis.baseline import measure_baseline

    model, data = inputs.load_model(spec.model_id), inputs.resolve_data(spec.data_ref)
    return measure_baseline(model, data, out_dir, progress, threads=spec.threads)


register_job_kind("compress", _compress)
register_job_kind("sensitivity", _sensitivity)  # a per-layer scan: its JSON is stored as an analysis
register_job_kind("baseline", _baseline)  # the model as it stands: its metrics are stored as an analysis


def compute_job(spec: JobSpec, out_dir: Path, progress: ProgressFn, inputs: JobInputs) -> RunOutput | dict[str, Any]:
    """Compute a job's outputs in this process, without touching the job queue.

    Args:
        spec: the job.
        out_dir: an empty directory for the artifacts.
        progress: called with (fraction 0..1, message).
        inputs: loads the spec's model and data.

    Returns:
        A :class:`~lwdash.jobs.runner.RunOutput` (a compression job) or a JSON-safe dict (an analysis).

    Raises:
        ValueError: the spec's kind is not registered (or its config is invalid).
    """
    fn = _KINDS.get(spec.kind)
    if fn is None:
        raise ValueError(f"unknown job kind {spec.kind!r}; accepted: {', '.join(job_kinds())}")
    progress(0.0, "loading the model and the data")
    return fn(spec, out_dir, progress, inputs)


def record_output(store: Store, job_id: str, spec: JobSpec, output: RunOutput | dict[str, Any],
                  out_dir: Path) -> str:
    """Store what :func:`compute_job` returned and mark the job done; returns the result's (or analysis's) id."""
    if isinstance(output, dict):
        result_id = store.save_analysis(job_id, spec, output)
    else:
        result_id = store.save_result(job_id, spec, output, out_dir)
    store.finish(job_id, result_id)
    return result_id


# ---------------------------------------------------------------------- what a failure says


def memory_limit_message(limit_mb: int, detail: str) -> str:
    """The failure text of a job stopped by the memory limit (the worker's check or the job's own)."""
    return (
        f"the job exceeded the memory limit of {limit_mb} MB (LWDASH_JOB_MEMORY_MB): {detail};"
        " it was stopped (raise LWDASH_JOB_MEMORY_MB for bigger models, 0 turns the limit off)"
    )


def time_limit_message(limit_s: float) -> str:
    """The failure text of a job stopped by the time limit."""
    return (
        f"the job ran past its time limit of {limit_s:g} s (LWDASH_JOB_TIMEOUT_S) and was stopped"
        " (raise LWDASH_JOB_TIMEOUT_S for longer jobs)"
    )


def is_allocation_failure(e: BaseException) -> bool:
    """Whether ``e`` is an allocation that failed (Python's, numpy's or torch's)."""
    if isinstance(e, MemoryError):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and ("can't allocate memory" in text or "Cannot allocate memory" in text)


def failure_text(e: BaseException, memory_mb: int) -> str:
    """A job's failure: the error's type and message, then its traceback (the memory limit named when hit).

    Call it from the ``except`` block that caught ``e`` (the traceback is the one being handled).
    """
    if is_allocation_failure(e) and memory_mb > 0:
        head = memory_limit_message(memory_mb, f"an allocation failed ({type(e).__name__}: {e})")
    else:
        msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
        head = f"{type(e).__name__}: {msg}"
    return f"{head}\n\n{traceback.format_exc()}"


# ---------------------------------------------------------------------- a claimed job, computed here


def store_progress(store: Store, job_id: str) -> ProgressFn:
    """A progress callback that writes to the job's row, at most every ``PROGRESS_MIN_INTERVAL_S``."""
    last = [-1e18]

    def progress(fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_MIN_INTERVAL_S or fraction >= 1.0:
            last[0] = now
            store.update_progress(job_id, fraction, message)

    return progress


def run_claimed(store: Store, job: JobRecord, *, memory_mb: int = 0) -> bool:
    """Compute a claimed (running) job in this process and record its outcome in the store.

    Bad input and failures alike are recorded as the job's failure: the message says what was
    wrong, the traceback is kept for debugging. Artifacts are written under the store's ``tmp/``
    and moved into ``artifacts/`` by the store; nothing is left behind.

    Args:
        store: the store the job was claimed from.
        job: the claimed job.
        memory_mb: the memory limit the process runs under (named in an allocation failure; 0: none).

    Returns:
        True when the result was saved, False when the job failed.
    """
    out_dir = store.scratch_dir(f"job-{job.id}-")
    try:
        output = compute_job(job.spec, out_dir, store_progress(store, job.id), store)
        record_output(store, job.id, job.spec, output, out_dir)
        return True
    except Exception as e:
        store.fail(job.id, failure_text(e, memory_mb))
        return False
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)  # already moved into artifacts/ on success
