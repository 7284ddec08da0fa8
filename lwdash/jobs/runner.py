"""Run one compression job in this process: baseline, technique, compressed model, artifacts.

Both the CLI (inline) and the worker's job process call :func:`execute`. The baseline and the
compressed model are measured the same way, in the same process, at the same thread count, so
their ratios are honest. The baseline's measurement may be reused by later calls in the same
process (a CLI sweep) when the model weights, the data and the thread count are identical; it
is never shared between processes.

This module holds :func:`execute`, its :class:`RunOutput` and the measured notes; the baseline and
its cache are in :mod:`lwdash.jobs.run_baseline`, progress wrappers in :mod:`lwdash.jobs.run_progress`,
labels in :mod:`lwdash.jobs.job_labels` and the model card in :mod:`lwdash.jobs.model_card` (their
public names are re-exported here).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lwdash.data import Dataset
from lwdash.jobs.job_labels import job_label
from lwdash.jobs.model_card import card_dict, json_default, render_model_card
from lwdash.jobs.run_baseline import clear_baseline_cache, measure_baseline, measure_reference
from lwdash.jobs.run_progress import ProgressFn, monotonic, stage
from lwdash.jobs.spec import JobSpec
from lwdash.measure.catalogue import LARGE_BATCH, PRIMARY_RUNTIME
from lwdash.measure.metrics import Metrics
from lwdash.models.base import LoadedModel
from lwdash.runtimes import get_runtime

__all__ = [
    "ProgressFn",
    "RunOutput",
    "clear_baseline_cache",
    "execute",
    "job_label",
    "measure_reference",
    "render_model_card",
]

#: A batch-32 speed-up below 1 + this is reported as "no real speed-up" (timings swing ~10 % here).
_SPEEDUP_FRACTION = 0.10
#: A slow-down beyond this fraction (and beyond the baseline's p90) is reported as "slower".
_SLOWER_FRACTION = 0.20


@dataclass(frozen=True)
class RunOutput:
    """What one run produced (all measured, nothing estimated).

    Attributes:
        baseline: metrics of the original model.
        compressed: metrics of the compressed model (``agreement`` is against the baseline's predictions).
        baseline_weights / compressed_weights: :func:`lwdash.measure.weight_summary` of each; the
            compressed one uses the baseline's per-layer ranges so histograms line up.
        notes: the technique's honest flags plus the runner's measured ones.
        steps: per-step records of pipelines.
        environment: cpu, threads and library versions the numbers were taken with.
        artifacts: artifact name (``model.onnx``, ``model.pt2``, ``result.json``, ``model_card.md``,
            ``model_card.json``) -> path inside the run's output directory.
    """

    baseline: Metrics
    compressed: Metrics
    baseline_weights: dict[str, Any]
    compressed_weights: dict[str, Any]
    notes: tuple[str, ...]
    steps: tuple[dict[str, Any], ...]
    environment: dict[str, Any]
    artifacts: dict[str, Path]


def _measured_notes(baseline: Metrics, compressed: Metrics) -> list[str]:
    """Flags computed from the measurements, where a claimed gain is not real (latency: the primary runtime)."""
    notes: list[str] = []
    where = f"in {get_runtime(PRIMARY_RUNTIME).title} at batch {LARGE_BATCH}"
    base_ms = baseline.latency_ms(PRIMARY_RUNTIME, LARGE_BATCH)
    comp_ms = compressed.latency_ms(PRIMARY_RUNTIME, LARGE_BATCH)
    if base_ms > 0 and comp_ms > 0:  # False for NaN (not timed)
        speedup = base_ms / comp_ms
        # "Slower" needs a clear margin: the compressed median beyond the baseline's p90 as well.
        if speedup < 1.0 - _SLOWER_FRACTION and comp_ms > baseline.latency_ms(PRIMARY_RUNTIME, LARGE_BATCH, "p90"):
            notes.append(f"measured: slower than the baseline {where} ({1 / speedup:.2f}x the time)")
        elif speedup < 1.0 + _SPEEDUP_FRACTION:
            notes.append(f"measured: no real speed-up {where} ({speedup:.2f}x, within noise)")
    if baseline.onnx_bytes > 0 and compressed.onnx_bytes > baseline.onnx_bytes:
        notes.append(
            f"measured: the ONNX file is larger than the baseline's ({compressed.onnx_bytes / baseline.onnx_bytes:.2f}x)"
        )
    return notes


def execute(spec: JobSpec, model: LoadedModel, data: Dataset, out_dir: Path, progress: ProgressFn) -> RunOutput:
    """Compress ``model`` as ``spec`` says, measure it against its baseline and write the artifacts.

    Writes ``out_dir/model.onnx``, ``out_dir/model.pt2`` (absent when the compressed module
    cannot be exported with ``torch.export``), each measured runtime's own artifact (OpenVINO IR
    ``model.xml`` + ``model.bin``, TVM's ``model_tvm.so``: :func:`lwdash.measure.export_runtime_artifacts`),
    ``out_dir/result.json``, ``out_dir/model_card.md`` and ``out_dir/model_card.json``.

    Args:
        spec: the job (technique config in its dict form, seed, threads).
        model: the model to compress (not mutated).
        data: its evaluation data.
        out_dir: where the artifacts go (created).
        progress: called with (fraction 0..1, message).

    Returns:
        The measured :class:`RunOutput`.

    Raises:
        ValueError: the technique config is invalid or does not fit the model.
        DataError: the data does not fit the model.
    """
    from lwdash.data import check_model_fits
    from lwdash.measure import (
        environment,
        export_onnx,
        export_runtime_artifacts,
        measure_model,
        save_pt2,
        selected_runtimes,
        weight_summary,
        write_onnx,
    )
    from lwdash.measure.weights import summary_ranges
    from lwdash.techniques import RunContext, config_from_dict, get_technique

    t0 = time.perf_counter()
    progress = monotonic(progress)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    threads = max(1, int(spec.threads))
    runtimes = selected_runtimes(spec.runtimes)  # one set for the baseline and the result

    progress(0.0, "checking the config, the model and the data")
    key, cfg = config_from_dict(spec.technique)
    technique = get_technique(key)
    check_model_fits(model, data)
    cfg.validate_for(model.module, tuple(data.input_shape))

    # The technique runs first, so a config that fails costs no measurement; the baseline and the
    # compressed model are then measured back to back, under the same machine conditions.
    progress(0.02, f"applying {key}")
    torch.manual_seed(spec.seed)
    ctx = RunContext(data=data, seed=spec.seed, threads=threads, progress=stage(progress, 0.02, 0.55),
                     source_onnx=model.onnx_graph, teacher=model.module)
    compressed = technique.apply(model.module, cfg, ctx)
    module = compressed.module
    module.eval()

    progress(0.55, "exporting the compressed model")
    onnx_path = out_dir / "model.onnx"
    if compressed.onnx_model is not None:  # built by the technique itself (e.g. ONNX Runtime quantization)
        write_onnx(compressed.onnx_model, onnx_path, tuple(data.input_shape))
    else:
        export_onnx(module, data.input_shape, onnx_path)
    pt2_path: Path | None = out_dir / "model.pt2"
    assert pt2_path is not None
    if not save_pt2(module, data.input_shape, pt2_path):
        pt2_path.unlink(missing_ok=True)
        pt2_path = None

    work_dir = out_dir / "_baseline"
    try:
        base = measure_baseline(model, data, work_dir, threads, stage(progress, 0.62, 0.8), runtimes)
    finally:
        if work_dir.exists():
            for p in work_dir.iterdir():
                p.unlink(missing_ok=True)
            work_dir.rmdir()

    progress(0.8, "measuring the compressed model")
    metrics, _ = measure_model(module, onnx_path, pt2_path, data, reference_preds=base.preds, threads=threads,
                               runtimes=runtimes)
    progress(0.9, "writing each runtime's artifact")
    runtime_files, export_notes = export_runtime_artifacts({"onnx": onnx_path, "pt2": pt2_path}, out_dir,
                                                           runtimes=runtimes)
    progress(0.92, "weight statistics")
    # The baseline's histogram ranges, so both models' histograms share bin edges (overlays line up).
    compressed_weights = weight_summary(module, bins=60, ranges=summary_ranges(base.weights) or None)
    from lwdash.analysis.layers import layer_report

    per_layer = layer_report(model.module, module, tuple(data.input_shape))  # MACs and weight error per layer
    compressed_weights["per_layer"] = per_layer
    env = environment(threads)

    notes = tuple(compressed.notes) + tuple(n for n in _measured_notes(base.metrics, metrics) if n not in compressed.notes)
    if pt2_path is None:
        notes += ("the compressed model could not be exported with torch.export: no model.pt2 (ONNX only)",)
    notes += tuple(f"no {get_runtime(k).title} artifact to download: {why}" for k, why in export_notes.items())
    steps = tuple(dict(s) for s in compressed.steps)

    progress(0.96, "writing the result and the model card")
    result = {
        "baseline": base.metrics.to_dict(),
        "compressed": metrics.to_dict(),
        "technique": spec.technique,
        "label": spec.label or job_label(spec.technique),
        "family": technique.family,
        "notes": list(notes),
        "steps": list(steps),
        "layers": per_layer,
        "environment": env,
        "model": {
            "id": spec.model_id,
            "source_format": model.source_format,
            "arch": model.arch,
            "input_shape": list(model.input_shape),
            "num_classes": model.num_classes,
        },
        "data": {
            "ref": spec.data_ref,
            "name": data.name,
            "input_shape": list(data.input_shape),
            "num_classes": data.num_classes,
            "train_samples": len(data.train),
            "calib_samples": len(data.calib),
            "test_samples": len(data.test),
        },
        "seed": spec.seed,
        "threads": threads,
        "runtimes": list(runtimes),
        "downloads": sorted(["model.onnx", *(["model.pt2"] if pt2_path is not None else []), *runtime_files]),
        "wall_s": round(time.perf_counter() - t0, 3),
    }
    result_path = out_dir / "result.json"
    result_path.write_text(json.dumps(result, indent=2, default=json_default, allow_nan=True))
    card_md = out_dir / "model_card.md"
    card_md.write_text(render_model_card(result))
    card_json = out_dir / "model_card.json"
    card_json.write_text(json.dumps(card_dict(result), indent=2, default=json_default, allow_nan=True))

    artifacts = {"model.onnx": onnx_path}
    if pt2_path is not None:
        artifacts["model.pt2"] = pt2_path
    artifacts.update(runtime_files)
    artifacts.update({"result.json": result_path, "model_card.md": card_md, "model_card.json": card_json})
    progress(1.0, "done")
    return RunOutput(
        baseline=base.metrics,
        compressed=metrics,
        baseline_weights=base.weights,
        compressed_weights=compressed_weights,
        notes=notes,
        steps=steps,
        environment=env,
        artifacts=artifacts,
    )




