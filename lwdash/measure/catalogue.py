"""The metric catalogue: every figure lwdash shows, declared once.

Each :class:`MetricSpec` carries a metric's key (its flat key in :meth:`Metrics.flat` and the
results frame), its labels, unit, direction, kind (which fixes how it is formatted everywhere),
the runtime and batch it belongs to, and the views that list it. Scalar metrics are declared in
:data:`_SCALARS` below; latency metrics are derived from the runtime registry
(:mod:`lwdash.runtimes`), one per registered runtime x batch x statistic, so a runtime
registered anywhere shows up here, and so on every chart axis, table, search objective, the
model card, the report and the CSV that read the catalogue.

Views (``MetricSpec.views``): ``axis`` (trade-off chart axes), ``compare`` (the side-by-side
table), ``detail`` (one result against its baseline), ``card`` (the model card). A metric with an
``objective`` label can be a search objective. Ratio and speed-up columns of the results frame
are named here too (:attr:`MetricSpec.ratio`, :func:`speedup_key`).

Besides the registered runtimes, the pseudo-runtime ``best`` (:data:`~lwdash.runtimes.BEST`) has
latency metrics: the fastest runtime timed for that record at the batch (``best_b32_median_ms``);
its speed-up column (``best_b32_speedup``) is the baseline's best over the result's best. Per
runtime, only the batch-32 median is on the side-by-side table and the model card's headline
table; the whole runtime x batch x statistic matrix is on the result detail, the model card's
latency matrix, the report and the CSV (:mod:`lwdash.analysis.latency_matrix`).

Standard library only at import time (no torch, no pandas).
"""
from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

from lwdash.measure.metrics import LATENCY_STATS, latency_key
from lwdash.runtimes import BEST, LATENCY_BATCHES, list_runtimes, registry_revision

__all__ = [
    "BEST",
    "BEST_TITLE",
    "LARGE_BATCH",
    "PRIMARY_RUNTIME",
    "VIEWS",
    "MetricKind",
    "MetricSpec",
    "catalogue",
    "latency_key",
    "latency_metrics",
    "live_view",
    "metric",
    "metrics_for",
    "objectives",
    "speedup_key",
    "speedups",
    "table_format",
    "table_text",
    "table_value",
]

MetricKind = Literal["fraction", "bytes", "count", "ms", "float"]
#: The views a metric can be listed in (see the module docstring).
VIEWS: tuple[str, ...] = ("axis", "compare", "detail", "card")
#: The runtime of the downloadable ONNX artifact: the headline latency (notes, headline tiles).
PRIMARY_RUNTIME = "ort"
#: The larger of the timed batch sizes: the headline batch.
LARGE_BATCH = max(LATENCY_BATCHES)
#: The title of the ``best`` pseudo-runtime on axes, in objectives and tables.
BEST_TITLE = "Best runtime"

_ALL = frozenset(VIEWS)
# kind -> (shown unit, scale from the stored unit) on chart axes, unless a metric says otherwise
_AXIS_UNITS: dict[str, tuple[str, float]] = {"fraction": ("%", 100.0), "bytes": ("KiB", 1 / 1024), "ms": ("ms", 1.0),
                                             "count": ("", 1.0), "float": ("", 1.0)}
# kind -> (scale, format spec) in tables: fractions as %, bytes as KiB, the rest as stored
_TABLE: dict[str, tuple[float, str]] = {"fraction": (100.0, ".2f"), "bytes": (1 / 1024, ",.1f"), "count": (1.0, ",.0f"),
                                        "ms": (1.0, ".4g"), "float": (1.0, ".4f")}


@dataclass(frozen=True)
class MetricSpec:
    """How one metric is named, measured against its baseline and shown.

    Attributes:
        key: the flat key (a :class:`~lwdash.measure.metrics.Metrics` field or a latency key).
        label: the long title without unit (chart axes): ``"ONNX Runtime latency, batch 32"``.
        unit: the unit shown after scaling (``%``, ``KiB``, ``thousands``, ``ms`` ...).
        scale: factor from the stored unit (fractions, bytes, counts, ms) to ``unit`` on axes.
        direction: ``"max"`` when larger is better, ``"min"`` otherwise.
        kind: ``fraction`` | ``bytes`` | ``count`` | ``ms`` | ``float``: fixes the format in
            tables (:func:`table_text`) and the model card, and how a change is told (points for
            fractions, a ratio otherwise, a speed-up for times).
        short: a compact name (3-D axes, narrow tables): ``"ORT b32 latency"``.
        row: the row label of metric tables (side by side, result detail).
        card: the model card's row label.
        objective: the label as a search objective; ``""`` when a search cannot optimise it.
        views: the views that list it (:data:`VIEWS`).
        ratio: the results frame's ratio-to-baseline column (``"size_ratio"``), ``""`` if none.
        runtime / batch / stat: the runtime key, batch size and statistic of a latency metric.
    """

    key: str
    label: str
    unit: str
    scale: float
    direction: Literal["max", "min"]
    kind: MetricKind
    short: str
    row: str
    card: str
    objective: str = ""
    views: frozenset[str] = _ALL
    ratio: str = ""
    runtime: str | None = None
    batch: int | None = None
    stat: str | None = None

    @property
    def accuracy_like(self) -> bool:
        """Changes are told in percentage points (no ratio)."""
        return self.kind == "fraction"

    @property
    def axis_unit(self) -> str:
        """The unit on a chart axis, with the statistic for latency: ``"median, ms"``."""
        return f"{self.stat}, {self.unit}" if self.stat else self.unit


def _scalar(key: str, label: str, kind: MetricKind, direction: Literal["max", "min"], *, short: str, row: str,
            card: str, objective: str = "", unit: str | None = None, scale: float | None = None, ratio: str = "",
            views: frozenset[str] = _ALL) -> MetricSpec:
    default_unit, default_scale = _AXIS_UNITS[kind]
    return MetricSpec(key=key, label=label, unit=default_unit if unit is None else unit,
                      scale=default_scale if scale is None else scale, direction=direction, kind=kind, short=short,
                      row=row, card=card, objective=objective, views=views, ratio=ratio)


_SCALARS: tuple[MetricSpec, ...] = (
    _scalar("top1_acc", "Top-1 accuracy, ONNX Runtime, test split", "fraction", "max", short="top-1 ORT",
            row="Top-1 accuracy, ONNX Runtime (%)", card="Top-1 accuracy (ONNX Runtime)",
            objective="top-1 accuracy (ONNX Runtime)"),
    _scalar("torch_top1_acc", "Top-1 accuracy, PyTorch, test split", "fraction", "max", short="top-1 PyTorch",
            row="Top-1 accuracy, PyTorch (%)", card="Top-1 accuracy (PyTorch)"),
    _scalar("agreement", "Agreement with the original's predictions", "fraction", "max", short="agreement",
            row="Agreement with the original (%)", card="Agreement with the baseline's predictions"),
    _scalar("loss", "Cross-entropy loss, test split", "float", "min", short="loss", row="Loss (cross-entropy)",
            card="Cross-entropy loss", unit="nats"),
    _scalar("onnx_bytes", "ONNX file size", "bytes", "min", short="ONNX size", row="ONNX file (KiB)",
            card="model.onnx size", objective="ONNX file size", ratio="size_ratio"),
    _scalar("pt2_bytes", "PyTorch .pt2 file size", "bytes", "min", short=".pt2 size", row="PyTorch .pt2 file (KiB)",
            card="model.pt2 size", ratio="pt2_size_ratio"),
    _scalar("compressed_bytes", "ONNX file size after zlib compression", "bytes", "min", short="zlib size",
            row="ONNX after zlib (KiB)", card="model.onnx after zlib", objective="ONNX size after zlib",
            ratio="compressed_ratio"),
    _scalar("sparse_bytes", "Weight size under a sparse (index + value) encoding", "bytes", "min", short="sparse size",
            row="Sparse encoding (KiB)", card="weights, sparse encoding", objective="weights under a sparse encoding",
            ratio="sparse_ratio"),
    _scalar("params_count", "Parameters", "count", "min", short="params", row="Parameters", card="parameters",
            unit="thousands", scale=1e-3, ratio="params_ratio"),
    _scalar("nonzero_params_count", "Nonzero parameters", "count", "min", short="nonzero params",
            row="Nonzero parameters", card="non-zero parameters", unit="thousands", scale=1e-3, ratio="nonzero_ratio"),
    _scalar("macs", "Multiply-accumulates per sample", "count", "min", short="MACs", row="MACs per sample",
            card="MACs per sample", objective="MACs per sample", unit="millions", scale=1e-6, ratio="macs_ratio"),
)


def _runtime_views(batch: int, stat: str) -> frozenset[str]:
    # The result detail and the model card show each runtime in the latency matrix instead.
    if stat != "median":
        return frozenset({"axis"})
    return frozenset({"axis", "compare", "card"}) if batch == LARGE_BATCH else frozenset({"axis"})


def _latency_specs() -> tuple[MetricSpec, ...]:
    out = []
    names = [(rt.key, rt.title, rt.short, rt.row_title) for rt in list_runtimes()]
    for key, title, short, row_title in [(BEST, BEST_TITLE, "best", BEST_TITLE), *names]:
        for batch in LATENCY_BATCHES:
            for stat in LATENCY_STATS:
                median = stat == "median"
                views = _ALL if key == BEST and median else frozenset({"axis", "detail"}) if key == BEST else (
                    _runtime_views(batch, stat))
                out.append(MetricSpec(
                    key=latency_key(key, batch, stat), label=f"{title} latency, batch {batch}", unit="ms",
                    scale=1.0, direction="min", kind="ms", short=f"{short} b{batch} {'latency' if median else stat}",
                    row=f"{row_title} batch {batch}, {stat} (ms)", card=f"{row_title} latency, batch {batch} ({stat})",
                    objective=f"{title} latency, batch {batch}" if median else "",
                    views=views, runtime=key, batch=batch, stat=stat,
                ))
    return tuple(out)


_CACHE: dict[str, object] = {}
_CACHE_LOCK = threading.Lock()


def catalogue() -> tuple[MetricSpec, ...]:
    """Every metric, in display order: the scalar figures, the best runtime's latency, then each runtime's
    (batch, then statistic)."""
    rev = registry_revision()
    with _CACHE_LOCK:
        cached = _CACHE.get("specs")
        if cached is not None and _CACHE.get("rev") == rev:
            return cached  # type: ignore[return-value]
        specs = _SCALARS + _latency_specs()
        _CACHE.clear()
        _CACHE.update(rev=rev, specs=specs, by_key={s.key: s for s in specs})
        return specs


def _by_key() -> dict[str, MetricSpec]:
    catalogue()
    return _CACHE["by_key"]  # type: ignore[return-value]


def metric(key: str) -> MetricSpec:
    """The spec of ``key``.

    Raises:
        ValueError: an unknown metric (the message lists the known ones).
    """
    try:
        return _by_key()[key]
    except KeyError:
        raise ValueError(f"unknown metric {key!r}; choose one of {sorted(_by_key())}") from None


def metrics_for(view: str) -> tuple[MetricSpec, ...]:
    """The metrics ``view`` lists, in display order.

    Raises:
        ValueError: an unknown view.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; views: {', '.join(VIEWS)}")
    return tuple(s for s in catalogue() if view in s.views)


def latency_metrics(*, runtime: str | None = None, batch: int | None = None,
                    stat: str | None = None) -> tuple[MetricSpec, ...]:
    """The latency metrics, optionally of one runtime, batch or statistic."""
    return tuple(s for s in catalogue() if s.runtime is not None and runtime in (None, s.runtime)
                 and batch in (None, s.batch) and stat in (None, s.stat))


def objectives() -> tuple[MetricSpec, ...]:
    """The metrics a search can optimise (those with an ``objective`` label), in display order."""
    return tuple(s for s in catalogue() if s.objective)


def speedup_key(runtime: str, batch: int) -> str:
    """The results frame's speed-up column of a runtime and batch: baseline median / median (``ort_b32_speedup``)."""
    return f"{runtime}_b{int(batch)}_speedup"


def speedups() -> dict[str, MetricSpec]:
    """Speed-up column -> the median latency metric it is computed from, for every runtime and batch."""
    return {speedup_key(str(s.runtime), int(s.batch or 0)): s for s in latency_metrics(stat="median")}


def table_value(spec: MetricSpec, v: float) -> float:
    """A stored value in the unit tables show: fractions as %, bytes as KiB, the rest unchanged."""
    return float(v) * _TABLE[spec.kind][0]


def table_format(spec: MetricSpec) -> str:
    """The format spec of :func:`table_value` numbers (``".2f"``, ``",.1f"``, ``",.0f"``, ``".4g"``, ``".4f"``)."""
    return _TABLE[spec.kind][1]


def table_text(spec: MetricSpec, shown: float, missing: str = "-") -> str:
    """A :func:`table_value` number as text, ``missing`` when it is not finite."""
    return format(shown, table_format(spec)) if math.isfinite(shown) else missing


V = TypeVar("V")


class _LiveView(Mapping[str, V]):
    """A read-only mapping rebuilt whenever the runtime registry changes (so late registrations show)."""

    def __init__(self, build: Callable[[], dict[str, V]]) -> None:
        self._build = build
        self._rev = -1
        self._data: dict[str, V] = {}
        self._lock = threading.Lock()

    def _current(self) -> dict[str, V]:
        rev = registry_revision()
        if rev != self._rev:
            with self._lock:
                if rev != self._rev:
                    self._data, self._rev = self._build(), rev
        return self._data

    def __getitem__(self, key: str) -> V:
        return self._current()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._current()))

    def __len__(self) -> int:
        return len(self._current())

    def __repr__(self) -> str:
        return f"live_view({self._current()!r})"


def live_view(build: Callable[[], dict[str, V]]) -> Mapping[str, V]:
    """A mapping that calls ``build()`` again after every change to the runtime registry.

    Views that keep a module-level table keyed by metric (figure axes, search objectives) use
    it, so a runtime registered after they were imported is in their table too.
    """
    return _LiveView(build)
