"""TEST-ONLY: a fast stand-in for the job computation, for the load, fault and recovery tests.

Imported by job processes through ``LWDASH_TEST_TECHNIQUES``. It replaces
:func:`lwdash.jobs.worker.compute_job` for one technique key, ``test_fast``, whose run sleeps
``seconds`` (reporting progress) and writes small artifacts whose bytes are derived from the
spec's ``token`` (so a test can check every stored artifact byte for byte). With ``fail_once``
(a file path) the first run creates that file and fails, the next succeeds (to test retry).
With ``runs_log`` (a file path) every run appends a line ``<token> <pid>`` first (O_APPEND: one
write per line), so a test can count how many times each job really ran. The subject of those
tests is the queue, the job processes, their crashes and the store, not compression: every other
technique still goes through the real :func:`~lwdash.jobs.worker.compute_job`, and the real
runner is exercised end to end by ``test_worker.py`` and ``test_ray_executor.py``.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from _jobs_harness import artifact_bytes

import lwdash.jobs.worker as _worker
from lwdash.jobs.runner import RunOutput
from lwdash.measure.metrics import Metrics

_real_compute_job = _worker.compute_job


def _zero_metrics() -> Metrics:
    import dataclasses

    return Metrics(**{f.name: 0 for f in dataclasses.fields(Metrics)})


def _fast_compute_job(spec: Any, out_dir: Path, progress: Any, inputs: Any) -> Any:
    if spec.technique.get("type") != "test_fast":
        return _real_compute_job(spec, out_dir, progress, inputs)
    data = spec.technique.get("data") or {}
    seconds = float(data.get("seconds", 0.5))
    token = str(data.get("token", ""))
    runs_log = data.get("runs_log")
    if runs_log:
        fd = os.open(runs_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{token} {os.getpid()}\n".encode())
        finally:
            os.close(fd)
    flag = data.get("fail_once")
    if flag and not Path(flag).exists():
        Path(flag).touch()
        raise RuntimeError("test: fails on its first run")
    out_dir.mkdir(parents=True, exist_ok=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        progress(0.5, "test: fast job")
        time.sleep(0.05)
    onnx = out_dir / "model.onnx"
    onnx.write_bytes(artifact_bytes(token))
    result = out_dir / "result.json"
    result.write_text(json.dumps({"token": token}))
    progress(1.0, "done")
    m = _zero_metrics()
    return RunOutput(baseline=m, compressed=m, baseline_weights={}, compressed_weights={}, notes=("test",),
                     steps=(), environment={}, artifacts={"model.onnx": onnx, "result.json": result})


_worker.compute_job = _fast_compute_job
