"""How the Compare page's data and figures scale: 1,000 stored results.

Fills a temporary store, through the store's own API (``submit`` / ``claim`` / ``save_result`` /
``finish``, as the worker does), with synthetic-but-realistic results: five models, every
technique family, metrics drawn around each model's baseline the way those techniques move
them, and 4-layer weight summaries with 60-bin histograms (the size real ones have). Then it
times what one rerun of the Compare page computes: the results frame, the Pareto masks, every
Compare figure (accuracy vs size, accuracy vs latency, the 3-D view), their JSON serialization
(what Streamlit ships to the browser), one result's detail (record, histogram, per-layer table)
and the CSV / HTML report.

Run: ``python bench/compare_scale.py [--results 1000] [--repeat 5]``. Prints a table of median
timings; the numbers are this machine's, not a test.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lwdash.analysis.frame import load_results_frame  # noqa: E402
from lwdash.jobs.runner import RunOutput  # noqa: E402
from lwdash.jobs.spec import JobSpec  # noqa: E402
from lwdash.measure.metrics import LatencyRecord, Metrics  # noqa: E402
from lwdash.workspace import SqliteStore  # noqa: E402

MODELS = {  # model id -> (top-1, onnx bytes, params, macs, ort b32 ms)
    "sample/digits_cnn": (0.9944, 393_000, 94_186, 2_379_008, 1.22),
    "sample/digits_mlp": (0.9750, 72_000, 17_230, 17_152, 0.09),
    "sample/digits_mobilenet_v2": (0.9861, 640_000, 150_000, 3_100_000, 2.9),
    "sample/digits_teacher": (0.9889, 2_450_000, 602_000, 9_800_000, 4.1),
    "sample/digits_student": (0.9500, 14_000, 2_570, 2_432, 0.03),
}
TECHNIQUES = {  # key -> (family, knob, values)
    "magnitude_pruning": ("pruning", "amount", [0.3, 0.5, 0.7, 0.8, 0.9]),
    "nm_sparsity": ("pruning", "n", [1, 2]),
    "structured_pruning": ("structured_pruning", "ratio", [0.2, 0.3, 0.5, 0.7]),
    "int8_static": ("quantization", "calibration_samples", [32, 128, 512]),
    "int8_dynamic": ("quantization", "per_channel", [True, False]),
    "fp16": ("quantization", "keep_io_types", [True]),
    "low_rank": ("low_rank", "energy", [0.8, 0.9, 0.95, 0.99]),
    "distillation": ("distillation", "temperature", [2.0, 4.0, 8.0]),
}


def _summary(rng: np.random.Generator, zeros_frac: float, levels: int | None) -> dict[str, Any]:
    layers = []
    for i, (shape, std) in enumerate([((32, 1, 3, 3), 0.3), ((64, 32, 3, 3), 0.06), ((128, 64, 3, 3), 0.04),
                                      ((10, 128), 0.1)]):
        n = int(np.prod(shape))
        w = rng.normal(0, std, size=min(n, 20_000))
        if levels:
            scale = np.abs(w).max() / (levels // 2)
            w = np.round(w / scale) * scale
        zeros = int(n * zeros_frac)
        counts, edges = np.histogram(w[w != 0], bins=60, range=(-4 * std, 4 * std))
        counts = (counts * (n - zeros) / max(1, counts.sum())).astype(int)
        uniq = sorted({float(v) for v in np.unique(w) if v != 0}) if levels else None
        layers.append({
            "name": f"features.{i}.0.weight" if i < 3 else "classifier.weight", "kind": "conv" if i < 3 else "linear",
            "shape": list(shape), "numel": n, "zeros": zeros, "min": float(w.min()), "max": float(w.max()),
            "mean": float(w.mean()), "std": float(w.std()), "unique_count": len(uniq) if uniq else None,
            "levels": uniq, "dtype": "int8" if levels else "float32",
            "hist": {"edges": edges.tolist(), "counts": counts.tolist(), "below_range": 0, "above_range": 0,
                     "non_finite": 0},
        })
    total = {"name": "total", "numel": sum(x["numel"] for x in layers), "zeros": sum(x["zeros"] for x in layers)}
    return {"layers": layers, "total": total}


def _metrics(rng: np.random.Generator, base: tuple[float, ...], family: str, level: float) -> Metrics:
    acc, size, params, macs, ms = base
    size_r, macs_r, ms_r, drop, nz = 1.0, 1.0, 1.0, 0.0, 1.0
    if family == "pruning":
        nz, drop, ms_r = 1 - level, max(0.0, (level - 0.5)) * 0.3 * rng.random(), rng.normal(1.0, 0.05)
    elif family == "structured_pruning":
        size_r = macs_r = (1 - level) ** 2
        ms_r, drop = size_r ** 0.7, level ** 2 * 0.1 * rng.random()
    elif family == "quantization":
        size_r, ms_r, drop = rng.uniform(0.26, 0.55), rng.uniform(0.35, 1.4), abs(rng.normal(0, 0.004))
    elif family == "low_rank":
        size_r = macs_r = level * 0.8
        ms_r, drop = size_r ** 0.5, (1 - level) * 0.2 * rng.random()
    else:
        size_r = macs_r = rng.uniform(0.05, 0.3)
        ms_r, drop = size_r ** 0.6, rng.uniform(0.0, 0.05)
    top1 = max(0.05, acc - drop)

    def lat(v: float) -> tuple[float, float]:
        m = v * rng.lognormal(0, 0.05)
        return m, m * 1.08

    t1, t32, o1, o32 = lat(ms * 0.2 * ms_r), lat(ms * 1.4 * ms_r), lat(ms * 0.05 * ms_r), lat(ms * ms_r)
    return Metrics(
        top1_acc=top1, torch_top1_acc=top1, loss=0.03 + drop * 3, agreement=1 - drop, onnx_bytes=int(size * size_r),
        pt2_bytes=int(size * size_r * 1.08), params_count=int(params * min(1.0, macs_r ** 0.5 if macs_r < 1 else 1)),
        nonzero_params_count=int(params * nz * min(1.0, size_r)), sparse_bytes=int(size * nz * 1.5),
        compressed_bytes=int(size * size_r * (0.9 if nz == 1 else nz + 0.1)), macs=int(macs * macs_r),
        threads=1, test_samples=360,
        latency=(LatencyRecord("ort", 1, *o1), LatencyRecord("ort", 32, *o32), LatencyRecord("torch", 1, *t1),
                 LatencyRecord("torch", 32, *t32)),
    )


def fill(store: SqliteStore, n: int, seed: int = 0) -> None:
    """Store ``n`` synthetic results the way the worker does (submit, claim, save_result, finish)."""
    rng = np.random.default_rng(seed)
    base_weights = _summary(rng, 0.0, None)
    env = {"cpu": "bench", "threads": 1, "torch": "synthetic"}
    models, techs = list(MODELS), list(TECHNIQUES)
    for i in range(n):
        model_id = models[i % len(models)]
        key = techs[(i // len(models)) % len(techs)]
        family, knob, values = TECHNIQUES[key]
        value = values[i % len(values)]
        level = float(value) if isinstance(value, float) and value < 1 else 0.5
        spec = JobSpec(model_id=model_id, data_ref="digits", technique={"type": key, "version": 1,
                       "data": {knob: value, "seed_hint": i}}, seed=i)
        job_id = store.submit(spec)
        store.claim("bench")
        out = store.tmp_dir / f"bench-{job_id}"
        out.mkdir()
        (out / "result.json").write_text("{}")
        baseline = _metrics(np.random.default_rng(hash(model_id) % 2**32), MODELS[model_id], "none", 1.0)
        baseline = dataclasses.replace(baseline, **dict(zip(
            ["top1_acc", "torch_top1_acc", "onnx_bytes", "params_count", "nonzero_params_count", "macs"],
            [MODELS[model_id][0], MODELS[model_id][0], MODELS[model_id][1], MODELS[model_id][2],
             MODELS[model_id][2], MODELS[model_id][3]], strict=True)))
        comp_weights = _summary(rng, 1 - (1 - level) if family == "pruning" else 0.0,
                                15 if family == "quantization" else None)
        comp_weights["per_layer"] = [{"name": x["name"], "macs": 1000, "compressed_macs": 800, "mse": 1e-4,
                                      "sqnr_db": 20.0, "max_abs_error": 0.01, "note": ""}
                                     for x in comp_weights["layers"]]
        output = RunOutput(
            baseline=baseline, compressed=_metrics(rng, MODELS[model_id], family, level),
            baseline_weights=base_weights, compressed_weights=comp_weights,
            notes=("synthetic bench result",), steps=(), environment=env,
            artifacts={"result.json": out / "result.json"},
        )
        store.finish(job_id, store.save_result(job_id, spec, output, out))


def _time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, value = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--no-report", action="store_true", help="skip the HTML report timing (it embeds plotly.js)")
    args = p.parse_args(argv)

    from lwdash.analysis.layers import layer_frame
    from lwdash.figures import (
        histogram_info,
        plot_tradeoff,
        plot_tradeoff_3d,
        plot_weight_histogram,
        tradeoff3d_info,
        tradeoff_info,
    )
    from lwdash.figures.layers import layer_share_info, plot_layer_bars
    from lwdash.pareto import pareto_mask

    with tempfile.TemporaryDirectory(prefix="lwdash-bench-") as tmp:
        store = SqliteStore(tmp)
        t0 = time.perf_counter()
        fill(store, args.results)
        fill_s = time.perf_counter() - t0
        rows: list[tuple[str, float]] = []

        t_frame, frame = _time(lambda: load_results_frame(store), args.repeat)
        rows.append((f"results_frame() ({len(frame)} rows x {frame.shape[1]} cols)", t_frame))
        pts = frame[["top1_acc", "onnx_bytes", "ort_b32_median_ms"]].to_numpy(dtype=float)
        rows.append(("pareto_mask 2-D (accuracy, size)", _time(lambda: pareto_mask(pts[:, :2], ["max", "min"]),
                                                               args.repeat)[0]))
        rows.append(("pareto_mask 3-D (accuracy, size, latency)",
                     _time(lambda: pareto_mask(pts, ["max", "min", "min"]), args.repeat)[0]))

        def figures() -> list[Any]:
            size = plot_tradeoff(tradeoff_info(frame, "onnx_bytes"), title="Accuracy vs size")
            lat = plot_tradeoff(tradeoff_info(frame, "ort_b32_median_ms"), title="Accuracy vs latency")
            cube = plot_tradeoff_3d(tradeoff3d_info(frame))
            return [size, lat, cube]

        t_info, _ = _time(lambda: (tradeoff_info(frame, "onnx_bytes"), tradeoff_info(frame, "ort_b32_median_ms"),
                                   tradeoff3d_info(frame)), args.repeat)
        rows.append(("extractors: 2 fronts + 3-D (info records)", t_info))
        t_figs, figs = _time(figures, args.repeat)
        rows.append(("extract + build all 3 Compare figures", t_figs))
        t_json, _ = _time(lambda: [f.to_json() for f in figs], args.repeat)
        rows.append(("serialize the 3 figures to JSON (sent to the browser)", t_json))
        t_ratio, _ = _time(lambda: plot_tradeoff(tradeoff_info(frame, "onnx_bytes", ratio_to_baseline=True)),
                           args.repeat)
        rows.append(("ratio-to-baseline size chart", t_ratio))

        rid = str(frame["id"].iloc[0])

        def detail() -> Any:
            rec = store.get_result(rid)
            h = plot_weight_histogram(histogram_info(rec.baseline_weights, rec.compressed_weights, None))
            lf = layer_frame(rec.baseline_weights, rec.compressed_weights)
            return h, plot_layer_bars(layer_share_info(lf))

        rows.append(("one result's detail (record, histogram, per-layer chart)", _time(detail, args.repeat)[0]))
        rows.append(("results as CSV", _time(lambda: frame.to_csv(index=False), args.repeat)[0]))
        if not args.no_report:
            from lwdash.report import build_report_html

            t_html, html = _time(lambda: build_report_html(store, frame), 1)
            rows.append((f"HTML report ({len(html) / 2**20:.1f} MiB, plotly.js embedded)", t_html))
        page = t_frame + t_figs + t_json
        rows.append(("=> one Compare rerun without caches (frame + figures + JSON)", page))

        print(f"lwdash Compare page at scale: {args.results} results "
              f"(filled in {fill_s:.1f} s), median of {args.repeat} runs")
        width = max(len(r[0]) for r in rows)
        for name, secs in rows:
            print(f"  {name:<{width}}  {secs * 1000:9.1f} ms")
        print(json.dumps({name: round(secs * 1000, 2) for name, secs in rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
