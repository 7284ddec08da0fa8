"""A worker's life around the loop: the app starts one (:func:`ensure_worker`), and it exits once orphaned.

A worker the app started exits by itself once it has been idle for ``LWDASH_WORKER_IDLE_EXIT_S``
and no app process that asked for it is alive (:class:`IdleExit`); a worker started by hand
keeps serving until it is stopped.
"""
from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import lwdash
from lwdash.config import get_settings
from lwdash.jobs.roster import pid_alive
from lwdash.workspace import SqliteStore

__all__ = ["IdleExit", "any_app_alive", "child_env", "ensure_worker", "record_app"]

log = logging.getLogger("lwdash.worker")

_APPS_DIR = "apps"
_PACKAGE_ROOT = str(Path(lwdash.__file__).resolve().parents[1])


def child_env() -> dict[str, str]:
    """The environment of a process we start: ours, plus lwdash's root on ``PYTHONPATH``."""
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if _PACKAGE_ROOT not in paths:
        paths.append(_PACKAGE_ROOT)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def record_app(data_dir: Path, pid: int | None = None) -> None:
    """Note that app process ``pid`` (default: this one) uses the worker of ``data_dir``."""
    apps = Path(data_dir) / _APPS_DIR
    apps.mkdir(parents=True, exist_ok=True)
    (apps / f"{pid or os.getpid()}@{socket.gethostname()}").touch()


def any_app_alive(data_dir: Path) -> bool:
    """Whether an app process recorded by :func:`record_app` on this host still runs (dead ones are forgotten)."""
    apps = Path(data_dir) / _APPS_DIR
    host = socket.gethostname()
    alive = False
    for p in apps.glob("*@*"):
        pid_text, _, app_host = p.name.partition("@")
        if app_host != host or not pid_text.isdigit():
            continue  # another machine's app: it starts its own worker when it needs one
        if pid_alive(int(pid_text)):
            alive = True
        else:
            p.unlink(missing_ok=True)
    return alive


class IdleExit:
    """For a worker the app started: time to exit once idle for ``idle_s`` with no app alive."""

    def __init__(self, data_dir: Path, idle_s: float, *, enabled: bool) -> None:
        self.data_dir = data_dir
        self.idle_s = idle_s
        self.enabled = enabled
        self.idle_since = time.monotonic()

    def should_exit(self, busy: bool) -> bool:
        now = time.monotonic()
        if busy or not self.enabled:
            self.idle_since = now
            return False
        if now - self.idle_since < self.idle_s:
            return False
        if any_app_alive(self.data_dir):
            self.idle_since = now  # check again after another idle period
            return False
        return True


_STARTED: list[subprocess.Popen[bytes]] = []


def ensure_worker(data_dir: Path | str | None = None, *, concurrency: int | None = None) -> bool:
    """Start a detached ``python -m lwdash worker`` unless a live one serves ``data_dir``.

    Safe to call on every page load: a file lock serialises callers, and the new worker's row
    is recorded before returning, so concurrent callers do not start two. Each call also records
    this process as an app using the worker: a worker started here exits once it has been idle
    for ``LWDASH_WORKER_IDLE_EXIT_S`` with no such app alive. Does nothing when
    ``LWDASH_NO_WORKER=1`` (the operator runs the worker elsewhere, or a test must not spawn processes).

    Args:
        data_dir: the data directory (default: ``LWDASH_DATA_DIR``).
        concurrency: jobs the worker runs at once (default: ``LWDASH_CONCURRENCY``).

    Returns:
        True if a worker was started.
    """
    if os.environ.get("LWDASH_NO_WORKER", "") not in ("", "0"):
        return False
    for p in list(_STARTED):  # reap workers we started that have exited (no zombies)
        if p.poll() is not None:
            _STARTED.remove(p)
    settings = get_settings(data_dir)
    store = SqliteStore(settings.data_dir)
    lock_path = settings.data_dir / "worker-start.lock"
    with lock_path.open("a") as lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - not POSIX
            pass
        record_app(settings.data_dir)
        if store.live_workers(settings.worker_max_age_s):
            return False
        worker_id = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        cmd = [sys.executable, "-m", "lwdash", "worker", "--data-dir", str(settings.data_dir),
               "--worker-id", worker_id, "--exit-when-orphaned"]
        if concurrency is not None:
            cmd += ["--concurrency", str(concurrency)]
        with (settings.data_dir / "worker.log").open("ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=child_env(),
                start_new_session=True,
            )
        _STARTED.append(proc)
        store.register_worker(worker_id, proc.pid)
    log.info("started worker %s (process %d) for %s", worker_id, proc.pid, settings.data_dir)
    return True
