"""Runtimes on screen: which ones a job measures, a result's latency matrix and best runtime, each runtime's download.

The tables come from :mod:`lwdash.analysis.latency_matrix`; this module only renders them.
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from lwdash.analysis.latency_matrix import best_runtime, matrix_caveats, matrix_frame, runtime_downloads
from lwdash.measure.catalogue import LARGE_BATCH
from lwdash.measure.metrics import Metrics
from lwdash.runtimes import LATENCY_BATCHES, list_runtimes, resolve_runtimes
from lwdash.ui import state

__all__ = ["best_runtime_metric", "latency_matrix_panel", "runtime_choice", "runtime_download_names", "runtime_howto"]


def _default_keys() -> list[str]:
    from lwdash.config import get_settings

    try:
        return list(resolve_runtimes(get_settings().runtimes))
    except ValueError as e:  # an invalid LWDASH_RUNTIMES: say so, fall back to the registered defaults
        st.warning(str(e))
        return list(resolve_runtimes(None))


def runtime_choice(key: str = state.COMPRESS_RUNTIMES) -> tuple[str, ...]:
    """A multiselect of every registered runtime; returns the keys the queued jobs measure (latency and downloads).

    It starts at the ``LWDASH_RUNTIMES`` setting (or the runtimes registered as defaults: the ones
    that take seconds, not tens of seconds, per model).
    """
    runtimes = {rt.key: rt for rt in list_runtimes()}

    def label(k: str) -> str:
        rt = runtimes[k]
        why = rt.unavailable_reason()
        extra = " (not available here)" if why else "" if rt.default else " (compiles: tens of seconds per model)"
        return f"{rt.title}{extra}"

    if key not in st.session_state:
        st.session_state[key] = _default_keys()
    chosen = st.multiselect(
        "Runtimes to measure latency on", list(runtimes), format_func=label, key=key,
        help="Each result and its baseline are timed on every runtime picked here, at batch 1 and 32, in the same "
             "worker and thread count; OpenVINO, torch.compile and TVM run in a child process, so a crash or hang "
             "fails only that runtime's measurement; none picked: the default set. torch.compile and TVM compile per model "
             "and batch shape "
             "(their compile time is recorded). docs/runtimes.md describes each.",
    )
    for k in chosen:
        why = runtimes[k].unavailable_reason()
        if why:
            st.caption(f"{runtimes[k].title}: {why}")
    return tuple(chosen)


def best_runtime_metric(column: Any, baseline: Metrics, compressed: Metrics, batch: int = LARGE_BATCH) -> None:
    """The headline tile: the result's fastest runtime and its speed-up over the baseline's fastest."""
    best = best_runtime(baseline, compressed, batch)
    if best is None:
        column.metric(f"Best runtime, batch {batch}", "-", help="No runtime timed both this result and its baseline.")
        return
    column.metric(
        f"Best runtime, batch {batch}: {best.title}", f"{best.median_ms:.3f} ms",
        f"{best.speedup:.2f}x vs the baseline's best ({best.baseline_title}, {best.baseline_median_ms:.3f} ms)",
        delta_color="normal" if best.speedup >= 1 else "inverse",
        help="The fastest runtime measured for this result against the fastest for its baseline: what each "
             "would be deployed on.",
    )
    if best.slower_everywhere:
        st.error(best.slower_text(), icon=":material/speed:")


def _fmt(v: Any, digits: str) -> str:
    return "" if not isinstance(v, (int, float)) or not math.isfinite(v) else format(v, digits)


def latency_matrix_panel(baseline: Metrics, compressed: Metrics) -> None:
    """Runtime x batch x fusion, median and p90 beside the baseline's, speed-ups, compile times, the caveats."""
    st.markdown("**Latency on every runtime** (ms after warm-up; this result beside its baseline, same worker "
                "and threads)")
    frame = matrix_frame(baseline, compressed)
    shown = pd.DataFrame({"runtime": frame["runtime"], "fusion": frame["fusion"]})
    for b in LATENCY_BATCHES:
        shown[f"b{b} median"] = [_fmt(v, ".3f") for v in frame[f"b{b} median ms"]]
        shown[f"b{b} p90"] = [_fmt(v, ".3f") for v in frame[f"b{b} p90 ms"]]
        shown[f"baseline b{b} median"] = [_fmt(v, ".3f") for v in frame[f"baseline b{b} median ms"]]
        shown[f"baseline b{b} p90"] = [_fmt(v, ".3f") for v in frame[f"baseline b{b} p90 ms"]]
        shown[f"b{b} speed-up"] = [_fmt(v, ".2f") + ("x" if _fmt(v, ".2f") else "") for v in frame[f"b{b} speed-up"]]
    shown["compile s (b1 / b32)"] = [
        " / ".join(_fmt(row[f"b{b} compile s"], ".2f") or "-" for b in LATENCY_BATCHES) for _, row in frame.iterrows()]
    shown["not measured because"] = frame["note"]
    best = compressed.best_latency(LARGE_BATCH)
    if best is not None:
        title = next((rt.title for rt in list_runtimes() if rt.key == best.runtime), best.runtime)
        shown.insert(0, "best", ["★" if t == title else "" for t in shown["runtime"]])
    st.dataframe(shown, hide_index=True, width="stretch", height=35 * (len(shown) + 1) + 3)
    st.caption("fusion: ONNX Runtime is timed with graph optimisation on (ORT_ENABLE_ALL) and off (ORT_DISABLE_ALL), "
               "so the two rows show what layer fusion buys; ★ marks this result's fastest runtime at batch "
               f"{LARGE_BATCH}. Compile time is loading and compiling the artifact and its first run, per batch.")
    for caveat in matrix_caveats(compressed):
        st.info(caveat, icon=":material/info:")


def runtime_download_names() -> dict[str, str]:
    """File name -> button title of every runtime's own artifact (OpenVINO IR, TVM library...), registry order."""
    out: dict[str, str] = {}
    for rt in list_runtimes():
        for i, name in enumerate(rt.export_files):
            kind = name.rsplit(".", 1)[-1]
            out[name] = f"{rt.title} {'model' if i == 0 else 'weights'} (.{kind})"
    return out


def runtime_howto(files: list[str]) -> None:
    """One line per runtime whose artifact is among ``files``: which file, how to run it."""
    rows = runtime_downloads(files)
    if rows:
        st.markdown("**How to run each download**")
        st.markdown("\n".join(f"- **{title}**, `{name}`: {how}" for name, title, how in rows))
