"""Which worker processes are alive: each registers, heartbeats and unregisters itself.

:class:`WorkerRoster` is that part of :class:`lwdash.workspace.Store` (rows of kind
``"workers"``). The app reads it to say whether anyone will run a queued job.
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from lwdash.store.backend import Backend
from lwdash.store.records import WorkerRecord

__all__ = ["WorkerRoster", "pid_alive"]


class WorkerRoster:
    """Register, heartbeat and list worker processes."""

    backend: Backend

    def register_worker(self, worker_id: str, pid: int, host: str | None = None) -> None:
        """Record (or refresh) a worker process as alive."""
        now = time.time()
        host = host or socket.gethostname()
        with self.backend.atomic():
            row = {"id": worker_id, "pid": int(pid), "host": host, "started_at": now, "heartbeat_at": now}
            if not self.backend.put("workers", row):
                self.backend.update("workers", worker_id, {"pid": int(pid), "host": host, "heartbeat_at": now})

    def worker_heartbeat(self, worker_id: str) -> None:
        """Stamp a worker as alive."""
        self.backend.update("workers", worker_id, {"heartbeat_at": time.time()})

    def unregister_worker(self, worker_id: str) -> None:
        """Remove a worker's row (on a clean exit)."""
        self.backend.delete("workers", worker_id)

    def live_workers(self, max_age_s: float = 10.0) -> list[WorkerRecord]:
        """Workers that heartbeated within ``max_age_s``; on this host, only those whose process exists."""
        cutoff = time.time() - max_age_s
        host = socket.gethostname()
        live = []
        for r in self.backend.query("workers", order_by=("started_at",), descending=False):
            if float(r["heartbeat_at"]) < cutoff:
                continue
            rec = WorkerRecord(id=r["id"], pid=int(r["pid"]), host=r["host"], started_at=float(r["started_at"]),
                               heartbeat_at=float(r["heartbeat_at"]))
            if rec.host == host and not pid_alive(rec.pid):
                continue
            live.append(rec)
        return live


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) still answers kill(0): check /proc where there is one.
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True
