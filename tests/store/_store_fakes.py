"""Jobs and run outputs the store tests save: real records, no model run."""
from __future__ import annotations

from pathlib import Path

from lwdash.jobs.runner import RunOutput
from lwdash.jobs.spec import JobSpec
from lwdash.measure.catalogue import catalogue
from lwdash.measure.metrics import Metrics


def spec(i: int = 0) -> JobSpec:
    return JobSpec(
        model_id="sample/digits_mlp",
        data_ref="digits",
        technique={"type": "magnitude_pruning", "version": 1, "data": {"amount": 0.1 * (i % 9)}},
        seed=i,
        label=f"job {i}",
    )


def metrics(**over: float) -> Metrics:
    base = {s.key: 1 for s in catalogue()}  # every metric under its flat key
    base.update(top1_acc=0.9, torch_top1_acc=0.9, loss=0.3, agreement=1.0, onnx_bytes=1000, macs=5000,
                ort_b32_median_ms=2.0, threads=1, test_samples=360)
    base.update(over)
    return Metrics.from_dict(base)


def fake_output(out_dir: Path) -> RunOutput:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model.onnx").write_bytes(b"onnx-bytes")
    (out_dir / "result.json").write_text("{}")
    return RunOutput(
        baseline=metrics(),
        compressed=metrics(top1_acc=0.88, onnx_bytes=400, ort_b32_median_ms=1.0),
        baseline_weights={"layers": [{"name": "fc1", "min": -1.0, "max": 1.0}]},
        compressed_weights={"layers": [{"name": "fc1", "min": -0.5, "max": 0.5}]},
        notes=("zeros do not speed up dense kernels",),
        steps=({"step": "prune", "sparsity": 0.5},),
        environment={"threads": 1},
        artifacts={"model.onnx": out_dir / "model.onnx", "result.json": out_dir / "result.json"},
    )
