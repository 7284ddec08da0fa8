"""Run one compression job in this process: baseline, technique, compressed model, artifacts.

Both the CLI (inline) and the worker's job process call :func:`execute`. The baseline and the
compressed model are measured the same way, in the same process, at the same thread count, so
their ratios are honest. The baseline's measurement may be reused by later calls in the same
process (a CLI sweep) when the model weights, the data and the thread count are identical; it
is never shared between processes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lwdash.data import Dataset
from lwdash.jobs.spec import JobSpec
from lwdash.measure.catalogue import LARGE_BATCH, PRIMARY_RUNTIME, metrics_for
from lwdash.measure.metrics import Metrics, flatten
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

ProgressFn = Callable[[float, str], None]

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


@dataclass(frozen=True)
class _Baseline:
    metrics: Metrics
    preds: torch.Tensor
    weights: dict[str, Any]


_BASELINE_CACHE: dict[tuple[str, str, int, tuple[str, ...]], _Baseline] = {}
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


def job_label(technique: dict[str, Any]) -> str:
    """A short human label of a technique config: its key, its sweepable knobs (the ones a front is
    drawn along, always shown) and the other knobs that differ from the defaults.

    Example: ``"magnitude_pruning amount=0.7"`` (also at the default amount).
    """
    key = str(technique.get("type", "?"))
    data = dict(technique.get("data") or {})
    try:
        from lwdash.techniques import form_spec, get_technique

        cfg_type = get_technique(key).config_type
        defaults = {f.name: f.default for f in dataclasses.fields(cfg_type)}
        always = {s.name for s in form_spec(cfg_type) if s.sweepable}
    except Exception:
        defaults, always = {}, set()
    parts = []
    for k, v in data.items():
        d = defaults.get(k, dataclasses.MISSING)
        d = getattr(d, "value", d)
        if k not in always and d is not dataclasses.MISSING and (v == d or (isinstance(d, tuple) and v == list(d))):
            continue
        parts.append(f"{k}={_fmt_value(v)}")
    return " ".join([key, *parts])


def _fmt_value(v: Any) -> str:
    if isinstance(v, dict) and "technique" in v:  # a pipeline step: its key and non-default knobs
        from lwdash.techniques.pipeline import describe_step_dict

        return describe_step_dict(v)
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ",".join(_fmt_value(x) for x in v)
    return str(v)


def _stage(progress: ProgressFn, lo: float, hi: float) -> ProgressFn:
    """Map a sub-step's 0..1 progress onto [lo, hi] of the whole run."""

    def report(fraction: float, message: str) -> None:
        f = fraction if math.isfinite(fraction) else 0.0
        progress(lo + (hi - lo) * min(max(f, 0.0), 1.0), message)

    return report


def _monotonic(progress: ProgressFn) -> ProgressFn:
    """Never report less than already reported (a technique's sub-steps may restart their count)."""
    high = [0.0]

    def report(fraction: float, message: str) -> None:
        high[0] = max(high[0], fraction if math.isfinite(fraction) else 0.0)
        progress(min(high[0], 1.0), message)

    return report


def _measure_baseline(
    model: LoadedModel, data: Dataset, work_dir: Path, threads: int, progress: ProgressFn,
    runtimes: tuple[str, ...] = (),
) -> _Baseline:
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
    base = _Baseline(metrics=metrics, preds=preds.detach().clone(), weights=weights)
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
    return _measure_baseline(model, data, work_dir, threads, progress, runtimes).metrics


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
    progress = _monotonic(progress)
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
    ctx = RunContext(data=data, seed=spec.seed, threads=threads, progress=_stage(progress, 0.02, 0.55),
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
        base = _measure_baseline(model, data, work_dir, threads, _stage(progress, 0.62, 0.8), runtimes)
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
    result_path.write_text(json.dumps(result, indent=2, default=_json_default, allow_nan=True))
    card_md = out_dir / "model_card.md"
    card_md.write_text(render_model_card(result))
    card_json = out_dir / "model_card.json"
    card_json.write_text(json.dumps(_card_dict(result), indent=2, default=_json_default, allow_nan=True))

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


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


# ---------------------------------------------------------------------- model card

def _fmt(kind: str, v: Any) -> str:
    if v is None:
        return "-"
    if kind == "fraction":
        return f"{100 * float(v):.2f} %"
    if kind == "bytes":
        n = float(v)
        for unit in ("B", "KiB", "MiB", "GiB"):
            if n < 1024 or unit == "GiB":
                return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
            n /= 1024
    if kind == "count":
        return f"{int(v):,}"
    if kind == "ms":
        return f"{float(v):.3f} ms"
    return f"{float(v):.4f}"


def _ratio_text(kind: str, base: Any, comp: Any) -> str:
    try:
        b, c = float(base), float(comp)
    except (TypeError, ValueError):
        return "-"
    if kind == "fraction":
        return f"{100 * (c - b):+.2f} pts"
    if kind == "ms":
        if b <= 0 or c <= 0:
            return "-"
        speed = b / c
        if round(speed, 2) == 1.0:
            return "1.00x (no change)"
        return f"{speed:.2f}x faster" if speed > 1 else f"{1 / speed:.2f}x slower"
    if b == 0:
        return "-"
    return f"{c / b:.3f}x"


def _card_dict(result: dict[str, Any]) -> dict[str, Any]:
    from lwdash.analysis.latency_matrix import runtime_downloads

    b, c = result["baseline"], result["compressed"]
    fb, fc = flatten(b), flatten(c)
    ratios = {}
    for spec in metrics_for("card"):
        if spec.key in fb and spec.key in fc:
            ratios[spec.key] = _ratio_text(spec.kind, fb[spec.key], fc[spec.key])
    return {
        "label": result.get("label"),
        "technique": result["technique"],
        "model": result["model"],
        "data": result["data"],
        "baseline": b,
        "compressed": c,
        "vs_baseline": ratios,
        "how_to_run": {f"{name} ({title})": how for name, title, how in runtime_downloads(result.get("downloads") or ())},
        "notes": result["notes"],
        "environment": result["environment"],
        "seed": result.get("seed"),
        "threads": result.get("threads"),
    }


def render_model_card(result: dict[str, Any]) -> str:
    """A readable Markdown model card from a ``result.json`` dict: config, metrics vs baseline, notes, environment."""
    from lwdash.analysis.latency_matrix import matrix_caveats, matrix_markdown, runtime_downloads

    tech = result["technique"]
    model = result["model"]
    data = result["data"]
    b, c = result["baseline"], result["compressed"]
    lines = [
        f"# Model card: {result.get('label') or tech.get('type')}",
        "",
        f"Compressed from `{model['id']}` ({model.get('source_format')}"
        + (f", architecture `{model['arch']}`" if model.get("arch") else "")
        + f"), input `(B, {', '.join(str(d) for d in model['input_shape'])})`, {model['num_classes']} classes.",
        f"Evaluated on `{data['ref']}` ({data['name']}): {data['test_samples']} test samples"
        f" (train {data['train_samples']}, calibration {data['calib_samples']}).",
        "",
        "## Files",
        "",
        "- `model.onnx`: the compressed model for ONNX Runtime (one file, dynamic batch).",
        "- `model.pt2`: the PyTorch form (`torch.export.load(...).module()`), when it could be exported.",
        *[f"- `{name}`: {title}: {how}" for name, title, how in runtime_downloads(result.get("downloads") or ())],
        "- `result.json`: every measured figure, baseline and compressed.",
        "",
        "## Configuration",
        "",
        f"Technique `{tech.get('type')}` (family {result.get('family', '?')}), config version {tech.get('version')}:",
        "",
        "| knob | value |",
        "|---|---|",
    ]
    for k, v in (tech.get("data") or {}).items():
        lines.append(f"| {k} | `{_fmt_value(v)}` |")
    lines += [
        "",
        f"Seed {result.get('seed')}, {result.get('threads')} thread(s).",
        "",
        "## Metrics (measured, same process and threads for both)",
        "",
        "| metric | baseline | compressed | vs baseline |",
        "|---|---:|---:|---:|",
    ]
    fb, fc = flatten(b), flatten(c)  # either stored shape: latency records or the older flat fields
    for spec in metrics_for("card"):
        if spec.key not in fb or spec.key not in fc:
            continue
        bv, cv = fb[spec.key], fc[spec.key]
        lines.append(f"| {spec.card} | {_fmt(spec.kind, bv)} | {_fmt(spec.kind, cv)} | {_ratio_text(spec.kind, bv, cv)} |")
    try:
        mb, mc = Metrics.from_dict(b), Metrics.from_dict(c)
        lines += ["", "## Latency on every runtime (median / p90 ms, this result then its baseline)", "",
                  *matrix_markdown(mb, mc), "", *[f"- {line}" for line in matrix_caveats(mc)]]
    except TypeError:  # a partial record (not a measured result): no matrix
        pass
    notes = result.get("notes") or []
    lines += ["", "## Notes", ""]
    lines += [f"- {n}" for n in notes] if notes else ["- none"]
    steps = result.get("steps") or []
    if steps:
        lines += ["", "## Pipeline steps", ""]
        for i, s in enumerate(steps, 1):
            lines.append(f"{i}. " + ", ".join(f"{k}: {_fmt_value(v)}" for k, v in s.items()))
    lines += ["", "## Environment", ""]
    for k, v in (result.get("environment") or {}).items():
        lines.append(f"- {k}: {v}")
    lines.append("")
    return "\n".join(lines)
