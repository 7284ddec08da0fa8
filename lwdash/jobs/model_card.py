"""The model card of a result: Markdown (:func:`render_model_card`) and JSON (:func:`card_dict`) from ``result.json``.

Also :func:`json_default`, how ``result.json`` and ``model_card.json`` write non-JSON values.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from lwdash.jobs.job_labels import fmt_value
from lwdash.measure.catalogue import metrics_for
from lwdash.measure.metrics import Metrics, flatten

__all__ = ["card_dict", "json_default", "render_model_card"]


def json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


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


def card_dict(result: dict[str, Any]) -> dict[str, Any]:
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
        lines.append(f"| {k} | `{fmt_value(v)}` |")
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
            lines.append(f"{i}. " + ", ".join(f"{k}: {fmt_value(v)}" for k, v in s.items()))
    lines += ["", "## Environment", ""]
    for k, v in (result.get("environment") or {}).items():
        lines.append(f"- {k}: {v}")
    lines.append("")
    return "\n".join(lines)
