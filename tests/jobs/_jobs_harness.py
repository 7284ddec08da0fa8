"""Shared helpers of the worker tests: real worker processes over a temp store, and waiting on jobs.

Never imports the test-only techniques into the pytest process (they would join the registry
that the contract tests walk): workers are started through ``_launch_worker.py``, whose job
processes import them (see that file); nothing in lwdash reads a test setting.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from lwdash.jobs.spec import JobRecord, JobSpec
from lwdash.workspace import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
#: ``python LAUNCHER [worker options]``: the real worker, with the test-only techniques and job kind registered.
LAUNCHER = HERE / "_launch_worker.py"
#: The job kind ``_fast_jobs.py`` registers.
FAST_KIND = "test_fast"


def artifact_bytes(token: str) -> bytes:
    """What a ``test_fast`` job writes as ``model.onnx`` for ``token`` (tests recompute it to compare)."""
    return (f"lwdash test artifact {token}\n" * 200).encode()


def spec(technique: str, **data: object) -> JobSpec:
    """A job on the digits MLP sample and the bundled digits data."""
    return JobSpec(model_id="sample/digits_mlp", data_ref="digits",
                   technique={"type": technique, "version": 1, "data": dict(data)})


def fast(token: str, seconds: float = 0.3, **data: object) -> JobSpec:
    """A ``test_fast`` job (see ``_fast_jobs.py``): sleeps, then stores artifacts derived from ``token``."""
    return replace(spec("test_fast", token=token, seconds=seconds, **data), kind=FAST_KIND)


def scan() -> JobSpec:
    """A cheap real job (no test-only code): a 1-level quantization sensitivity scan of the digits MLP."""
    from lwdash.analysis.sensitivity import ScanConfig, scan_technique

    return JobSpec(model_id="sample/digits_mlp", data_ref="digits", technique=scan_technique(ScanConfig("quantize", (8.0,))),
                   kind="sensitivity", label="scan")


def worker_env(**env: str) -> dict[str, str]:
    """The environment of a worker a test starts: lwdash and this folder importable, quick heartbeats, local."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]),
        "LWDASH_HEARTBEAT_S": "0.5",
        "LWDASH_EXECUTOR": "local",
        **env,
    }


def wait_job(store: SqliteStore, job_id: str, ok: Callable[[JobRecord], bool], timeout_s: float) -> JobRecord:
    """Poll ``job_id`` until ``ok(job)``; fails the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = store.get_job(job_id)
        if ok(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job.status.value} ({job.message!r}) after {timeout_s} s")
        time.sleep(0.1)


def wait_all_terminal(store: SqliteStore, job_ids: list[str], timeout_s: float) -> list[JobRecord]:
    """Poll until every job is terminal; fails the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        jobs = [store.get_job(j) for j in job_ids]
        if all(j.status.terminal for j in jobs):
            return jobs
        if time.monotonic() > deadline:
            left = {j.status.value for j in jobs if not j.status.terminal}
            raise AssertionError(f"{sum(not j.status.terminal for j in jobs)} jobs still {left} after {timeout_s} s")
        time.sleep(0.2)


class Worker:
    """A real worker process (``_launch_worker.py``: the worker's main, test-only techniques registered)."""

    def __init__(self, data_dir: Path, *, concurrency: int = 1, **env: str) -> None:
        self.log = data_dir / f"test-worker-{time.monotonic_ns()}.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(LAUNCHER), "--data-dir", str(data_dir), "--poll", "0.1",
                 "--concurrency", str(concurrency)],
                cwd=ROOT, env=worker_env(**env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout_s: float = 20) -> int:
        """SIGTERM, as a service manager would; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill_group()
            raise AssertionError("worker did not stop on SIGTERM:\n" + self.log.read_text()[-3000:]) from None

    def kill_group(self) -> None:
        """SIGKILL the worker and every process of its group (its zygote), as a crash or `kill -9` would."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def pid_alive(pid: int) -> bool:
    """Whether a process exists (and is not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def job_pid(workers: list[Worker], job_id: str) -> int | None:
    """The pid of the process running ``job_id``, from its worker's log ("started in process N")."""
    needle = f"job {job_id} "
    pid = None
    for w in workers:
        for line in w.log.read_text(errors="replace").splitlines():
            if needle in line and "started in process" in line:
                pid = int(line.rsplit(" ", 1)[-1])  # the latest start (a requeued job starts again)
    return pid
