"""What the commands print: the progress line, plain-text tables, the baseline-vs-compressed comparison, JSON files."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lwdash.jobs.spec import JobSpec


def progress_line(args: argparse.Namespace, prefix: str = "") -> Any:
    def progress(fraction: float, message: str) -> None:
        if not args.quiet:
            print(f"\r{prefix}{100 * fraction:5.1f} % {message[:70]:<70}", end="", file=sys.stderr, flush=True)

    return progress


def end_progress(args: argparse.Namespace) -> None:
    if not args.quiet:
        print(file=sys.stderr)


def write_json(path: str | None, payload: dict[str, Any]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2, allow_nan=True))
        print(f"wrote {path}")


def label_for(spec: JobSpec) -> str:
    from lwdash.jobs.runner import job_label

    return job_label(spec.technique)


def print_comparison(b: dict[str, Any], c: dict[str, Any]) -> None:
    """Baseline vs compressed (flat metric dicts, :meth:`Metrics.flat`): the headline figures."""
    from lwdash.measure.catalogue import PRIMARY_RUNTIME, latency_key
    from lwdash.runtimes import LATENCY_BATCHES, get_runtime

    primary = get_runtime(PRIMARY_RUNTIME)
    latency = [(batch, latency_key(primary.key, batch)) for batch in LATENCY_BATCHES]

    def pct(v: float) -> str:
        return f"{100 * v:.2f} %"

    def size(v: float) -> str:
        return f"{v / 1024:.1f} KiB"

    def ms(v: float) -> str:
        return f"{v:.3f} ms"

    def ratio(x: float, y: float) -> str:
        return f"{y / x:.3f}x" if x else "-"

    def speed(x: float, y: float) -> str:
        if x <= 0 or y <= 0:
            return "-"
        s = x / y
        if round(s, 2) == 1.0:
            return "1.00x (no change)"
        return f"{s:.2f}x faster" if s > 1 else f"{1 / s:.2f}x slower"

    rows = [
        ["top-1 (ORT)", pct(b["top1_acc"]), pct(c["top1_acc"]), f"{100 * (c['top1_acc'] - b['top1_acc']):+.2f} pts"],
        ["agreement", pct(b["agreement"]), pct(c["agreement"]), ""],
        ["model.onnx", size(b["onnx_bytes"]), size(c["onnx_bytes"]), ratio(b["onnx_bytes"], c["onnx_bytes"])],
        ["zlib(onnx)", size(b["compressed_bytes"]), size(c["compressed_bytes"]),
         ratio(b["compressed_bytes"], c["compressed_bytes"])],
        ["nonzero params", f"{b['nonzero_params_count']:,}", f"{c['nonzero_params_count']:,}",
         ratio(b["nonzero_params_count"], c["nonzero_params_count"])],
        ["MACs", f"{b['macs']:,}", f"{c['macs']:,}", ratio(b["macs"], c["macs"])],
        *[[f"{primary.short} b{batch} median", ms(b[key]), ms(c[key]), speed(b[key], c[key])]
          for batch, key in latency if key in b and key in c],
        *[[f"best runtime b{batch}", f"{b[f'best_b{batch}_runtime']} {ms(b[f'best_b{batch}_median_ms'])}",
           f"{c[f'best_b{batch}_runtime']} {ms(c[f'best_b{batch}_median_ms'])}",
           speed(b[f"best_b{batch}_median_ms"], c[f"best_b{batch}_median_ms"])]
          for batch, _ in latency if f"best_b{batch}_runtime" in b and f"best_b{batch}_runtime" in c],
    ]
    print_table(["metric", "baseline", "compressed", "vs baseline"], rows)


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [list(map(str, header))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for j, r in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))
