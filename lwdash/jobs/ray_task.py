"""The body of a job's Ray task (it runs on a Ray node), and the board it reports progress to.

The task computes the job with :func:`lwdash.jobs.compute.compute_job` from the inputs shipped
with it and returns its outputs and its artifacts' bytes; a watchdog thread enforces the memory
limit inside the task's process. The driver's side is :mod:`lwdash.jobs.ray_executor`.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lwdash.jobs.compute import PROGRESS_MIN_INTERVAL_S, compute_job, failure_text, memory_limit_message
from lwdash.jobs.spec import JobSpec

if TYPE_CHECKING:
    from lwdash.jobs.ray_executor import ShippedInputs

__all__ = ["Board", "run_task"]

_MEMORY_CHECK_S = 0.25


class Board:
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


def run_task(job_id: str, spec: JobSpec, inputs: ShippedInputs, board: Any, memory_mb: int) -> dict[str, Any]:
    """The body of a job's Ray task: compute the job, return its outputs and its artifacts' bytes."""
    if memory_mb > 0:
        _watch_memory(board, job_id, memory_mb)
    last = [0.0]

    def progress(fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_MIN_INTERVAL_S or fraction >= 1.0:
            last[0] = now
            board.report.remote(job_id, float(fraction), str(message))

    host = socket.gethostname()
    with tempfile.TemporaryDirectory(prefix=f"lwdash-job-{job_id}-") as tmp:
        out_dir = Path(tmp) / "out"
        out_dir.mkdir()
        inputs.work_dir = Path(tmp) / "in"
        try:
            output = compute_job(spec, out_dir, progress, inputs)
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
