"""Build the CSV, the HTML report and the PNG charts from stored results (see the package docstring)."""
from __future__ import annotations

import datetime as _dt
import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from lwdash.analysis.frame import load_results_frame
from lwdash.analysis.headline import DEFAULT_MAX_DROP_POINTS, headlines
from lwdash.analysis.latency_matrix import best_runtime, fusion_text, latency_matrix, matrix_caveats
from lwdash.figures import (
    plot_tradeoff,
    plot_tradeoff_3d,
    tradeoff3d_info,
    tradeoff_info,
)
from lwdash.measure.catalogue import (
    BEST,
    LARGE_BATCH,
    PRIMARY_RUNTIME,
    latency_key,
    latency_metrics,
    speedup_key,
)
from lwdash.measure.metrics import best_runtime_key
from lwdash.report.html_parts import CSS, cell, table
from lwdash.runtimes import LATENCY_BATCHES, get_runtime, list_runtimes

if TYPE_CHECKING:
    from lwdash.workspace import Store

__all__ = [
    "ReportError",
    "ReportFiles",
    "build_report_html",
    "compare_figures",
    "results_csv",
    "with_model_names",
    "write_pngs",
    "write_report",
]

#: Chart name -> (x metric, title). ``3d`` is the accuracy / size / latency view.
CHARTS: dict[str, tuple[str, str]] = {
    "accuracy_vs_size": ("onnx_bytes", "Accuracy vs size (ONNX file)"),
    "accuracy_vs_latency_ort_b32": ("ort_b32_median_ms", "Accuracy vs latency (ONNX Runtime, batch 32)"),
    "accuracy_vs_latency_torch_b1": ("torch_b1_median_ms", "Accuracy vs latency (PyTorch eager, batch 1)"),
}
_PNG_SIZE = (1100, 620)
_HEADLINE_LATENCY = latency_key(PRIMARY_RUNTIME, LARGE_BATCH)
_HEADLINE_SPEEDUP = speedup_key(PRIMARY_RUNTIME, LARGE_BATCH)


def _table_columns() -> dict[str, tuple[str, str]]:
    """The report's results table: frame column -> (header, format kind).

    The primary runtime's latencies, the best runtime at batch 32 (its key, median, and speed-up
    over the baseline's best runtime), then the batch-32 speed-up on every registered runtime
    (from the metric catalogue, so a newly registered runtime gets its column).
    """
    primary = get_runtime(PRIMARY_RUNTIME).short
    latency = {s.key: (f"{primary} b{s.batch} ms", "ms") for s in latency_metrics(runtime=PRIMARY_RUNTIME, stat="median")}
    speedup = {speedup_key(rt.key, LARGE_BATCH): (f"{rt.short} b{LARGE_BATCH} speed-up", "x2") for rt in list_runtimes()}
    return {
        "label": ("result", "text"),
        "model_name": ("model", "text"),
        "family": ("family", "text"),
        "top1_acc": (f"top-1 % ({primary})", "pct"),
        "acc_delta": ("Δ top-1 (pts)", "pts"),
        "onnx_bytes": ("ONNX KiB", "kib"),
        "size_ratio": ("size ratio", "x3"),
        "sparse_ratio": ("sparse ratio", "x3"),
        "macs_ratio": ("MACs ratio", "x3"),
        **latency,
        best_runtime_key(LARGE_BATCH): (f"best runtime b{LARGE_BATCH}", "runtime"),
        latency_key(BEST, LARGE_BATCH): (f"best b{LARGE_BATCH} ms", "ms"),
        speedup_key(BEST, LARGE_BATCH): (f"best vs baseline's best b{LARGE_BATCH}", "x2"),
        **speedup,
        "created_at": ("finished", "time"),
        "id": ("result id", "text"),
    }


class ReportError(RuntimeError):
    """A report file could not be written; the message says why and what to do."""


@dataclass(frozen=True)
class ReportFiles:
    """Paths written by :func:`write_report`."""

    csv: Path
    html: Path
    pngs: tuple[Path, ...] = field(default_factory=tuple)


def results_csv(frame: pd.DataFrame) -> str:
    """Every column of the results frame as CSV (raw stored units: fractions, bytes, ms)."""
    return frame.to_csv(index=False)


def compare_figures(frame: pd.DataFrame, *, ratio_to_baseline: bool = False,
                    per_model: bool = True) -> dict[str, go.Figure]:
    """The Compare page's charts for ``frame``: the accuracy fronts (one per model by default) and the 3-D view."""
    figs = {
        name: plot_tradeoff(tradeoff_info(frame, metric, "top1_acc", ratio_to_baseline, per_model=per_model),
                            title=title)
        for name, (metric, title) in CHARTS.items()
    }
    figs["accuracy_size_latency_3d"] = plot_tradeoff_3d(
        tradeoff3d_info(frame, "onnx_bytes", _HEADLINE_LATENCY, "top1_acc", ratio_to_baseline),
        title=f"Accuracy / size / latency ({get_runtime(PRIMARY_RUNTIME).title}, batch {LARGE_BATCH})",
    )
    return figs


def _matrix_section(records: Sequence[Any]) -> list[str]:
    """Per result: runtime x batch x fusion, median / p90 ms, beside its baseline's, and the best runtime."""
    parts = ["<h2>Latency on every runtime</h2>",
             "<p>Each result and its baseline on every runtime (median / p90 ms after warm-up, same process and "
             "threads); the speed-up is the baseline's median on that runtime over the result's. \"fusion\" is "
             "the runtime's layer fusion: ONNX Runtime is measured with graph optimisation on (ORT_ENABLE_ALL) "
             "and off (ORT_DISABLE_ALL).</p>"]
    caveats: dict[str, None] = {}
    for r in records:
        best = best_runtime(r.baseline, r.compressed)
        head = f"<h3>{html.escape(r.label)} <span class='meta'>({html.escape(r.id[:8])})</span></h3>"
        if best is not None:
            head += (f"<p>Best runtime at batch {best.batch}: <b>{html.escape(best.title)}</b>, "
                     f"{best.median_ms:.3f} ms; the baseline's best is {html.escape(best.baseline_title)}, "
                     f"{best.baseline_median_ms:.3f} ms: <b>{best.speedup:.2f}x</b>.</p>")
            if best.slower_everywhere:
                head += f"<p class='warn'><b>{html.escape(best.slower_text())}</b></p>"
        rows = []
        for row in latency_matrix(r.baseline, r.compressed):
            cells = [row.title, fusion_text(row.fusion)]
            for b in LATENCY_BATCHES:
                cells += [f"{cell('ms', row.median_ms[b])} / {cell('ms', row.p90_ms[b])}",
                          f"{cell('ms', row.baseline_median_ms[b])} / {cell('ms', row.baseline_p90_ms[b])}",
                          cell("x2", row.speedup(b))]
            cells += [", ".join(f"b{b} {row.compile_s[b]:.2f}" for b in LATENCY_BATCHES
                                if math.isfinite(row.compile_s[b])) or "-", row.note or ""]
            rows.append(cells)
        headers = ["runtime", "fusion"]
        for b in LATENCY_BATCHES:
            headers += [f"b{b} ms", f"baseline b{b} ms", f"b{b} speed-up"]
        parts += [head, table([*headers, "compile s", "note"], rows, numeric_from=2)]
        caveats.update(dict.fromkeys(matrix_caveats(r.compressed)))
    parts += [f"<p class='note'>{html.escape(c)}</p>" for c in caveats]
    return parts


def _front_rows(frame: pd.DataFrame) -> list[list[str]]:
    info = tradeoff_info(frame, "onnx_bytes", "top1_acc", per_model=True)  # each model's own front
    by_id = frame.set_index("id")
    rows = []
    for p in sorted((p for p in info.points if p.on_front), key=lambda p: p.x):
        r = by_id.loc[p.result_id]
        rows.append([p.label, str(r.get("model_name", r["model_id"])), cell("pct", r["top1_acc"]),
                     cell("pts", r["acc_delta"]), cell("kib", r["onnx_bytes"]), cell("x3", r["size_ratio"]),
                     cell("x2", r[_HEADLINE_SPEEDUP])])
    return rows


def _env_key(env: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(env.get(k, "")) for k in ("cpu_model", "threads", "logical_cores", "python", "torch",
                                               "onnxruntime", "onnx", "torchao", "platform"))


def build_report_html(
    store: Store,
    frame: pd.DataFrame,
    *,
    title: str = "lwdash compression report",
    scope: str = "",
    figures: Mapping[str, go.Figure] | None = None,
) -> str:
    """A self-contained HTML page: charts (plotly.js embedded once), tables, configs, environment.

    Args:
        store: where the results live (their configs, notes and environments are read from it).
        frame: the results to report (:func:`lwdash.analysis.frame.results_frame` rows, optionally filtered,
            with or without a ``model_name`` column).
        title: the page title.
        scope: a sentence on what was selected (filters), shown under the title.
        figures: charts to embed (default: :func:`compare_figures` of ``frame``).

    Returns:
        The HTML document as a string; it loads nothing from the network.
    """
    frame = frame.reset_index(drop=True)
    if "model_name" not in frame.columns:
        frame = frame.assign(model_name=frame["model_id"] if "model_id" in frame.columns else [])
    figs = dict(figures) if figures is not None else compare_figures(frame)
    ids = set(frame["id"]) if "id" in frame.columns else set()
    records = [r for r in store.list_results(with_weights=False) if r.id in ids]
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    models = sorted({str(m) for m in frame.get("model_name", [])})

    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='meta'>Generated {now} · {len(frame)} result(s) · model(s): "
        f"{html.escape(', '.join(models) or 'none')}</p>",
    ]
    if scope:
        parts.append(f"<p class='meta'>{html.escape(scope)}</p>")
    parts.append(
        "<p>Every figure below was measured, not estimated: accuracy on the held-out test split, the ONNX "
        "artifact run in ONNX Runtime and the PyTorch form in eager mode, latency as the median of repeated "
        "runs after warm-up at a fixed thread count on every runtime the job measured, each result measured against its own baseline in the "
        "same process. Ratios are compressed / baseline; speed-ups are baseline time / compressed time.</p>"
    )
    if len(frame):
        by_id = {r.id: r for r in records}
        parts.append("<h2>Headline</h2><ul class='headline'>")
        parts += [f"<li class='{'met' if h.met else 'warn'}'>{html.escape(h.text)}</li>"
                  for h in headlines(frame, by_id)]
        parts.append("</ul><p class='meta'>Per model: the smallest result within "
                     f"{DEFAULT_MAX_DROP_POINTS:g} point of its baseline's top-1 accuracy.</p>")
        parts.append("<h2>Pareto fronts: accuracy vs ONNX size, per model</h2>")
        parts.append("<p>For each model, its results that no other result of the same model (or its baseline) "
                     "beats on both accuracy and size.</p>")
        parts.append(table(["result", "model", "top-1 %", "Δ pts", "ONNX KiB", "size ratio",
                             f"{get_runtime(PRIMARY_RUNTIME).short} b{LARGE_BATCH} speed-up"],
                            _front_rows(frame), numeric_from=2))
    parts.append("<h2>Charts</h2>")
    first = True
    for name, fig in figs.items():
        div = pio.to_html(fig, include_plotlyjs=first, full_html=False, div_id=f"chart-{name}",
                          config={"displaylogo": False}, default_height=f"{fig.layout.height or 460}px")
        parts.append(f"<div class='chart'>{div}</div>")
        first = False
    parts.append("<h2>All results</h2>")
    columns = _table_columns()
    cols = [c for c in columns if c in frame.columns]
    starred = frame["starred"] if "starred" in frame.columns else pd.Series(False, index=frame.index)
    rows = [[("★ " if c == "label" and bool(starred.iat[i]) else "") + cell(columns[c][1], frame.at[i, c]) for c in cols]
            for i in range(len(frame))]
    # Many columns: the table scrolls inside its own box rather than running past the page's edge.
    parts.append(f"<div class='wide'>{table([columns[c][0] for c in cols], rows, numeric_from=3)}</div>")
    parts += _matrix_section(records)
    parts.append("<h2>Configurations and notes</h2>")
    cfg_rows = []
    for r in records:
        knobs = ", ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}"
                          for k, v in (r.config.get("data") or {}).items())
        steps = "; ".join(", ".join(f"{k}: {v}" for k, v in s.items()) for s in r.steps)
        cfg_rows.append([r.label + (f" (renamed from {r.renamed_from})" if r.renamed_from else ""),
                         f"{r.technique} ({r.family})", knobs or "defaults", f"seed {r.seed}, {r.threads} thread(s)",
                         r.note or "-", " | ".join(r.notes) or "-", steps or "-"])
    parts.append(table(["result", "technique", "config", "run", "team note", "honest-gain notes", "pipeline steps"],
                       cfg_rows))
    parts.append("<h2>Environment</h2>")
    envs: dict[tuple[str, ...], list[Any]] = {}
    for r in records:
        envs.setdefault(_env_key(r.environment), []).append(r)
    env_rows = []
    for recs in envs.values():
        e = recs[0].environment
        versions = ", ".join(f"{k} {v}" for k, v in (e.get("versions") or {}).items() if v)
        env_rows.append([str(e.get("cpu_model", "?")), f"{e.get('logical_cores', '?')} logical",
                         str(e.get("threads", "?")), str(e.get("platform", "?")),
                         f"python {e.get('python', '?')}; {versions}", str(len(recs))])
    parts.append(table(["CPU", "cores", "threads used", "platform", "library versions", "results"], env_rows))
    if len(envs) > 1:
        parts.append("<p class='note'>These results were measured in more than one environment: compare "
                     "latencies only within one.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _ensure_browser() -> None:
    """Point kaleido at the system chromium when none is configured (it must never download one)."""
    if os.environ.get("BROWSER_PATH"):
        return
    for candidate in (os.environ.get("LWDASH_CHROMIUM", ""), "/usr/bin/chromium", "/usr/bin/chromium-browser",
                      "/usr/bin/google-chrome"):
        if candidate and Path(candidate).is_file():
            os.environ["BROWSER_PATH"] = candidate
            return


def write_pngs(figures: Mapping[str, go.Figure], out_dir: Path) -> list[Path]:
    """Render each figure to ``out_dir/<name>.png`` with kaleido (one browser session for all).

    Raises:
        ReportError: kaleido or a Chromium-based browser is missing, or rendering failed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png" for name in figures]
    if not paths:
        return []
    _ensure_browser()
    try:
        pio.write_images(list(figures.values()), paths, format="png", width=_PNG_SIZE[0], height=_PNG_SIZE[1])
    except Exception as e:  # kaleido raises several types (missing package, browser, timeouts)
        raise ReportError(
            f"the charts could not be rendered as PNG ({type(e).__name__}: {e}). PNG export needs the kaleido "
            "package and a Chromium-based browser (set BROWSER_PATH to its executable)."
        ) from e
    return paths


def write_report(
    store: Store,
    out_dir: Path,
    frame: pd.DataFrame | None = None,
    *,
    png: bool = True,
    scope: str = "",
) -> ReportFiles:
    """Write ``results.csv``, ``report.html`` and (with ``png``) ``charts/*.png`` into ``out_dir``.

    Args:
        store: the store to report on.
        out_dir: created if missing; existing files of the same names are replaced.
        frame: the results to include (default: every stored result, with model names).
        png: also render the charts as PNG images.
        scope: a sentence on what was selected, shown in the report.

    Returns:
        The written paths.

    Raises:
        ReportError: the PNG charts could not be rendered.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if frame is None:
        frame = with_model_names(store, load_results_frame(store))
    figs = compare_figures(frame)
    csv_path = out_dir / "results.csv"
    csv_path.write_text(results_csv(frame))
    html_path = out_dir / "report.html"
    html_path.write_text(build_report_html(store, frame, figures=figs, scope=scope), encoding="utf-8")
    pngs = tuple(write_pngs(figs, out_dir / "charts")) if png else ()
    return ReportFiles(csv=csv_path, html=html_path, pngs=pngs)


def with_model_names(store: Store, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a ``model_name`` column (sample titles, upload file names; ids where unknown)."""
    if "model_name" in frame.columns:
        return frame
    try:
        names = {m.id: m.title or m.name for m in store.list_models()}
    except Exception:
        names = {}
    out = frame.copy()
    out.insert(3 if len(out.columns) >= 3 else 0, "model_name", [names.get(m, m) for m in out.get("model_id", [])])
    return out
