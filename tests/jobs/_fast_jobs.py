"""TEST-ONLY: a fast job kind, for the load, fault and recovery tests (registered by ``_launch_worker.py``).

It registers the job kind ``test_fast`` (``JobSpec(kind="test_fast")``, see ``_jobs_harness.fast``)
through lwdash's own registry (:func:`lwdash.jobs.compute.register_job_kind`). Its run sleeps
``seconds`` (reporting progress) and writes small artifacts whose bytes are derived from the spec's
``token`` (so a test can check every stored artifact byte for byte). With ``fail_once`` (a file path)
the first run creates that file and fails, the next succeeds (to test retry). With ``runs_log`` (a
file path) every run appends a line ``<token> <pid>`` first (O_APPEND: one write per line), so a test
can count how many times each job really ran. The subject of those tests is the queue, the job
processes, their crashes and the store, not compression: every other job still goes through the real
compute path, and the real runner is exercised end to end by ``test_worker.py`` and
``test_ray_executor.py``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

from _jobs_harness import FAST_KIND, artifact_bytes

from lwdash.jobs.compute import register_job_kind
from lwdash.jobs.runner import RunOutput
from lwdash.measure.metrics import Metrics


def _zero_metrics() -> Metrics:
    return Metrics.from_dict({f.name: 0 for f in dataclasses.fields(Metrics) if f.name not in ("latency", "latency_notes")})


def _fast_job(spec: Any, out_dir: Path, progress: Any, inputs: Any) -> RunOutput:
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


register_job_kind(FAST_KIND, _fast_job)
