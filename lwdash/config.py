"""Settings read from the environment: where data lives and how the worker keeps time.

Every setting has a default that works on a laptop; the environment overrides it:

| variable | default | meaning |
|---|---|---|
| ``LWDASH_DATA_DIR`` | ``./.lwdash-data`` | SQLite file, uploaded models and data sets, artifacts |
| ``LWDASH_HEARTBEAT_S`` | ``2`` | how often a worker stamps its jobs and itself as alive |
| ``LWDASH_STALE_TIMEOUT_S`` | ``60`` | a running job without a heartbeat for this long is marked failed |
| ``LWDASH_JOB_TIMEOUT_S`` | ``3600`` | a job running longer than this is killed and marked failed |
| ``LWDASH_MAX_ATTEMPTS`` | ``3`` | a job requeued by worker shutdowns this many times is failed instead |
| ``LWDASH_EXECUTOR`` | ``local`` | ``local``: job processes on this machine; ``ray``: Ray tasks on a cluster |
| ``LWDASH_CONCURRENCY`` | ``1`` (local), cluster CPUs / job CPUs (ray) | jobs a worker runs at the same time |
| ``LWDASH_JOB_MEMORY_MB`` | ``8192`` | a job whose processes hold more memory than this is stopped and failed (0: no limit) |
| ``LWDASH_WORKER_IDLE_EXIT_S`` | ``300`` | a worker the app started exits after this long idle with no app alive |
| ``LWDASH_RAY_ADDRESS`` (or ``RAY_ADDRESS``) | unset: start a local Ray | the Ray cluster to submit jobs to |
| ``LWDASH_RAY_NUM_CPUS`` | ``1`` | CPUs each job's Ray task asks for |
| ``LWDASH_RAY_NUM_GPUS`` | ``0`` | GPUs each job's Ray task asks for |
| ``LWDASH_RUNTIMES`` | unset: every runtime registered as a default (ONNX Runtime with fusion on and off, OpenVINO, PyTorch eager) | comma-separated runtime keys a job measures when it names none; ``all``, ``default`` |
| ``LWDASH_RUNTIME_TIMEOUT_S`` | ``600`` | an isolated runtime's measurement (or export) of one model running longer is stopped and failed |

docs/executors.md explains the executors, the limits and the job lifecycle; docs/runtimes.md the runtimes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_DATA_DIR", "EXECUTORS", "Settings", "get_settings"]

DEFAULT_DATA_DIR = Path(".lwdash-data")
#: The accepted values of ``LWDASH_EXECUTOR``.
EXECUTORS = ("local", "ray")


def _env_float(name: str, default: float, *, minimum: float, unit: str = "a number of seconds") -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be {unit}, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum:g}, got {value:g}")
    return value


def _env_int(name: str, default: int, *, minimum: int, unit: str) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError(f"{name} must be {unit} (a whole number), got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """Resolved settings (see the module docstring for the environment variables).

    Attributes:
        data_dir: absolute path of the data directory.
        heartbeat_interval_s: seconds between a worker's heartbeats (job and worker rows).
        stale_timeout_s: a running job whose heartbeat is older than this is declared dead.
        job_timeout_s: per-job wall-clock limit; the job's process is killed past it.
        max_attempts: how many times a job may be claimed before a worker shutdown fails it.
        worker_max_age_s: a worker row older than this is not counted as live.
        executor: ``"local"`` (job processes on this machine) or ``"ray"`` (Ray tasks).
        concurrency: jobs one worker runs at the same time; ``None`` = the executor's default
            (1 for local; for ray, the cluster's CPUs divided by ``ray_num_cpus``).
        job_memory_mb: per-job memory limit in MiB (0 = none).
        worker_idle_exit_s: an app-started worker exits after this long idle with no app alive.
        ray_address: the Ray cluster to connect to (``None``: start a local Ray).
        ray_num_cpus / ray_num_gpus: the resources each job's Ray task asks for.
        runtimes: the runtimes a job measures when it names none, as given (runtime keys,
            ``all``, ``default``; resolved by :func:`lwdash.runtimes.resolve_runtimes`);
            ``None``: every runtime registered with ``default=True``.
        runtime_timeout_s: time limit of one isolated runtime's measurement of one model.
    """

    data_dir: Path
    heartbeat_interval_s: float = 2.0
    stale_timeout_s: float = 60.0
    job_timeout_s: float = 3600.0
    max_attempts: int = 3
    executor: str = "local"
    concurrency: int | None = None
    job_memory_mb: int = 8192
    worker_idle_exit_s: float = 300.0
    ray_address: str | None = None
    ray_num_cpus: float = 1.0
    ray_num_gpus: float = 0.0
    runtimes: tuple[str, ...] | None = None
    runtime_timeout_s: float = 600.0

    @property
    def worker_max_age_s(self) -> float:
        return max(3.0 * self.heartbeat_interval_s, 5.0)


def get_settings(data_dir: Path | str | None = None) -> Settings:
    """Read the settings from the environment; ``data_dir`` (when given) overrides ``LWDASH_DATA_DIR``.

    Raises:
        ValueError: an environment variable is set to something invalid (the message names it
            and what it accepts).
    """
    if data_dir is None:
        data_dir = os.environ.get("LWDASH_DATA_DIR") or DEFAULT_DATA_DIR
    heartbeat = _env_float("LWDASH_HEARTBEAT_S", 2.0, minimum=0.05)
    stale = _env_float("LWDASH_STALE_TIMEOUT_S", 60.0, minimum=1.0)
    return Settings(
        data_dir=Path(data_dir).expanduser().resolve(),
        heartbeat_interval_s=heartbeat,
        stale_timeout_s=max(stale, 3.0 * heartbeat),
        job_timeout_s=_env_float("LWDASH_JOB_TIMEOUT_S", 3600.0, minimum=1.0),
        max_attempts=_env_int("LWDASH_MAX_ATTEMPTS", 3, minimum=1, unit="a count"),
        executor=_env_executor(),
        concurrency=_env_int("LWDASH_CONCURRENCY", 0, minimum=1, unit="a count of jobs") or None,
        job_memory_mb=_env_int("LWDASH_JOB_MEMORY_MB", 8192, minimum=0, unit="a size in MiB"),
        worker_idle_exit_s=_env_float("LWDASH_WORKER_IDLE_EXIT_S", 300.0, minimum=0.5),
        ray_address=(os.environ.get("LWDASH_RAY_ADDRESS") or os.environ.get("RAY_ADDRESS") or "").strip() or None,
        ray_num_cpus=_env_float("LWDASH_RAY_NUM_CPUS", 1.0, minimum=0.0, unit="a number of CPUs"),
        ray_num_gpus=_env_float("LWDASH_RAY_NUM_GPUS", 0.0, minimum=0.0, unit="a number of GPUs"),
        runtimes=_env_runtimes(),
        runtime_timeout_s=_env_float("LWDASH_RUNTIME_TIMEOUT_S", 600.0, minimum=1.0),
    )


def _env_runtimes() -> tuple[str, ...] | None:
    raw = os.environ.get("LWDASH_RUNTIMES")
    if raw is None or raw.strip() == "":
        return None
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    from lwdash.runtimes import resolve_runtimes  # standard library only at import time

    try:
        resolve_runtimes(keys)
    except ValueError as e:
        raise ValueError(f"LWDASH_RUNTIMES: {e}") from None
    return keys


def _env_executor() -> str:
    raw = (os.environ.get("LWDASH_EXECUTOR") or "local").strip().lower()
    if raw not in EXECUTORS:
        raise ValueError(f"LWDASH_EXECUTOR must be one of {', '.join(EXECUTORS)}, got {raw!r}")
    return raw
