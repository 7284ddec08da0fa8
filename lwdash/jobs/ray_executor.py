"""The Ray executor: the shared job loop, with each job run as a Ray task on a cluster.

``LWDASH_EXECUTOR=ray python -m lwdash worker`` (or ``--executor ray``) starts a *driver*: the
same loop as the local worker (:func:`lwdash.jobs.loop.serve`: claim, heartbeats, limits,
cancel, recovery, searches) with :class:`RayExecutor` behind it, which submits each job as a Ray
task that asks for ``LWDASH_RAY_NUM_CPUS`` CPUs (and ``LWDASH_RAY_NUM_GPUS`` GPUs). The task runs
:func:`lwdash.jobs.compute.compute_job` on whichever node Ray picks, so nothing in the task needs
the data directory:

- inputs travel with the task: a bundled sample by name (every node has lwdash installed), an
  uploaded model or data set as its bytes;
- progress goes to a small Ray actor (the "board") that the driver drains into the store every
  pass, so the Jobs page shows it while the task runs;
- the artifacts come back as bytes in the task's return value and the driver writes them into
  the store (``save_result``): no shared filesystem is needed.

Each task runs in a fresh Ray worker process (``max_calls=1``: no state leaks between jobs, and
the baseline is measured in the same process as the compressed model) and is never retried by
Ray (``max_retries=0``): a crash is reported, not hidden. Kill = ``ray.cancel(force=True)`` (the
task's process is killed): cancel and the time limit use it. The memory limit is enforced inside
the task: a watchdog thread checks the task process's resident memory and, over the limit,
records the reason on the board and kills its own process.

Cluster: ``LWDASH_RAY_ADDRESS`` (or Ray's own ``RAY_ADDRESS``), e.g. ``ray://head:10001`` or
``auto``; unset starts a local Ray on this machine. See docs/executors.md.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import socket
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from lwdash.config import Settings
from lwdash.jobs.compute import record_output
from lwdash.jobs.lifecycle import IdleExit
from lwdash.jobs.loop import JobStartError, serve
from lwdash.jobs.ray_task import Board, run_task
from lwdash.jobs.spec import JobRecord, JobSpec
from lwdash.store.records import NotFoundError
from lwdash.workspace import SqliteStore, Store

if TYPE_CHECKING:
    from lwdash.data import Dataset
    from lwdash.models.base import LoadedModel

__all__ = ["RayExecutor", "ShippedInputs", "run_ray_worker", "ship_inputs"]

log = logging.getLogger("lwdash.worker.ray")

#: How long the driver waits for the board actor before it tries again on the next pass.
_BOARD_TIMEOUT_S = 30


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
    data_ref: str = ""  # a bundled set's name (loaded on the node) or an upload's id (its bytes shipped)
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
        if self.data_bytes is None:  # a bundled set: the node reads its own copy (Fashion-MNIST: its Debian package)
            from lwdash.data import load_bundled

            return load_bundled(ref)
        from lwdash.data import load_npz

        path = self._dir() / "data.npz"
        path.write_bytes(self.data_bytes)
        return load_npz(path)


def ship_inputs(store: Store, spec: JobSpec) -> ShippedInputs:
    """Pack what ``spec`` needs from the store so it can run on a node without the data directory.

    Raises:
        NotFoundError: the model is not in the store.
    """
    rec = store.get_model(spec.model_id)
    inputs = ShippedInputs(model_id=spec.model_id, model_kind=rec.kind, model_name=rec.name, arch=rec.arch,
                           input_shape=tuple(rec.input_shape), data_ref=spec.data_ref)
    if rec.kind != "sample":
        inputs.model_suffix = "".join(rec.path.suffixes[-1:])
        inputs.model_bytes = rec.path.read_bytes()
    upload = store.uploaded_dataset(spec.data_ref)
    if upload is not None and upload.path is not None:
        inputs.data_bytes = upload.path.read_bytes()
    # else a bundled set: the node loads it by name, and refuses one it does not know or has not installed
    return inputs


# ---------------------------------------------------------------------- the driver's side


def _safe_relpath(rel: str) -> PurePosixPath:
    p = PurePosixPath(rel)
    if p.is_absolute() or not p.parts or any(part in ("", ".", "..") for part in p.parts):
        raise ValueError(f"the Ray task returned an artifact with an unsafe path: {rel!r}")
    return p


def _record(store: Store, job: JobRecord, value: dict[str, Any]) -> None:
    """Write a finished task's outputs into the store (its artifacts' bytes into ``artifacts/``)."""
    out_dir = store.scratch_dir(f"job-{job.id}-")
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


@dataclass
class _Task:
    job: JobRecord
    ref: Any  # ray.ObjectRef


class RayExecutor:
    """Runs each job as a Ray task (see the module docstring); needs ``ray.init`` done first.

    Args:
        settings: the per-job resources (``ray_num_cpus``, ``ray_num_gpus``) and memory limit.
        store: the store the jobs come from; the driver writes their outcomes into it.
    """

    name = "ray"

    def __init__(self, settings: Settings, store: Store) -> None:
        import ray

        self.ray = ray
        self.settings = settings
        self.store = store
        self.board: Any = ray.remote(num_cpus=0)(Board).remote()  # an actor handle
        options: dict[str, Any] = {"num_cpus": settings.ray_num_cpus, "max_retries": 0, "max_calls": 1}
        if settings.ray_num_gpus > 0:
            options["num_gpus"] = settings.ray_num_gpus
        self.task = ray.remote(**options)(run_task)
        self.in_flight: dict[str, _Task] = {}

    def start(self, job: JobRecord) -> _Task:
        """Ship the job's inputs and submit its task."""
        try:
            inputs = ship_inputs(self.store, job.spec)
        except (NotFoundError, OSError) as e:
            raise JobStartError(f"{type(e).__name__}: {e}") from e
        ref = self.task.remote(job.id, job.spec, inputs, self.board, self.settings.job_memory_mb)
        task = _Task(job=job, ref=ref)
        self.in_flight[job.id] = task
        self.store.update_progress(job.id, 0.0, "submitted to Ray, waiting for a node")
        log.info("job %s: submitted to Ray", job.id)
        return task

    def relay_progress(self) -> None:
        """Copy the progress the tasks reported to the board into the store."""
        if not self.in_flight:
            return
        try:
            updates = self.ray.get(self.board.drain.remote(), timeout=_BOARD_TIMEOUT_S)
        except self.ray.exceptions.GetTimeoutError as e:
            log.warning("Ray did not answer in time (%s); trying again", e)
            return
        for job_id, (fraction, message) in updates.items():
            if job_id in self.in_flight:
                self.store.update_progress(job_id, fraction, message)

    def poll(self, handle: _Task) -> str | None:
        """``None`` while the task runs; once it ended, its outputs are recorded here, or why it died returned."""
        ready, _ = self.ray.wait([handle.ref], num_returns=1, timeout=0)
        if not ready:
            return None
        job_id = handle.job.id
        self.in_flight.pop(job_id, None)
        try:
            value = self.ray.get(handle.ref)
        except Exception as e:
            try:
                fatal = self.ray.get(self.board.pop_fatal.remote(job_id), timeout=_BOARD_TIMEOUT_S)
            except self.ray.exceptions.GetTimeoutError:
                fatal = None
            return _task_death_reason(e, fatal)
        host = value.get("host")
        if not value.get("ok"):  # the job's own error, as a local job process records it
            self.store.fail(job_id, value["error"])
            log.info("job %s: failed on %s", job_id, host)
            return value["error"]
        try:
            _record(self.store, handle.job, value)
        except Exception as e:
            return f"the job finished on {host} but its result could not be stored: {type(e).__name__}: {e}"
        log.info("job %s: done on %s", job_id, host)
        return ""

    def kill(self, handle: _Task, *, grace_s: float = 0.0) -> None:
        """``ray.cancel(force=True)``: the task's process is killed (no grace: Ray has none for a forced cancel)."""
        self.in_flight.pop(handle.job.id, None)
        try:
            self.ray.cancel(handle.ref, force=True)
        except Exception as e:  # already finished, or its node is gone
            log.info("job %s: ray.cancel: %s", handle.job.id, e)

    def memory_mb(self, handle: _Task) -> None:
        """``None``: the task enforces the memory limit itself (it can run on any node)."""
        return None


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
    try:
        concurrency = concurrency or settings.concurrency or _default_concurrency(settings)
        store = SqliteStore(settings.data_dir)
        worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-ray-{uuid.uuid4().hex[:6]}"
        executor = RayExecutor(settings, store)
        idle = IdleExit(settings.data_dir, settings.worker_idle_exit_s, enabled=exit_when_orphaned)
        log.info("worker %s serving %s on Ray (%s; %g CPU, %g GPU a job; up to %d jobs at once)", worker_id,
                 settings.data_dir, settings.ray_address or "local Ray", settings.ray_num_cpus,
                 settings.ray_num_gpus, concurrency)
        return serve(store, executor, settings, worker_id=worker_id, concurrency=concurrency, once=once,
                     poll_s=poll_s, idle=idle, stop_event=stop_event)
    finally:
        if started_ray:
            ray.shutdown()
