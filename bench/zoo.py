"""Coverage and speed of every torchvision classification architecture, in every input format, per technique family.

Run from the repository root (it takes hours for the whole zoo on 2 cores; ``--archs`` narrows it):

    python bench/zoo.py                       # every architecture, writes docs/zoo.md and docs/zoo.json
    python bench/zoo.py --archs resnet18,mobilenet_v2 --out /tmp/zoo.md

For each architecture (random weights, 10 classes, 3x32x32 input or the smallest size it accepts)
the model is written as a state dict (``.pt``), an ONNX file and a ``torch.export`` program
(``.pt2``), each is loaded by lwdash's own loader, and one technique of every family is applied
through the registry, exactly as a job applies it, then exported the way a job exports it. Per
architecture, format and technique the outcome is ``ok`` / ``refused`` (lwdash said why, in one
line) / ``failed`` (an unexpected error: a bug) / ``timeout``, and for ``ok`` the measured MAC
ratio (baseline / compressed, from the ONNX graphs) and the ONNX Runtime batch-32 speed-up,
baseline and compressed timed interleaved in one process at one thread.

Random weights measure coverage and speed, not accuracy. Each architecture runs in its own child
process with a time limit, so one crash or hang costs that architecture only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FORMATS = ("state_dict", "onnx", "pt2")
#: One technique per family, at knobs that cost no training beyond a token epoch (coverage, not accuracy).
TECHNIQUES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("structured_pruning", "structured_pruning", {"ratio": 0.5, "fine_tune_epochs": 0}),
    ("pruning", "magnitude_pruning", {"amount": 0.5}),
    ("quantization", "int8_static", {}),
    ("quantization", "fp16", {}),
    ("low_rank", "low_rank", {"fine_tune_epochs": 0}),
    ("distillation", "distillation", {"epochs": 1}),
)
#: Architectures that need a larger input than 32x32 (their smallest working size).
MIN_INPUT = {"inception_v3": 75, "googlenet": 32, "vit_b_16": 224, "vit_b_32": 224, "vit_l_16": 224,
             "vit_l_32": 224, "vit_h_14": 224, "swin_t": 32, "swin_s": 32, "swin_b": 32, "swin_v2_t": 32,
             "swin_v2_s": 32, "swin_v2_b": 32, "maxvit_t": 224}
EVAL_SAMPLES = 64
ARCH_TIMEOUT_S = 1800


def _architectures() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


# ------------------------------------------------------------------------------ one architecture (child)


def _write_formats(name: str, side: int, folder: Path) -> dict[str, Path]:
    import torch
    import torchvision

    from lwdash.measure import export_onnx, save_pt2

    model = torchvision.models.get_model(name, weights=None, num_classes=10).eval()
    shape = (3, side, side)
    paths = {"state_dict": folder / f"{name}.pt", "onnx": folder / f"{name}.onnx", "pt2": folder / f"{name}.pt2"}
    torch.save(model.state_dict(), paths["state_dict"])
    export_onnx(model, shape, paths["onnx"])
    if not save_pt2(model, shape, paths["pt2"]):
        paths.pop("pt2")
    return paths


def _data(side: int) -> Any:
    import numpy as np

    from lwdash.data.npz import dataset_from_arrays

    rng = np.random.default_rng(0)
    x = rng.random((EVAL_SAMPLES * 5 // 2, 3, side, side), dtype=np.float32)
    y = (np.arange(len(x)) % 10).astype(np.int64)
    return dataset_from_arrays(x, y, name="random", shown="random", num_classes=10)


def _reason(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def _ort_b32_ms(paths: list[Path], x: Any, rounds: int = 5) -> list[float]:
    """Median ORT batch-32 latency of each ONNX file, timed interleaved (round-robin) at one thread."""
    import numpy as np

    from lwdash.measure.accuracy import make_session
    from lwdash.measure.latency import TimingPolicy, measure_ort_latency

    sessions = [make_session(p, 1) for p in paths]
    policy = TimingPolicy(warmup_runs=2, min_runs=5, min_time_s=0.1, max_runs=30, max_time_s=0.5, floor_runs=5)
    samples: list[list[float]] = [[] for _ in paths]
    for _ in range(rounds):
        for i, s in enumerate(sessions):
            samples[i].append(measure_ort_latency(s, x, threads=1, policy=policy).median_ms)
    return [float(np.median(v)) for v in samples]


def run_one(name: str) -> list[dict[str, Any]]:
    """Every format x technique of one architecture; one row each."""
    import torch

    from lwdash.measure import export_onnx, write_onnx
    from lwdash.measure.macs import count_macs
    from lwdash.models import load_model_file
    from lwdash.techniques import RunContext, config_from_dict, get_technique

    torch.set_num_threads(1)
    side = MIN_INPUT.get(name, 32)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix=f"zoo-{name}-") as tmp:
        folder = Path(tmp)
        try:
            paths = _write_formats(name, side, folder)
        except Exception as exc:  # the architecture itself does not export: every row says so
            return [{"arch": name, "format": f, "technique": t, "outcome": "failed",
                     "reason": f"writing the input files: {_reason(exc)}"} for f in FORMATS for _, t, _ in TECHNIQUES]
        data = _data(side)
        xb = data.test.x[:32].repeat((32 + len(data.test) - 1) // len(data.test), 1, 1, 1)[:32].contiguous()
        for fmt in FORMATS:
            base_row = {"arch": name, "format": fmt, "input": f"3x{side}x{side}"}
            if fmt not in paths:
                rows += [{**base_row, "technique": t, "outcome": "refused",
                          "reason": "torch.export could not export this architecture, so there is no .pt2 to upload"}
                         for _, t, _ in TECHNIQUES]
                continue
            t0 = time.perf_counter()
            try:
                loaded = load_model_file(paths[fmt], arch=name if fmt == "state_dict" else None)
            except ValueError as exc:
                rows += [{**base_row, "technique": t, "outcome": "refused", "reason": f"load: {_reason(exc)}"}
                         for _, t, _ in TECHNIQUES]
                continue
            except Exception as exc:
                rows += [{**base_row, "technique": t, "outcome": "failed", "reason": f"load: {_reason(exc)}"}
                         for _, t, _ in TECHNIQUES]
                continue
            base_onnx = folder / f"{fmt}-base.onnx"
            export_onnx(loaded.module, data.input_shape, base_onnx)
            load_s = time.perf_counter() - t0
            for family, key, knobs in TECHNIQUES:
                row: dict[str, Any] = {**base_row, "technique": key, "family": family, "load_s": round(load_s, 1)}
                out = folder / f"{fmt}-{key}.onnx"
                t1 = time.perf_counter()
                try:
                    _, cfg = config_from_dict({"type": key, "data": knobs})
                    cfg.validate_for(loaded.module, tuple(data.input_shape))
                    ctx = RunContext(data=data, seed=0, threads=1)
                    result = get_technique(key).apply(loaded.module, cfg, ctx)
                    if result.onnx_model is not None:
                        write_onnx(result.onnx_model, out, tuple(data.input_shape))
                    else:
                        export_onnx(result.module.eval(), data.input_shape, out)
                    base_ms, comp_ms = _ort_b32_ms([base_onnx, out], xb)
                    base_macs, comp_macs = count_macs(base_onnx), count_macs(out)
                    row.update(outcome="ok", macs_ratio=round(base_macs / max(comp_macs, 1), 3),
                               ort_b32_speedup=round(base_ms / comp_ms, 3), base_b32_ms=round(base_ms, 2),
                               b32_ms=round(comp_ms, 2))
                except ValueError as exc:  # lwdash's refusals (ModelLoadError, DataError, config checks)
                    row.update(outcome="refused", reason=_reason(exc))
                except Exception as exc:
                    row.update(outcome="failed", reason=_reason(exc),
                               where=traceback.extract_tb(exc.__traceback__)[-1].filename.split("site-packages/")[-1])
                row["wall_s"] = round(time.perf_counter() - t1, 1)
                rows.append(row)
                out.unlink(missing_ok=True)
    return rows


# ------------------------------------------------------------------------------ the whole zoo (parent)


def _child(name: str, timeout_s: float) -> list[dict[str, Any]]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", name]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return [{"arch": name, "format": f, "technique": t, "outcome": "timeout",
                 "reason": f"over {timeout_s:.0f} s for the architecture"} for f in FORMATS for _, t, _ in TECHNIQUES]
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("ZOO-ROWS "):
            rows: list[dict[str, Any]] = json.loads(line.removeprefix("ZOO-ROWS "))
            return rows
    tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-1:])[:300]
    return [{"arch": name, "format": f, "technique": t, "outcome": "failed",
             "reason": f"the child exited {proc.returncode}: {tail}"} for f in FORMATS for _, t, _ in TECHNIQUES]


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "-"
    if row["outcome"] == "ok":
        return f"ok {row['macs_ratio']:.2f}x / {row['ort_b32_speedup']:.2f}x"
    return row["outcome"]


def render(rows: list[dict[str, Any]], archs: list[str], wall_s: float) -> str:
    """docs/zoo.md: counts, then one table per format (cell: outcome, MAC ratio / ORT b32 speed-up), then reasons."""
    import platform

    techs = [t for _, t, _ in TECHNIQUES]
    lines = [
        "# The torchvision zoo through lwdash",
        "",
        f"Generated by `python bench/zoo.py` on {time.strftime('%Y-%m-%d')} ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, one thread per measurement), {len(archs)} architectures, {wall_s / 60:.0f} min. "
        "Random weights, 10 classes, 3x32x32 input (larger where an architecture needs it); each cell is the "
        "outcome and, for `ok`, the MAC ratio (baseline / compressed, counted on the ONNX graphs) / the ONNX "
        "Runtime batch-32 speed-up (baseline and compressed timed interleaved). Knobs: "
        + "; ".join(f"`{t}` {json.dumps(k) if k else 'defaults'}" for _, t, k in TECHNIQUES) + ".",
        "",
        "| format | " + " | ".join(["ok", "refused", "failed", "timeout"]) + " | architectures with every technique ok |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for fmt in FORMATS:
        mine = [r for r in rows if r["format"] == fmt]
        counts = {o: sum(r["outcome"] == o for r in mine) for o in ("ok", "refused", "failed", "timeout")}
        full = sum(all(r["outcome"] == "ok" for r in mine if r["arch"] == a) for a in archs)
        lines.append(f"| {fmt} | " + " | ".join(str(counts[o]) for o in counts) + f" | {full} of {len(archs)} |")
    for fmt in FORMATS:
        lines += ["", f"## {fmt}", "", "| architecture | " + " | ".join(techs) + " |", "|---|" + "---|" * len(techs)]
        index = {(r["arch"], r["technique"]): r for r in rows if r["format"] == fmt}
        for a in archs:
            lines.append(f"| {a} | " + " | ".join(_cell(index.get((a, t))) for t in techs) + " |")
    problems = [r for r in rows if r["outcome"] != "ok"]
    if problems:
        lines += ["", "## Why not ok", "", "| architecture | format | technique | outcome | reason |", "|---|---|---|---|---|"]
        for r in problems:
            reason = str(r.get("reason", "")).replace("|", "\\|")
            lines.append(f"| {r['arch']} | {r['format']} | {r['technique']} | {r['outcome']} | {reason} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", default="", help="comma-separated architectures (default: every one)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "zoo.md", help="markdown output (a .json beside it)")
    p.add_argument("--timeout", type=float, default=ARCH_TIMEOUT_S, help="seconds per architecture")
    p.add_argument("--one", default="", help=argparse.SUPPRESS)  # the child's entry
    args = p.parse_args(argv)
    if args.one:
        print("ZOO-ROWS " + json.dumps(run_one(args.one)), flush=True)
        return 0
    archs = [a for a in args.archs.split(",") if a] or _architectures()
    json_path = args.out.with_suffix(".json")
    done: list[dict[str, Any]] = json.loads(json_path.read_text()) if json_path.is_file() else []
    done = [r for r in done if r["arch"] in archs]
    t0 = time.perf_counter()
    for i, name in enumerate(archs):
        if any(r["arch"] == name for r in done):
            continue  # resumable: an interrupted run picks up where it stopped
        t1 = time.perf_counter()
        rows = _child(name, args.timeout)
        done = [r for r in done if r["arch"] != name] + rows
        json_path.write_text(json.dumps(done, indent=1))
        ok = sum(r["outcome"] == "ok" for r in rows)
        print(f"[{i + 1}/{len(archs)}] {name}: {ok}/{len(rows)} ok in {time.perf_counter() - t1:.0f} s", flush=True)
    args.out.write_text(render(done, archs, time.perf_counter() - t0))
    print(f"wrote {args.out} and {json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
