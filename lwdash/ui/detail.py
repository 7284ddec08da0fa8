"""One result in detail: headline metrics, the baseline-vs-compressed table, config and steps, downloads."""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from lwdash.analysis.notes import split_notes
from lwdash.annotations import Annotation, with_note
from lwdash.measure.catalogue import LARGE_BATCH, PRIMARY_RUNTIME, metrics_for, table_format, table_value
from lwdash.measure.metrics import Metrics
from lwdash.reproduce import reproduce_command
from lwdash.runtimes import get_runtime
from lwdash.store.records import NotFoundError
from lwdash.ui import runtimes as runtime_views
from lwdash.ui import state
from lwdash.ui.inspect import layer_histogram
from lwdash.ui.records import cli_refs
from lwdash.ui.resources import model_title
from lwdash.ui.text import literal
from lwdash.ui.workspace import workspace_panel
from lwdash.workspace import Store

__all__ = ["comparison_view", "config_table", "headline_metrics", "metrics_comparison", "result_detail", "steps_table"]


def metrics_comparison(baseline: Metrics, compressed: Metrics) -> pd.DataFrame:
    """Baseline vs compressed, one row per measured figure, with the change and the ratio.

    Accuracies change in percentage points (no ratio); everything else also gets
    ``compressed / baseline`` and, for latencies, the speed-up ``baseline / compressed``.
    """
    rows = []
    for spec in metrics_for("detail"):
        bv, cv = baseline.value(spec.key), compressed.value(spec.key)
        ratio = cv / bv if bv else math.nan
        rows.append(
            {
                "metric": spec.row,
                "baseline": table_value(spec, bv),
                "compressed": table_value(spec, cv),
                "change": (cv - bv) * 100.0 if spec.accuracy_like else table_value(spec, cv) - table_value(spec, bv),
                "ratio": math.nan if spec.accuracy_like else ratio,
                "speed-up": (bv / cv if cv else math.nan) if spec.kind == "ms" else math.nan,
            }
        )
    return pd.DataFrame(rows)


def comparison_view(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`metrics_comparison` as display strings, each row in its own unit's format."""
    fmts = [table_format(spec) for spec in metrics_for("detail")]

    def num(v: float, fmt: str, sign: str = "") -> str:
        return "" if not math.isfinite(v) else format(v, sign + fmt)

    def times(v: float, digits: int) -> str:
        return "" if not math.isfinite(v) else f"{v:.{digits}f}x"

    return pd.DataFrame(
        {
            "metric": table["metric"],
            "baseline": [num(v, f) for v, f in zip(table["baseline"], fmts, strict=True)],
            "compressed": [num(v, f) for v, f in zip(table["compressed"], fmts, strict=True)],
            "change": [num(v, f, "+") for v, f in zip(table["change"], fmts, strict=True)],
            "ratio": [times(v, 3) for v in table["ratio"]],
            "speed-up": [times(v, 2) for v in table["speed-up"]],
        }
    )


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "model"


def _artifact(store: Store, paths: dict[str, Path], artifact_dir: Path, name: str) -> Path | None:
    path = Path(paths.get(name) or artifact_dir / name).resolve()
    return path if store.is_artifact(path) else None


def _card_with_note(path: Path, note: Annotation) -> Callable[[], bytes]:
    return lambda: with_note(path.read_text(encoding="utf-8"), note).encode("utf-8")


def _downloads(store: Store, rec: Any) -> None:
    names = {"model.onnx": "ONNX model", "model.pt2": "PyTorch program (.pt2)", "model_card.md": "Model card",
             "model_card.json": "model card (JSON)", "result.json": "result.json"}
    present = {n: p for n in [*names, *runtime_views.runtime_download_names()]
               if (p := _artifact(store, rec.artifacts, rec.artifact_dir, n)) is not None}
    # each runtime's own artifact (OpenVINO IR, TVM library) when this result has one
    names.update({n: t for n, t in runtime_views.runtime_download_names().items() if n in present})
    cols = [c for _ in range(-(-len(names) // 3)) for c in st.columns(3)][: len(names)]  # rows of 3: labels stay whole
    for col, (name, title) in zip(cols, names.items(), strict=True):
        path = present.get(name)
        if path is None:
            col.caption(f"{title}: not available for this result")
            continue
        data = path.read_bytes
        if name == "model_card.md":  # the team's name and note travel with the card
            data = _card_with_note(path, store.annotation("result", rec.id))
        col.download_button(
            f"Download {title}", data=data, file_name=f"{_safe_name(rec.label)}-{name}",
            key=f"{state.COMPARE_DOWNLOAD}.{name}", icon=":material/download:", on_click="ignore",
            mime="text/markdown" if name.endswith(".md") else "application/json" if name.endswith(".json")
            else "application/xml" if name.endswith(".xml") else "application/octet-stream",
        )
    runtime_views.runtime_howto(list(present))


def result_detail(store: Store, result_id: str) -> None:
    """One result: metrics vs baseline, honest flags, weight histograms, downloads."""
    try:
        rec = store.get_result(result_id)
    except NotFoundError:
        st.warning(f"Result {result_id} no longer exists.")
        return
    st.subheader(("★ " if rec.starred else "") + rec.label)
    if rec.renamed_from:
        st.caption(f"Renamed from {literal(rec.renamed_from)}")
    if rec.note:
        st.markdown(f"**Team note:** {literal(rec.note)}")
    knobs = ", ".join(f"{k}={v}" for k, v in (rec.config.get("data") or {}).items())
    st.caption(
        f"{rec.technique} ({rec.family}) · {knobs or 'default config'} · model {literal(model_title(rec.model_id))} "
        f"(`{rec.model_id}`) · data "
        f"`{rec.data_ref}` · {rec.compressed.test_samples} test samples · {rec.compressed.threads} thread(s) · "
        f"seed {rec.seed} · result `{rec.id}`"
    )
    headline_metrics(rec.baseline, rec.compressed)
    warnings, described = split_notes(rec.notes)
    for note in warnings:  # a cost or a miss: what a reader must not overlook
        st.warning(note, icon=":material/flag:")
    if described:  # what the technique did: neutral
        st.info("\n".join(f"- {literal(n)}" for n in described), icon=":material/info:")
    table = comparison_view(metrics_comparison(rec.baseline, rec.compressed))
    st.dataframe(table, hide_index=True, width="stretch", height=35 * (len(table) + 1) + 3)
    runtime_views.latency_matrix_panel(rec.baseline, rec.compressed)
    config_col, steps_col = st.columns([1, 2])
    with config_col:
        st.markdown("**Configuration**")
        st.dataframe(config_table(rec.config), hide_index=True, width="stretch")
    with steps_col:
        st.markdown(f"**Steps** ({len(rec.steps)})" if rec.steps else "**Steps**")
        if rec.steps:
            st.dataframe(steps_table(rec.steps), hide_index=True, width="stretch")
        else:
            st.caption("A single-step technique: its metrics are the table above.")
    layer_histogram(rec, state.COMPARE_DETAIL_LAYER, state.COMPARE_DETAIL_LOG, state.COMPARE_DETAIL_CHART)
    st.page_link("pages/layers.py", label="Per-layer views of this result: sparsity, MAC share, weight error, "
                 "sensitivity scan", icon=":material/stacked_bar_chart:")
    _downloads(store, rec)
    model_arg, arch, data_arg = cli_refs(store, rec.model_id, rec.data_ref)
    st.caption("The same job headless (it measures the baseline and the compressed model again, on this machine):")
    st.code(reproduce_command("run", model=model_arg, arch=arch, data=data_arg, technique=rec.config, seed=rec.seed,
                              threads=rec.threads, extra=["--out", f"out/{rec.id[:8]}"]), language="bash")
    with st.expander("Environment the numbers were measured in"):
        st.json(rec.environment, expanded=False)
    workspace_panel(store, "result", rec.id, title=rec.label, forget=(state.SELECTED_RESULT,))


def config_table(config: dict[str, Any]) -> pd.DataFrame:
    """A technique config (its dict form) as ``knob`` / ``value`` rows, pipeline steps spelled out."""
    rows = [{"knob": "technique", "value": f"{config.get('type', '?')} (config v{config.get('version', '?')})"}]
    for k, v in (config.get("data") or {}).items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            for i, step in enumerate(v, 1):
                knobs = ", ".join(f"{a}={b}" for a, b in (step.get("data") or step).items() if a != "type")
                rows.append({"knob": f"{k}[{i}]", "value": f"{step.get('technique', step.get('type', ''))} {knobs}"})
        else:
            rows.append({"knob": k, "value": str(v)})
    return pd.DataFrame(rows, columns=["knob", "value"])


def steps_table(steps: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Pipeline / technique steps, one row each, accuracies shown in % and counts with separators."""
    rows = []
    for step in steps:
        row = {}
        for k, v in step.items():
            if isinstance(v, float) and ("acc" in k or k == "agreement") and 0.0 <= v <= 1.0:
                row[f"{k} (%)"] = f"{100 * v:.2f}"
            elif isinstance(v, int) and not isinstance(v, bool):
                row[k] = f"{v:,}"
            elif isinstance(v, float):
                row[k] = f"{v:.4g}"
            else:
                row[k] = str(v)
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def headline_metrics(baseline: Metrics, compressed: Metrics) -> None:
    """The numbers a decision turns on (accuracy, size, ONNX Runtime latency, the best runtime), with their change.

    Deltas are signed so Streamlit colours them right: a smaller file or a shorter latency is green.
    """
    acc, size, lat, best = st.columns(4)
    acc.metric("Top-1 accuracy (ONNX Runtime)", f"{100 * compressed.top1_acc:.2f} %",
               f"{100 * (compressed.top1_acc - baseline.top1_acc):+.2f} pp vs {100 * baseline.top1_acc:.2f} %")
    size_ratio = compressed.onnx_bytes / baseline.onnx_bytes
    size.metric("ONNX file", f"{compressed.onnx_bytes / 1024:,.1f} KiB",
                f"{100 * (size_ratio - 1):+.1f} % ({size_ratio:.3f}x of {baseline.onnx_bytes / 1024:,.1f} KiB)",
                delta_color="inverse")
    primary = get_runtime(PRIMARY_RUNTIME)
    b_ms, c_ms = baseline.latency_ms(primary.key, LARGE_BATCH), compressed.latency_ms(primary.key, LARGE_BATCH)
    time_ratio = c_ms / b_ms
    lat.metric(f"Latency, batch {LARGE_BATCH} ({primary.title}, median)", f"{c_ms:.3f} ms",
               f"{100 * (time_ratio - 1):+.1f} % ({1 / time_ratio:.2f}x speed-up vs {b_ms:.3f} ms)",
               delta_color="inverse")
    runtime_views.best_runtime_metric(best, baseline, compressed)
