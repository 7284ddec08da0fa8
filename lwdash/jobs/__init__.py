"""Jobs: specs, what a job computes, the shared job loop and its executors (local processes, Ray).

Importing this package is cheap (no torch): the runner, the worker and the immediate mode load on first use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lwdash.jobs.spec import JobRecord, JobSpec, JobStatus

if TYPE_CHECKING:
    from lwdash.jobs.inline import run_inline, run_queued
    from lwdash.jobs.runner import RunOutput, execute
    from lwdash.jobs.worker import ensure_worker, run_worker

__all__ = [
    "JobRecord",
    "JobSpec",
    "JobStatus",
    "RunOutput",
    "ensure_worker",
    "execute",
    "run_inline",
    "run_queued",
    "run_worker",
]

_LAZY = {
    "RunOutput": "lwdash.jobs.runner",
    "execute": "lwdash.jobs.runner",
    "ensure_worker": "lwdash.jobs.lifecycle",
    "run_inline": "lwdash.jobs.inline",
    "run_queued": "lwdash.jobs.inline",
    "run_worker": "lwdash.jobs.worker",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lwdash.jobs' has no attribute {name!r}")
