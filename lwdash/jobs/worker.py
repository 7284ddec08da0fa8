"""The job worker's entry points: ``python -m lwdash worker`` and ``python -m lwdash.jobs.worker``.

``python -m lwdash worker [--data-dir D] [--once] [--concurrency N] [--executor local|ray]``
starts one. It registers itself in the store and runs the shared job loop
(:func:`lwdash.jobs.loop.serve`): fail jobs whose worker died (no heartbeat), claim the oldest
queued jobs (atomically, so several workers can share one store), and run each one through an
executor: its own local process (:mod:`lwdash.jobs.local`, the default) or a Ray task
(:mod:`lwdash.jobs.ray_executor`, ``LWDASH_EXECUTOR=ray``). While a job runs the worker heartbeats
it, and stops it when the user cancels it, when it passes the per-job time limit
(``LWDASH_JOB_TIMEOUT_S``) or when it holds more memory than ``LWDASH_JOB_MEMORY_MB``; a job
that ends without recording an outcome is failed with the reason (the signal, the exit code, the
limit it hit).

Shutdown: on SIGTERM or SIGINT the worker kills its running jobs and puts them back in the queue
(their attempt count kept), so another worker, or this one restarted, runs them again from the
start; a job already claimed ``LWDASH_MAX_ATTEMPTS`` times is failed instead, so a job that keeps
coinciding with shutdowns cannot loop forever.

A worker the app started (:func:`ensure_worker`) exits by itself once it has been idle for
``LWDASH_WORKER_IDLE_EXIT_S`` and no app process that asked for it is alive; a worker started
by hand keeps serving until it is stopped.

To run jobs without a worker (tests, single-user scripts) use the immediate mode,
:func:`lwdash.jobs.inline.run_inline`. A script may register its own techniques or job kinds
and then call :func:`main`: the local executor's job processes import that script again first,
so they know them too.

The names other modules import from here (``compute_job``, ``record_output``, ``ensure_worker``,
...) are re-exported from the modules that define them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lwdash.config import Settings, get_settings
from lwdash.jobs.compute import (
    JobInputs,
    compute_job,
    failure_text,
    is_allocation_failure,
    memory_limit_message,
    record_output,
    register_job_kind,
    time_limit_message,
)
from lwdash.jobs.inline import run_inline, run_queued
from lwdash.jobs.lifecycle import IdleExit, any_app_alive, ensure_worker, record_app
from lwdash.jobs.local import configure_logging, run_job, run_local_worker, session_rss_mb
from lwdash.jobs.loop import Executor, requeue_or_fail, settle_if_saved, stop_on_signals

__all__ = [
    "Executor",
    "IdleExit",
    "JobInputs",
    "any_app_alive",
    "compute_job",
    "ensure_worker",
    "failure_text",
    "is_allocation_failure",
    "main",
    "memory_limit_message",
    "record_app",
    "record_output",
    "register_job_kind",
    "requeue_or_fail",
    "run_inline",
    "run_job",
    "run_queued",
    "run_worker",
    "session_rss_mb",
    "settle_if_saved",
    "stop_on_signals",
    "time_limit_message",
]

#: Kept under its old name: ``lwdash.cli`` imports it.
_configure_logging = configure_logging


def run_worker(
    data_dir: Path | str | None = None,
    *,
    once: bool = False,
    concurrency: int | None = None,
    poll_s: float = 0.5,
    worker_id: str | None = None,
    settings: Settings | None = None,
    executor: str | None = None,
    exit_when_orphaned: bool = False,
) -> int:
    """Serve jobs until SIGTERM/SIGINT (or, with ``once``, until the queue is empty).

    Args:
        data_dir: the store's data dir (default: ``LWDASH_DATA_DIR``).
        once: burst mode: run the jobs queued now (and any queued meanwhile), exit when none is left.
        concurrency: how many jobs run at the same time (default: ``LWDASH_CONCURRENCY``, else 1
            for local; for ray, the cluster's CPUs divided by ``LWDASH_RAY_NUM_CPUS``).
        poll_s: how long to sleep when there is nothing to do.
        worker_id: the id to register under (``ensure_worker`` passes the one it recorded).
        settings: settings (default: from the environment).
        executor: ``"local"`` or ``"ray"`` (default: ``LWDASH_EXECUTOR``).
        exit_when_orphaned: exit after ``LWDASH_WORKER_IDLE_EXIT_S`` idle with no app alive
            (set for workers the app starts).

    Returns:
        The process exit code (0).

    Raises:
        ValueError: ``concurrency`` < 1 or an unknown executor.
    """
    if concurrency is not None and concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    settings = settings or get_settings(data_dir)
    executor = executor or settings.executor
    if executor == "ray":
        from lwdash.jobs.ray_executor import run_ray_worker

        return run_ray_worker(settings, once=once, concurrency=concurrency or settings.concurrency,
                              poll_s=poll_s, worker_id=worker_id, exit_when_orphaned=exit_when_orphaned)
    if executor != "local":
        raise ValueError(f"unknown executor {executor!r}; accepted: local, ray")
    return run_local_worker(settings, once=once, concurrency=concurrency, poll_s=poll_s, worker_id=worker_id,
                            exit_when_orphaned=exit_when_orphaned)


def add_worker_arguments(p: argparse.ArgumentParser) -> None:
    """The worker's command-line options (shared with ``python -m lwdash worker``)."""
    p.add_argument("--data-dir", type=Path, default=None, help="data directory (default: $LWDASH_DATA_DIR or ./.lwdash-data)")
    p.add_argument("--once", action="store_true", help="burst mode: run the queued jobs, then exit")
    p.add_argument("--concurrency", type=int, default=None,
                   help="jobs run at the same time (default: $LWDASH_CONCURRENCY, else 1 for local;"
                        " for ray, cluster CPUs / $LWDASH_RAY_NUM_CPUS)")
    p.add_argument("--executor", choices=["local", "ray"], default=None,
                   help="where jobs run (default: $LWDASH_EXECUTOR, else local); see docs/executors.md")
    p.add_argument("--poll", type=float, default=0.5, help="seconds between queue checks when idle (default 0.5)")
    p.add_argument("--worker-id", default=None, help=argparse.SUPPRESS)
    p.add_argument("--exit-when-orphaned", action="store_true", help=argparse.SUPPRESS)


def run_worker_from_args(args: argparse.Namespace) -> int:
    """Run a worker from parsed :func:`add_worker_arguments` options."""
    return run_worker(args.data_dir, once=args.once, concurrency=args.concurrency, poll_s=args.poll,
                      worker_id=args.worker_id, executor=args.executor, exit_when_orphaned=args.exit_when_orphaned)


def main(argv: list[str] | None = None) -> int:
    """``python -m lwdash.jobs.worker``: a worker, or (``--run-job ID``) one job's process."""
    p = argparse.ArgumentParser(prog="python -m lwdash.jobs.worker", description="lwdash job worker")
    add_worker_arguments(p)
    p.add_argument("--run-job", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    configure_logging()
    if args.run_job:
        data_dir = args.data_dir or get_settings().data_dir
        return run_job(data_dir, args.run_job)
    return run_worker_from_args(args)


if __name__ == "__main__":
    sys.exit(main())
