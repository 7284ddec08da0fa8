"""A result's latency matrix: runtime x batch x fusion, median and p90, beside its baseline's; the best runtime.

Built from two :class:`~lwdash.measure.metrics.Metrics` (the result and its baseline, measured
in the same process at the same thread count) and the runtime registry; the result detail, the
model card and the report render it, nothing here draws. Every registered runtime gets a row
(with the reason when it measured nothing), then any runtime a stored record holds that is no
longer registered.

:func:`best_runtime` is the headline: the result's fastest runtime at a batch and its speed-up
over the *baseline's* fastest runtime (each at its own best, which is what a deployment would
pick), and over the baseline on that same runtime.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from lwdash.measure.catalogue import LARGE_BATCH
from lwdash.measure.metrics import Metrics
from lwdash.runtimes import LATENCY_BATCHES, Runtime, list_runtimes

__all__ = [
    "BestRuntime",
    "MatrixRow",
    "best_runtime",
    "fusion_text",
    "latency_matrix",
    "matrix_caveats",
    "matrix_frame",
    "matrix_markdown",
    "runtime_downloads",
]

_FUSION_TEXT = {"on": "on", "off": "off", "": "-"}


def fusion_text(fusion: str) -> str:
    """``on`` / ``off`` / ``-`` (not a setting of that runtime)."""
    return _FUSION_TEXT.get(fusion, fusion or "-")


@dataclass(frozen=True)
class MatrixRow:
    """One runtime's figures for a result and its baseline.

    Attributes:
        runtime: the runtime key.
        title: its title (the key itself for a runtime no longer registered).
        engine: the engine (runtimes of one engine, e.g. ONNX Runtime with fusion on and off, share it).
        fusion: ``on`` / ``off`` / ``""``.
        median_ms / p90_ms / compile_s: batch -> the result's figure (NaN: not timed).
        baseline_median_ms / baseline_p90_ms: batch -> the baseline's.
        note: why the result (or its baseline) has no figures on this runtime, ``""`` if it has.
    """

    runtime: str
    title: str
    engine: str
    fusion: str
    median_ms: dict[int, float]
    p90_ms: dict[int, float]
    compile_s: dict[int, float]
    baseline_median_ms: dict[int, float]
    baseline_p90_ms: dict[int, float]
    note: str

    def speedup(self, batch: int) -> float:
        """Baseline median / result median on this runtime at ``batch`` (NaN when either is missing)."""
        b, c = self.baseline_median_ms.get(batch, math.nan), self.median_ms.get(batch, math.nan)
        return b / c if c > 0 and math.isfinite(b) else math.nan

    @property
    def measured(self) -> bool:
        return any(math.isfinite(v) for v in self.median_ms.values())


def _note(baseline: Metrics, compressed: Metrics, key: str) -> str:
    c, b = compressed.latency_notes.get(key, ""), baseline.latency_notes.get(key, "")
    if c and b and c != b:
        return f"result: {c}; baseline: {b}"
    if c or b:
        return c or f"baseline: {b}"
    return ""


def latency_matrix(baseline: Metrics, compressed: Metrics,
                   batches: Sequence[int] = LATENCY_BATCHES) -> list[MatrixRow]:
    """A :class:`MatrixRow` per registered runtime (registry order), then per unregistered runtime with records."""
    registered: dict[str, Runtime] = {rt.key: rt for rt in list_runtimes()}
    keys = list(registered) + [k for k in dict.fromkeys([*compressed.runtimes, *baseline.runtimes])
                               if k not in registered]
    rows = []
    for key in keys:
        rt = registered.get(key)
        c = {b: compressed.latency_record(key, b) for b in batches}
        base = {b: baseline.latency_record(key, b) for b in batches}
        rows.append(MatrixRow(
            runtime=key,
            title=rt.title if rt else key,
            engine=rt.engine if rt else key,
            fusion=rt.fusion if rt else "",
            median_ms={b: r.median_ms if r else math.nan for b, r in c.items()},
            p90_ms={b: r.p90_ms if r else math.nan for b, r in c.items()},
            compile_s={b: r.compile_s if r else math.nan for b, r in c.items()},
            baseline_median_ms={b: r.median_ms if r else math.nan for b, r in base.items()},
            baseline_p90_ms={b: r.p90_ms if r else math.nan for b, r in base.items()},
            note=_note(baseline, compressed, key),
        ))
    return rows


def matrix_frame(baseline: Metrics, compressed: Metrics, batches: Sequence[int] = LATENCY_BATCHES) -> pd.DataFrame:
    """:func:`latency_matrix` as a table: one row per runtime, numbers in ms / s (NaN: not timed).

    Columns: ``runtime``, ``fusion``; per batch ``b<B> median ms``, ``b<B> p90 ms``, ``baseline b<B>
    median ms``, ``baseline b<B> p90 ms``, ``b<B> speed-up`` (baseline / result on that runtime);
    per batch ``b<B> compile s``; ``note``.
    """
    records = []
    for row in latency_matrix(baseline, compressed, batches):
        rec: dict[str, object] = {"runtime": row.title, "fusion": fusion_text(row.fusion)}
        for b in batches:
            rec[f"b{b} median ms"] = row.median_ms[b]
            rec[f"b{b} p90 ms"] = row.p90_ms[b]
            rec[f"baseline b{b} median ms"] = row.baseline_median_ms[b]
            rec[f"baseline b{b} p90 ms"] = row.baseline_p90_ms[b]
            rec[f"b{b} speed-up"] = row.speedup(b)
        for b in batches:
            rec[f"b{b} compile s"] = row.compile_s[b]
        rec["note"] = row.note
        records.append(rec)
    return pd.DataFrame(records)


@dataclass(frozen=True)
class BestRuntime:
    """The headline: the result's fastest runtime at a batch against the baseline's fastest.

    Attributes:
        batch: the batch size.
        runtime / title / median_ms: the result's fastest runtime and its median.
        baseline_runtime / baseline_title / baseline_median_ms: the baseline's fastest.
        speedup: ``baseline_median_ms / median_ms`` (best against best).
        same_runtime_speedup: the baseline on the result's best runtime / the result there.
        slower_on: when the result is slower than its baseline on *every* runtime that timed
            both at this batch, those runtimes' titles (the headline says so); else empty.
    """

    batch: int
    runtime: str
    title: str
    median_ms: float
    baseline_runtime: str
    baseline_title: str
    baseline_median_ms: float
    speedup: float
    same_runtime_speedup: float
    slower_on: tuple[str, ...] = ()

    @property
    def slower_everywhere(self) -> bool:
        return bool(self.slower_on)

    def slower_text(self) -> str:
        """The headline line of a result slower than its baseline on every runtime ("" when it is not)."""
        if not self.slower_on:
            return ""
        where = self.slower_on[0] if len(self.slower_on) == 1 else ", ".join(self.slower_on[:-1]) + " and " + self.slower_on[-1]
        return (f"Slower than its baseline on every runtime measured at batch {self.batch} ({where}): "
                "this result saves size or MACs, not time, on this machine.")


def _title(key: str) -> str:
    return next((rt.title for rt in list_runtimes() if rt.key == key), key)


def best_runtime(baseline: Metrics, compressed: Metrics, batch: int = LARGE_BATCH) -> BestRuntime | None:
    """:class:`BestRuntime` at ``batch``, or ``None`` when the result or the baseline has no timing there."""
    c, b = compressed.best_latency(batch), baseline.best_latency(batch)
    if c is None or b is None or c.median_ms <= 0:
        return None
    same = baseline.latency_ms(c.runtime, batch)
    both = [(k, baseline.latency_ms(k, batch), compressed.latency_ms(k, batch)) for k in compressed.runtimes]
    both = [(k, b_ms, c_ms) for k, b_ms, c_ms in both if math.isfinite(b_ms) and math.isfinite(c_ms)]
    slower_on = tuple(_title(k) for k, _, _ in both) if both and all(c_ms >= b_ms for _, b_ms, c_ms in both) else ()
    return BestRuntime(batch=batch, runtime=c.runtime, title=_title(c.runtime), median_ms=c.median_ms,
                       baseline_runtime=b.runtime, baseline_title=_title(b.runtime), baseline_median_ms=b.median_ms,
                       speedup=b.median_ms / c.median_ms,
                       same_runtime_speedup=same / c.median_ms if math.isfinite(same) else math.nan,
                       slower_on=slower_on)


def matrix_caveats(compressed: Metrics) -> list[str]:
    """The caveat line of every runtime the result was measured on (e.g. fusion off runs QDQ int8 as fake quantization)."""
    timed = set(compressed.runtimes)
    return [rt.caveat for rt in list_runtimes() if rt.caveat and rt.key in timed]


def _ms(v: float) -> str:
    return f"{v:.3f}" if math.isfinite(v) else "-"


def matrix_markdown(baseline: Metrics, compressed: Metrics, batches: Sequence[int] = LATENCY_BATCHES) -> list[str]:
    """The matrix as Markdown table lines (model card): ms median / p90, result then baseline, and the speed-up."""
    head = ["runtime", "fusion"]
    for b in batches:
        head += [f"b{b} median / p90 (ms)", f"baseline b{b}", f"b{b} speed-up"]
    head += ["compile (s)", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (3 * len(batches) + 1) + "---|"]
    for row in latency_matrix(baseline, compressed, batches):
        cells = [row.title, fusion_text(row.fusion)]
        for b in batches:
            sp = row.speedup(b)
            cells += [f"{_ms(row.median_ms[b])} / {_ms(row.p90_ms[b])}",
                      f"{_ms(row.baseline_median_ms[b])} / {_ms(row.baseline_p90_ms[b])}",
                      f"{sp:.2f}x" if math.isfinite(sp) else "-"]
        comp = [f"b{b} {row.compile_s[b]:.2f}" for b in batches if math.isfinite(row.compile_s[b])]
        cells += [", ".join(comp) or "-", row.note.replace("|", "/")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def runtime_downloads(files: Sequence[str]) -> list[tuple[str, str, str]]:
    """``(file name, runtime title, how to run it)`` for each runtime's artifact among ``files``.

    ONNX Runtime (both fusion settings) runs ``model.onnx``, PyTorch eager and torch.compile run
    ``model.pt2``; OpenVINO its IR (``model.xml`` + ``model.bin``), TVM ``model_tvm.so``. A
    runtime whose artifact is not among ``files`` is left out.
    """
    present = set(files)
    return [(rt.download, rt.title, rt.how_to_run) for rt in list_runtimes()
            if rt.how_to_run and rt.download in present and all(f in present for f in rt.export_files)]
