"""The Ray executor: the worker's loop, with each job run as a Ray task on a cluster.

``LWDASH_EXECUTOR=ray python -m lwdash worker`` (or ``--executor ray``) starts a *driver*: it
claims jobs from the store exactly as the local worker does and submits each one as a Ray task
that asks for ``LWDASH_RAY_NUM_CPUS`` CPUs (and ``LWDASH_RAY_NUM_GPUS`` GPUs). The task runs
:func:`lwdash.jobs.worker.compute_job` on whichever node Ray picks, so nothing in the task needs
the data directory:

- inputs travel with the task: a bundled sample by name (every node has lwdash installed), an
  uploaded model or data set as its bytes;
- progress goes to a small Ray actor (the "board") that the driver drains into the store every
  tick, so the Jobs page shows it while the task runs;
- the artifacts come back as bytes in the task's return value and the driver writes them into
  the store (``save_result``): no shared filesystem is needed.

The driver heartbeats the jobs it has in flight; if it dies, another worker's stale-job recovery
fails them, as for a local worker. Each task runs in a fresh Ray worker process
(``max_calls=1``: no state leaks between jobs, and the baseline is measured in the same process
as the compressed model) and is never retried by Ray (``max_retries=0``): a crash is reported,
not hidden. Cancel = ``ray.cancel(force=True)`` (the task's process is killed) and the job is
marked cancelled; the time limit works the same way. The memory limit is enforced inside the
task: a watchdog thread checks the task process's resident memory and, over the limit, records
the reason on the board and kills its own process.

Cluster: ``LWDASH_RAY_ADDRESS`` (or Ray's own ``RAY_ADDRESS``), e.g. ``ray://head:10001`` or
``auto``; unset starts a local Ray on this machine. See docs/executors.md.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import sqlite3
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from lwdash.config import Settings
from lwdash.jobs import worker as _worker
from lwdash.jobs.spec import JobRecord, JobSpec, JobStatus
from lwdash.jobs.worker import (
    IdleExit,
    _Beat,
    _import_test_techniques,
    failure_text,
    memory_limit_message,
    record_output,
    requeue_or_fail,
    settle_if_saved,
    stop_on_signals,
    time_limit_message,
)
from lwdash.search import advance_searches
from lwdash.store.records import NotFoundError
from lwdash.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from lwdash.data import Dataset
    from lwdash.models.base import LoadedModel

__all__ = ["ShippedInputs", "run_ray_worker", "ship_inputs"]

log = logging.getLogger("lwdash.worker.ray")

_PROGRESS_MIN_INTERVAL_S = 0.25
_MEMORY_CHECK_S = 0.25


# ---------------------------------------------------------------------- what travels with a task


@dataclass
class ShippedInputs:
    """A job's model and data as they travel to a Ray node (a sample's name, or an upload's bytes).

    Implements :class:`lwdash.jobs.worker.JobInputs`. ``work_dir`` (set by the task) is where
    shipped files are written before they are read.
    """

    model_id: str
    model_kind: str  # "sample" | "upload"
    model_name: str  # the sample's name
    model_suffix: str = ""  # the upload's file suffix (its format)
    model_bytes: bytes | None = None
    arch: str | None = None
    input_shape: tuple[int, ...] | None = None
    data_ref: str = "digits"
    data_bytes: bytes | None = None
    work_dir: Path | None = None

    def _dir(self) -> Path:
        if self.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix="lwdash-inputs-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        return self.work_dir

    def load_model(self, model_id: str) -> LoadedModel:
        """Load the shipped model (``model_id`` must be the one shipped)."""
        if model_id != self.model_id:
            raise NotFoundError(f"model {model_id!r} was not shipped with this task (it carries {self.model_id!r})")
        if self.model_kind == "sample":
            from lwdash.models import load_sample

            return load_sample(self.model_name)
        from lwdash.models import load_model_file

        assert self.model_bytes is not None
        path = self._dir() / f"model{self.model_suffix}"
        path.write_bytes(self.model_bytes)
        return load_model_file(path, arch=self.arch, input_shape=self.input_shape)

    def resolve_data(self, ref: str) -> Dataset:
        """Load the shipped data set (``ref`` must be the one shipped)."""
        from lwdash.data import DataError

        if ref != self.data_ref:
            raise DataError(f"data set {ref!r} was not shipped with this task (it carries {self.data_ref!r})")
        if self.data_bytes is None:
            from lwdash.data import load_digits

            return load_digits()
        from lwdash.data import load_npz

        path = self._dir() / "data.npz"
        path.write_bytes(self.data_bytes)
        return load_npz(path)


def ship_inputs(store: SqliteStore, spec: JobSpec) -> ShippedInputs:
    """Pack what ``spec`` needs from the store so it can run on a node without the data directory.

    Raises:
        NotFoundError: the model or the data set is not in the store.
    """
    rec = store.get_model(spec.model_id)
    inputs = ShippedInputs(model_id=spec.model_id, model_kind=rec.kind, model_name=rec.name, arch=rec.arch,
                           input_shape=tuple(rec.input_shape), data_ref=spec.data_ref)
    if rec.kind != "sample":
        inputs.model_suffix = "".join(rec.path.suffixes[-1:])
        inputs.model_bytes = rec.path.read_bytes()
    if spec.data_ref != "digits":
        ds = store.get_dataset(spec.data_ref)
        if ds.path is not None:
            inputs.data_bytes = ds.path.read_bytes()
    return inputs


# ---------------------------------------------------------------------- the task (runs on a Ray node)


class _Board:
    """A Ray actor the tasks report to: latest progress per job, and why a task killed itself."""

    def __init__(self) -> None:
        self.progress: dict[str, tuple[float, str]] = {}
        self.fatal: dict[str, str] = {}

    def report(self, job_id: str, fraction: float, message: str) -> None:
        self.progress[job_id] = (fraction, message)

    def set_fatal(self, job_id: str, reason: str) -> None:
        self.fatal[job_id] = reason

    def drain(self) -> dict[str, tuple[float, str]]:
        out, self.progress = self.progress, {}
        return out

    def pop_fatal(self, job_id: str) -> str | None:
        return self.fatal.pop(job_id, None)


def _rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _watch_memory(board: Any, job_id: str, limit_mb: int) -> None:
    """Kill this (Ray worker) process when it holds more than ``limit_mb``, after telling the board why."""
    import ray

    def watch() -> None:
        while True:
            time.sleep(_MEMORY_CHECK_S)
            used = _rss_mb()
            if used > limit_mb:
                reason = memory_limit_message(limit_mb, f"the Ray task's process held {used:.0f} MB")
                try:
                    ray.get(board.set_fatal.remote(job_id, reason), timeout=10)
                finally:
                    os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="lwdash-memory-watch", daemon=True).start()


def _run_task(job_id: str, spec: JobSpec, inputs: ShippedInputs, board: Any, memory_mb: int) -> dict[str, Any]:
    """The body of a job's Ray task: compute the job, return its outputs and its artifacts' bytes."""
    _import_test_techniques()
    if memory_mb > 0:
        _watch_memory(board, job_id, memory_mb)
    last = [0.0]

    def progress(fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= _PROGRESS_MIN_INTERVAL_S or fraction >= 1.0:
            last[0] = now
            board.report.remote(job_id, float(fraction), str(message))

    host = socket.gethostname()
    with tempfile.TemporaryDirectory(prefix=f"lwdash-job-{job_id}-") as tmp:
        out_dir = Path(tmp) / "out"
        out_dir.mkdir()
        inputs.work_dir = Path(tmp) / "in"
        try:
            output = _worker.compute_job(spec, out_dir, progress, inputs)  # looked up now: tests may swap it
        except Exception as e:
            # No RLIMIT in a Ray worker: an allocation failure here is the node's, not lwdash's limit.
            return {"ok": False, "error": failure_text(e, 0), "host": host}
        if isinstance(output, dict):  # an analysis: JSON only, no files
            return {"ok": True, "analysis": output, "host": host}
        root = out_dir.resolve()
        files: dict[str, bytes] = {}
        artifacts: dict[str, str] = {}
        for p in sorted(root.rglob("*")):
            if p.is_file():
                files[p.relative_to(root).as_posix()] = p.read_bytes()
        for name, path in output.artifacts.items():
            p = Path(path).resolve()
            if p.is_relative_to(root):
                artifacts[name] = p.relative_to(root).as_posix()
            else:  # written elsewhere: ship it under its own name
                artifacts[name] = p.name
                files[p.name] = p.read_bytes()
        return {"ok": True, "output": dataclasses.replace(output, artifacts={}), "artifacts": artifacts,
                "files": files, "host": host}


# ---------------------------------------------------------------------- the driver


@dataclass
class _InFlight:
    job: JobRecord
    ref: Any  # ray.ObjectRef
    started_s: float


def _safe_relpath(rel: str) -> PurePosixPath:
    p = PurePosixPath(rel)
    if p.is_absolute() or not p.parts or any(part in ("", ".", "..") for part in p.parts):
        raise ValueError(f"the Ray task returned an artifact with an unsafe path: {rel!r}")
    return p


def _record(store: SqliteStore, job: JobRecord, value: dict[str, Any]) -> None:
    """Write a finished task's outputs into the store (its artifacts' bytes into ``artifacts/``)."""
    out_dir = Path(tempfile.mkdtemp(prefix=f"job-{job.id}-", dir=store.tmp_dir))
    try:
        if "analysis" in value:
            record_output(store, job.id, job.spec, value["analysis"], out_dir)
            return
        for rel, data in value["files"].items():
            dest = out_dir.joinpath(*_safe_relpath(rel).parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        artifacts = {name: out_dir.joinpath(*_safe_relpath(rel).parts) for name, rel in value["artifacts"].items()}
        record_output(store, job.id, job.spec, dataclasses.replace(value["output"], artifacts=artifacts), out_dir)
    finally:
        import shutil

        shutil.rmtree(out_dir, ignore_errors=True)  # moved into artifacts/ on success


def _task_death_reason(e: BaseException, fatal: str | None) -> str:
    if fatal:
        return fatal
    import ray.exceptions as rex

    if isinstance(e, rex.OutOfMemoryError):
        return f"Ray stopped the job's task because its node ran low on memory: {e}"
    if isinstance(e, rex.NodeDiedError):
        return f"the Ray node running the job died: {e}"
    if isinstance(e, rex.WorkerCrashedError):
        return (f"the Ray worker process running the job died (a crash in native code, a kill or out of"
                f" memory): {e}")
    return f"{type(e).__name__}: {e}"


class _Driver:
    def __init__(self, settings: Settings, store: SqliteStore, worker_id: str, concurrency: int) -> None:
        import ray

        self.ray = ray
        self.settings = settings
        self.store = store
        self.worker_id = worker_id
        self.concurrency = concurrency
        self.board: Any = ray.remote(num_cpus=0)(_Board).remote()  # an actor handle
        options: dict[str, Any] = {"num_cpus": settings.ray_num_cpus, "max_retries": 0, "max_calls": 1}
        if settings.ray_num_gpus > 0:
            options["num_gpus"] = settings.ray_num_gpus
        self.task = ray.remote(**options)(_run_task)
        self.in_flight: dict[str, _InFlight] = {}
        self.beat = _Beat(settings.heartbeat_interval_s)

    def _drop(self, job_id: str) -> _InFlight:
        return self.in_flight.pop(job_id)

    def _stop_task(self, job_id: str) -> None:
        item = self._drop(job_id)
        try:
            self.ray.cancel(item.ref, force=True)
        except Exception as e:  # already finished, or its node is gone
            log.info("job %s: ray.cancel: %s", job_id, e)

    def drain_progress(self) -> None:
        updates = self.ray.get(self.board.drain.remote(), timeout=30)
        for job_id, (fraction, message) in updates.items():
            if job_id in self.in_flight:
                self.store.update_progress(job_id, fraction, message)

    def collect(self) -> None:
        if not self.in_flight:
            return
        refs = [item.ref for item in self.in_flight.values()]
        ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0)
        ready_ids = {r.hex() for r in ready}
        for job_id, item in list(self.in_flight.items()):
            if item.ref.hex() not in ready_ids:
                continue
            self._drop(job_id)
            try:
                value = self.ray.get(item.ref)
            except Exception as e:
                fatal = self.ray.get(self.board.pop_fatal.remote(job_id), timeout=30)
                job = self.store.get_job(job_id)
                if job.cancel_requested:
                    self.store.mark_cancelled(job_id)
                elif not settle_if_saved(self.store, job):
                    reason = _task_death_reason(e, fatal)
                    self.store.fail(job_id, reason)
                    log.warning("job %s: failed: %s", job_id, reason.splitlines()[0])
                continue
            if value.get("ok"):
                try:
                    _record(self.store, item.job, value)
                    log.info("job %s: done on %s", job_id, value.get("host"))
                except Exception as e:
                    self.store.fail(job_id, f"the job finished on {value.get('host')} but its result could not be"
                                            f" stored: {type(e).__name__}: {e}")
            else:
                self.store.fail(job_id, value["error"])
                log.info("job %s: failed on %s", job_id, value.get("host"))

    def check_limits(self) -> None:
        now = time.monotonic()
        for job_id, item in list(self.in_flight.items()):
            job = self.store.get_job(job_id)
            if job.cancel_requested and job.status is JobStatus.RUNNING:
                self._stop_task(job_id)
                if self.store.mark_cancelled(job_id):
                    log.info("job %s: cancelled (Ray task stopped)", job_id)
            elif now - item.started_s > self.settings.job_timeout_s:
                self._stop_task(job_id)
                self.store.fail(job_id, time_limit_message(self.settings.job_timeout_s))
                log.warning("job %s: failed: time limit", job_id)

    def submit(self) -> bool:
        claimed = False
        while len(self.in_flight) < self.concurrency:
            job = self.store.claim(self.worker_id)
            if job is None:
                break
            claimed = True
            try:
                inputs = ship_inputs(self.store, job.spec)
            except (NotFoundError, OSError) as e:
                self.store.fail(job.id, f"{type(e).__name__}: {e}")
                continue
            ref = self.task.remote(job.id, job.spec, inputs, self.board, self.settings.job_memory_mb)
            self.in_flight[job.id] = _InFlight(job=job, ref=ref, started_s=time.monotonic())
            self.store.update_progress(job.id, 0.0, "submitted to Ray, waiting for a node")
            log.info("job %s: submitted to Ray", job.id)
        return claimed

    def tick(self, stop: threading.Event, idle: IdleExit, *, once: bool) -> bool:
        if self.beat.due():
            self.store.worker_heartbeat(self.worker_id)
            for job_id in self.in_flight:
                self.store.heartbeat_job(job_id)
            for job_id in self.store.recover_stale(self.settings.stale_timeout_s):
                log.warning("job %s: failed: its worker stopped responding", job_id)
        self.drain_progress()
        self.collect()
        self.check_limits()
        if stop.is_set():
            return False
        advance_searches(self.store)  # queue the next trials of running searches before claiming
        claimed = self.submit()
        if idle.should_exit(bool(self.in_flight) or claimed):
            log.info("worker %s: idle and no app is alive: exiting", self.worker_id)
            return False
        return not (once and not self.in_flight and not claimed)

    def shutdown(self) -> None:
        for job_id in list(self.in_flight):
            self._stop_task(job_id)
            requeue_or_fail(self.store, self.settings, job_id)


def _default_concurrency(settings: Settings) -> int:
    import ray

    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    if settings.ray_num_gpus > 0:
        gpus = float(ray.cluster_resources().get("GPU", 0.0))
        return max(1, int(gpus / settings.ray_num_gpus))
    if settings.ray_num_cpus <= 0:
        return max(1, int(cpus))
    return max(1, int(cpus / settings.ray_num_cpus))


def run_ray_worker(
    settings: Settings,
    *,
    once: bool = False,
    concurrency: int | None = None,
    poll_s: float = 0.5,
    worker_id: str | None = None,
    exit_when_orphaned: bool = False,
    stop_event: threading.Event | None = None,
) -> int:
    """Serve the store's queue by running each job as a Ray task (see the module docstring).

    Connects to ``settings.ray_address`` (or starts a local Ray) unless Ray is already
    initialised in this process, in which case that connection is used and left open.

    Args:
        settings: resolved settings (data dir, limits, Ray address and per-job resources).
        once: run the queued jobs, then exit.
        concurrency: jobs in flight at once (default: ``settings.concurrency``, else the
            cluster's CPUs divided by ``ray_num_cpus``, or its GPUs divided by ``ray_num_gpus``).
        poll_s: sleep between loop passes.
        worker_id: the id to register under.
        exit_when_orphaned: exit once idle with no app alive (workers the app starts).
        stop_event: stops the loop when set (for a driver run on a thread; on the main thread
            SIGTERM/SIGINT stop it too).

    Returns:
        The process exit code (0).
    """
    import ray

    started_ray = False
    if not ray.is_initialized():
        ray.init(address=settings.ray_address, log_to_driver=False)
        started_ray = True
    concurrency = concurrency or settings.concurrency or _default_concurrency(settings)
    store = SqliteStore(settings.data_dir)
    worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-ray-{uuid.uuid4().hex[:6]}"
    store.register_worker(worker_id, os.getpid())
    driver = _Driver(settings, store, worker_id, concurrency)
    idle = IdleExit(settings.data_dir, settings.worker_idle_exit_s, enabled=exit_when_orphaned)
    log.info("worker %s serving %s on Ray (%s; %g CPU, %g GPU a job; up to %d jobs at once)", worker_id,
             settings.data_dir, settings.ray_address or "local Ray", settings.ray_num_cpus, settings.ray_num_gpus,
             concurrency)
    with stop_on_signals() as stop:
        if stop_event is not None:

            def relay() -> None:
                stop_event.wait()
                stop.set()

            threading.Thread(target=relay, name="lwdash-ray-stop", daemon=True).start()
        try:
            while True:
                try:
                    if not driver.tick(stop, idle, once=once):
                        break
                except sqlite3.OperationalError as e:
                    log.warning("store busy (%s); trying again", e)
                except ray.exceptions.GetTimeoutError as e:
                    log.warning("Ray did not answer in time (%s); trying again", e)
                stop.wait(poll_s)
        finally:
            driver.shutdown()
            store.unregister_worker(worker_id)
            if started_ray:
                ray.shutdown()
            log.info("worker %s stopped", worker_id)
    return 0
