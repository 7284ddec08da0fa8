"""Settings read from the environment: where data lives and how the worker keeps time.

Every setting has a default that works on a laptop; the environment overrides it:

| variable | default | meaning |
|---|---|---|
| ``LWDASH_DATA_DIR`` | ``./.lwdash-data`` | SQLite file, uploaded models and data sets, artifacts |
| ``LWDASH_HEARTBEAT_S`` | ``2`` | how often a worker stamps its jobs and itself as alive |
| ``LWDASH_STALE_TIMEOUT_S`` | ``60`` | a running job without a heartbeat for this long is marked failed |
| ``LWDASH_JOB_TIMEOUT_S`` | ``3600`` | a job running longer than this is killed and marked failed |
| ``LWDASH_MAX_ATTEMPTS`` | ``3`` | a job requeued by worker shutdowns this many times is failed instead |
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_DATA_DIR", "Settings", "get_settings"]

DEFAULT_DATA_DIR = Path(".lwdash-data")


def _env_float(name: str, default: float, *, minimum: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
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
    """

    data_dir: Path
    heartbeat_interval_s: float = 2.0
    stale_timeout_s: float = 60.0
    job_timeout_s: float = 3600.0
    max_attempts: int = 3

    @property
    def worker_max_age_s(self) -> float:
        return max(3.0 * self.heartbeat_interval_s, 5.0)


def get_settings(data_dir: Path | str | None = None) -> Settings:
    """Read the settings from the environment; ``data_dir`` (when given) overrides ``LWDASH_DATA_DIR``.

    Raises:
        ValueError: an environment variable is set to something that is not a valid number.
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
        max_attempts=int(_env_float("LWDASH_MAX_ATTEMPTS", 3, minimum=1)),
    )
