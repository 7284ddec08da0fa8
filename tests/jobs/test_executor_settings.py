"""Executor settings from the environment, and what a Ray task carries (no Ray needed here).

A Ray task may land on a node without the data directory, so uploaded models and data sets travel
with it as bytes: load them back from a pickled copy, in another folder, and compare.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from lwdash.config import get_settings
from lwdash.jobs.ray_executor import ship_inputs
from lwdash.jobs.spec import JobSpec
from lwdash.workspace import SqliteStore


def test_executor_settings_and_their_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("LWDASH_EXECUTOR", "LWDASH_CONCURRENCY", "LWDASH_JOB_MEMORY_MB", "LWDASH_RAY_ADDRESS", "RAY_ADDRESS",
                 "LWDASH_RAY_NUM_CPUS", "LWDASH_RAY_NUM_GPUS", "LWDASH_WORKER_IDLE_EXIT_S"):
        monkeypatch.delenv(name, raising=False)
    s = get_settings(tmp_path)
    assert (s.executor, s.concurrency, s.job_memory_mb, s.ray_address) == ("local", None, 8192, None)
    assert (s.ray_num_cpus, s.ray_num_gpus, s.worker_idle_exit_s) == (1.0, 0.0, 300.0)

    monkeypatch.setenv("LWDASH_EXECUTOR", " Ray ")
    monkeypatch.setenv("LWDASH_CONCURRENCY", "4")
    monkeypatch.setenv("LWDASH_JOB_MEMORY_MB", "0")
    monkeypatch.setenv("RAY_ADDRESS", "auto")
    monkeypatch.setenv("LWDASH_RAY_NUM_GPUS", "0.5")
    s = get_settings(tmp_path)
    assert (s.executor, s.concurrency, s.job_memory_mb, s.ray_address, s.ray_num_gpus) == ("ray", 4, 0, "auto", 0.5)
    monkeypatch.setenv("LWDASH_RAY_ADDRESS", "ray://head:10001")  # lwdash's own variable wins
    assert get_settings(tmp_path).ray_address == "ray://head:10001"

    for name, value, message in [
        ("LWDASH_EXECUTOR", "dask", "LWDASH_EXECUTOR must be one of local, ray, got 'dask'"),
        ("LWDASH_CONCURRENCY", "0", "LWDASH_CONCURRENCY must be >= 1, got 0"),
        ("LWDASH_CONCURRENCY", "two", "LWDASH_CONCURRENCY must be a count of jobs (a whole number), got 'two'"),
        ("LWDASH_JOB_MEMORY_MB", "8GB", "LWDASH_JOB_MEMORY_MB must be a size in MiB (a whole number), got '8GB'"),
        ("LWDASH_JOB_TIMEOUT_S", "0.1", "LWDASH_JOB_TIMEOUT_S must be >= 1, got 0.1"),
    ]:
        with monkeypatch.context() as m:
            m.setenv(name, value)
            with pytest.raises(ValueError) as err:
                get_settings(tmp_path)
            assert str(err.value) == message


def test_uploaded_model_and_data_travel_as_bytes(tmp_path: Path) -> None:
    from lwdash.measure import save_pt2
    from lwdash.models import load_sample

    store = SqliteStore(tmp_path / "data")
    sample = load_sample("digits_mlp")
    assert save_pt2(sample.module, (1, 8, 8), tmp_path / "m.pt2")
    model = store.import_model("my model.pt2", (tmp_path / "m.pt2").read_bytes())
    rng = np.random.default_rng(0)
    x = rng.random((120, 1, 8, 8), dtype=np.float32)
    y = np.arange(120) % 10
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = store.import_dataset("d.npz", (tmp_path / "d.npz").read_bytes())
    spec = JobSpec(model_id=model.id, data_ref=ds.id, technique={"type": "magnitude_pruning", "data": {}})

    shipped = pickle.loads(pickle.dumps(ship_inputs(store, spec)))  # as Ray serializes task arguments
    shipped.work_dir = tmp_path / "elsewhere"
    remote_model = shipped.load_model(model.id)
    remote_data = shipped.resolve_data(ds.id)
    assert all(p.is_relative_to(tmp_path / "elsewhere") for p in (tmp_path / "elsewhere").iterdir())

    local_model, local_data = store.load_model(model.id), store.resolve_data(ds.id)
    assert torch.equal(remote_data.test.x, local_data.test.x) and torch.equal(remote_data.test.y, local_data.test.y)
    with torch.inference_mode():
        assert torch.equal(remote_model.module(local_data.test.x), local_model.module(local_data.test.x))

    with pytest.raises(Exception, match="was not shipped"):
        shipped.load_model("sample/digits_cnn")
