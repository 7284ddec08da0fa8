"""Job specs and statuses. A spec holds ids and configs, never tensors."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["JobRecord", "JobSpec", "JobStatus"]


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True)
class JobSpec:
    """What to run: a stored model, a data reference, a technique config (as its dict form)."""

    model_id: str
    data_ref: str  # a bundled set's name (lwdash.data.bundled: "digits", "fashion_mnist", ...) or "dataset/<sha>"
    technique: dict[str, Any]  # lwdash.techniques.config_to_dict(...) form
    seed: int = 0
    threads: int = 1
    label: str = ""
    # "compress" (runner.execute -> a result); "sensitivity" (a per-layer scan) and "baseline" (the model's
    # own metrics) -> an analysis
    kind: str = "compress"
    search_id: str = ""  # the search that proposed this job as one of its trials ("" for other jobs)
    # runtime keys to measure latency on (lwdash.runtimes); () = the worker's LWDASH_RUNTIMES, else the defaults
    runtimes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "runtimes", tuple(str(k) for k in self.runtimes or ()))  # a stored list reads back

    def same_work(self, other: JobSpec) -> bool:
        """Whether ``other`` runs exactly this: same kind, model, data, technique and knobs, seed, threads and runtimes.

        The config's format version is not compared (it says how the knobs were written, not what ran).
        """
        def work(s: JobSpec) -> tuple[object, ...]:
            return (s.kind, s.model_id, s.data_ref, s.technique.get("type"), s.technique.get("data"), s.seed,
                    s.threads, tuple(sorted(s.runtimes)))

        return work(self) == work(other)


@dataclass(frozen=True)
class JobRecord:
    """A job as stored: its spec plus lifecycle fields."""

    id: str
    spec: JobSpec
    status: JobStatus
    progress: float = 0.0
    message: str = ""
    error: str = ""
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None
    worker: str = ""
    result_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0  # how many times a worker has claimed it
    cancel_requested: bool = False  # set on a running job; the worker kills it and marks it cancelled
