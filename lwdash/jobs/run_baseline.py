"""Measuring a job's baseline (the model as uploaded), with a small per-process cache.

The baseline's measurement may be reused by later calls in the same process (a CLI sweep) when
the model weights, the data and the thread count are identical; it is never shared between
processes. Used by :func:`lwdash.jobs.runner.execute` and :func:`measure_reference`.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lwdash.data import Dataset
from lwdash.jobs.run_progress import ProgressFn
from lwdash.measure.metrics import Metrics
from lwdash.models.base import LoadedModel

__all__ = ["Baseline", "clear_baseline_cache", "measure_baseline", "measure_reference"]


@dataclass(frozen=True)
class Baseline:
    """One baseline measurement: its metrics, its test predictions (the agreement reference) and weight summary."""

    metrics: Metrics
    preds: torch.Tensor
    weights: dict[str, Any]


_BASELINE_CACHE: dict[tuple[str, str, int, tuple[str, ...]], Baseline] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_MAX = 8


def clear_baseline_cache() -> None:
    """Forget baseline measurements cached by this process."""
    with _CACHE_LOCK:
        _BASELINE_CACHE.clear()


def _fingerprint_module(module: nn.Module) -> str:
    h = hashlib.sha256()
    h.update(type(module).__qualname__.encode())
    for name, t in list(module.state_dict().items()):
        h.update(name.encode())
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().contiguous()
            h.update(str((t.dtype, tuple(t.shape))).encode())
            h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _fingerprint_data(data: Dataset) -> str:
    h = hashlib.sha256(f"{data.name}|{data.input_shape}|{data.num_classes}".encode())
    for t in (data.test.x, data.test.y):
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def measure_baseline(
    model: LoadedModel, data: Dataset, work_dir: Path, threads: int, progress: ProgressFn,
    runtimes: tuple[str, ...] = (),
) -> Baseline:
    from lwdash.measure import export_onnx, measure_model, save_pt2, selected_runtimes, weight_summary

    runtimes = selected_runtimes(runtimes)
    key = (_fingerprint_module(model.module), _fingerprint_data(data), threads, runtimes)
    with _CACHE_LOCK:
        cached = _BASELINE_CACHE.get(key)
    if cached is not None:
        progress(1.0, "baseline: reusing this process's measurement of the same model and data")
        return cached
    work_dir.mkdir(parents=True, exist_ok=True)
    if model.onnx_graph is not None:  # an ONNX upload is measured as the graph it is, not as a re-export
        from lwdash.measure.export import write_onnx

        progress(0.0, "baseline: writing the uploaded ONNX graph")
        onnx_path = write_onnx(model.onnx_graph, work_dir / "baseline.onnx", data.input_shape)
    else:
        progress(0.0, "baseline: exporting to ONNX")
        onnx_path = export_onnx(model.module, data.input_shape, work_dir / "baseline.onnx")
    progress(0.2, "baseline: saving the PyTorch program")
    pt2_path: Path | None = work_dir / "baseline.pt2"
    assert pt2_path is not None
    if not save_pt2(model.module, data.input_shape, pt2_path):
        pt2_path.unlink(missing_ok=True)
        pt2_path = None
    progress(0.35, "baseline: measuring accuracy, size and latency")
    metrics, preds = measure_model(model.module, Path(onnx_path), pt2_path, data, reference_preds=None, threads=threads,
                                   runtimes=runtimes)
    progress(0.9, "baseline: weight statistics")
    weights = weight_summary(model.module, bins=60)
    base = Baseline(metrics=metrics, preds=preds.detach().clone(), weights=weights)
    with _CACHE_LOCK:
        if len(_BASELINE_CACHE) >= _CACHE_MAX:
            _BASELINE_CACHE.pop(next(iter(_BASELINE_CACHE)))
        _BASELINE_CACHE[key] = base
    progress(1.0, "baseline measured")
    return base


def measure_reference(model: LoadedModel, data: Dataset, work_dir: Path, threads: int, progress: ProgressFn,
                      runtimes: tuple[str, ...] = ()) -> Metrics:
    """Measure ``model`` as it stands, exactly as :func:`execute` measures a job's baseline.

    Args:
        model: the model (not mutated).
        data: its evaluation data.
        work_dir: where the ONNX and ``.pt2`` exports are written while they are measured.
        threads: intra-op threads for every latency.
        progress: called with (fraction 0..1, message).
        runtimes: the runtime keys to time (``()``: ``LWDASH_RUNTIMES``, else the defaults).
    """
    return measure_baseline(model, data, work_dir, threads, progress, runtimes).metrics
