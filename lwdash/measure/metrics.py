"""The record every result (and its baseline) is measured into.

Scalar figures are fields with their units in their names. Latency is a tuple of
:class:`LatencyRecord` s, one per (runtime, batch) that was timed, so a new runtime adds records,
not fields. Flat views use one key per figure, ``<runtime>_b<batch>_<median|p90>_ms`` for latency
(:func:`latency_key`), the keys of the metric catalogue (:mod:`lwdash.measure.catalogue`), plus
``<runtime>_b<batch>_compile_s`` (:func:`compile_key`). The pseudo-runtime ``best`` is the
fastest timed runtime at a batch (by median): ``best_b32_median_ms`` is its median,
``best_b32_p90_ms`` that same runtime's p90 and ``best_b32_runtime`` its key.

Stored records of both shapes load: today's ``{"latency": [{"runtime", "batch", "median_ms",
"p90_ms"}, ...]}`` and the flat fields written before the runtime registry (``ort_b32_median_ms``,
``torch_b1_p90_ms``, ...). Standard library only.
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "BEST",
    "LATENCY_STATS",
    "LatencyRecord",
    "Metrics",
    "best_runtime_key",
    "compile_key",
    "flatten",
    "latency_key",
    "parse_latency_key",
]

#: The pseudo-runtime "fastest timed runtime of this record" (the same constant as ``lwdash.runtimes.BEST``).
BEST = "best"

LatencyStat = Literal["median", "p90"]
#: The statistics kept of each timed configuration.
LATENCY_STATS: tuple[LatencyStat, ...] = ("median", "p90")
_COMPILE_KEY = re.compile(r"^(?P<runtime>[a-z][a-z0-9_]*?)_b(?P<batch>[0-9]+)_compile_s$")
_LATENCY_KEY = re.compile(r"^(?P<runtime>[a-z][a-z0-9_]*?)_b(?P<batch>[0-9]+)_(?P<stat>median|p90)_ms$")


def latency_key(runtime: str, batch: int, stat: str = "median") -> str:
    """The flat key of one latency figure: ``latency_key("ort", 32) == "ort_b32_median_ms"``."""
    if stat not in LATENCY_STATS:
        raise ValueError(f"latency statistic must be one of {LATENCY_STATS}, got {stat!r}")
    return f"{runtime}_b{int(batch)}_{stat}_ms"


def compile_key(runtime: str, batch: int) -> str:
    """The flat key of a runtime's compile time at a batch: ``compile_key("inductor", 32) == "inductor_b32_compile_s"``."""
    return f"{runtime}_b{int(batch)}_compile_s"


def best_runtime_key(batch: int) -> str:
    """The flat key naming the fastest runtime at a batch: ``"best_b32_runtime"``."""
    return f"{BEST}_b{int(batch)}_runtime"


def parse_latency_key(key: str) -> tuple[str, int, str] | None:
    """``(runtime, batch, stat)`` of a flat latency key, or ``None`` when ``key`` is not one."""
    m = _LATENCY_KEY.match(key)
    return None if m is None else (m["runtime"], int(m["batch"]), m["stat"])


@dataclass(frozen=True)
class LatencyRecord:
    """Wall-clock latency of one runtime at one batch size, after warm-up, at the record's thread count.

    Attributes:
        runtime: the runtime's registry key (``"ort"``, ``"torch"``, ...).
        batch: samples per forward pass.
        median_ms: median milliseconds per forward pass.
        p90_ms: 90th percentile.
        compile_s: seconds from the artifact to the first result at this batch: loading,
            compiling (for runtimes that compile: OpenVINO, torch.compile, TVM) and the first
            run; NaN when not recorded (records stored before it was).
    """

    runtime: str
    batch: int
    median_ms: float
    p90_ms: float
    compile_s: float = math.nan

    def stat_ms(self, stat: str) -> float:
        """``median_ms`` or ``p90_ms`` by name."""
        if stat not in LATENCY_STATS:
            raise ValueError(f"latency statistic must be one of {LATENCY_STATS}, got {stat!r}")
        return float(self.median_ms if stat == "median" else self.p90_ms)

    def to_dict(self) -> dict[str, Any]:
        return {"runtime": self.runtime, "batch": int(self.batch), "median_ms": float(self.median_ms),
                "p90_ms": float(self.p90_ms), "compile_s": float(self.compile_s)}


@dataclass(frozen=True)
class Metrics:
    """Measured figures of one model; units are in the field names.

    Accuracy is measured on the downloadable ONNX artifact in ONNX Runtime (``top1_acc``) and on
    the PyTorch form (``torch_top1_acc``), both on the test split. Latency is wall-clock, after
    warm-up, at a fixed thread count (``threads``), one :class:`LatencyRecord` per registered
    runtime and batch size; ``latency_notes`` says, per runtime, why it measured nothing.
    """

    top1_acc: float  # ONNX Runtime, test split, fraction in [0, 1]
    torch_top1_acc: float  # PyTorch form, test split
    loss: float  # mean cross-entropy of the ONNX artifact on the test split
    agreement: float  # fraction of test samples where the prediction equals the baseline's
    onnx_bytes: int  # serialized model.onnx
    pt2_bytes: int  # serialized model.pt2 (0 when the PyTorch form could not be exported)
    params_count: int
    nonzero_params_count: int
    sparse_bytes: int  # weights under a sparse (index + value) encoding
    compressed_bytes: int  # model.onnx after zlib compression
    macs: int  # multiply-accumulates for one sample
    threads: int
    test_samples: int
    latency: tuple[LatencyRecord, ...] = ()
    latency_notes: dict[str, str] = field(default_factory=dict)  # runtime key -> why it was not timed

    # ------------------------------------------------------------------ latency

    def latency_record(self, runtime: str, batch: int) -> LatencyRecord | None:
        """The record of ``runtime`` at ``batch`` (``best``: the fastest one), or ``None`` when that was not timed."""
        if runtime == BEST:
            return self.best_latency(batch)
        for r in self.latency:
            if r.runtime == runtime and r.batch == batch:
                return r
        return None

    def latency_ms(self, runtime: str, batch: int, stat: str = "median") -> float:
        """Milliseconds of ``runtime`` at ``batch`` (``stat``: median or p90); NaN when not timed."""
        r = self.latency_record(runtime, batch)
        return math.nan if r is None else r.stat_ms(stat)

    def best_latency(self, batch: int, stat: str = "median") -> LatencyRecord | None:
        """The fastest runtime's record at ``batch`` by ``stat`` (ties: the first timed), or ``None``."""
        return _best(self.latency, batch, stat)

    @property
    def runtimes(self) -> tuple[str, ...]:
        """The runtimes that have at least one record, in the order they were timed."""
        return tuple(dict.fromkeys(r.runtime for r in self.latency))

    # ------------------------------------------------------------------ flat and stored forms

    def value(self, key: str) -> float:
        """Any figure by its flat key: a scalar field, a latency or compile-time key (NaN when not timed).

        Raises:
            KeyError: ``key`` is neither.
        """
        if key in _SCALARS:
            return float(getattr(self, key))
        parsed = parse_latency_key(key)
        if parsed is not None:
            return self.latency_ms(*parsed)
        m = _COMPILE_KEY.match(key)
        if m is not None:
            r = self.latency_record(m["runtime"], int(m["batch"]))
            return math.nan if r is None else float(r.compile_s)
        raise KeyError(f"{key!r} is not a measured figure")

    def flat(self) -> dict[str, Any]:
        """One key per figure: the scalar fields, then ``<runtime>_b<batch>_<stat>_ms`` for every record."""
        return flatten(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The stored (JSON-safe) form: scalar fields, ``latency`` records and ``latency_notes``."""
        out: dict[str, Any] = {name: getattr(self, name) for name in _SCALARS}
        out["latency"] = [r.to_dict() for r in self.latency]
        out["latency_notes"] = dict(self.latency_notes)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Metrics:
        """Read a stored record of either shape (see the module docstring); unknown keys are ignored.

        Raises:
            TypeError: a scalar field is missing.
        """
        records: dict[tuple[str, int], LatencyRecord] = {}
        for r in d.get("latency") or ():
            rec = LatencyRecord(str(r["runtime"]), int(r["batch"]), float(r.get("median_ms", math.nan)),
                                float(r.get("p90_ms", math.nan)), float(r.get("compile_s", math.nan)))
            records[(rec.runtime, rec.batch)] = rec
        legacy: dict[tuple[str, int], dict[str, float]] = {}
        for k, v in d.items():
            parsed = parse_latency_key(k)
            if parsed is not None and (parsed[0], parsed[1]) not in records:
                legacy.setdefault((parsed[0], parsed[1]), {})[parsed[2]] = float(v)
        for (runtime, batch), stats in legacy.items():
            if runtime != BEST:  # a flat view's derived "best" keys are not records
                records[(runtime, batch)] = LatencyRecord(runtime, batch, stats.get("median", math.nan),
                                                          stats.get("p90", math.nan))
        return cls(**{k: d[k] for k in _SCALARS if k in d}, latency=tuple(records.values()),
                   latency_notes={str(k): str(v) for k, v in dict(d.get("latency_notes") or {}).items()})


_SCALARS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Metrics) if f.name not in ("latency", "latency_notes"))


def _best(records: Any, batch: int, stat: str = "median") -> LatencyRecord | None:
    timed = [r for r in records if r.batch == batch and r.runtime != BEST and math.isfinite(r.stat_ms(stat))]
    return min(timed, key=lambda r: r.stat_ms(stat)) if timed else None


def flatten(d: Mapping[str, Any]) -> dict[str, Any]:
    """A stored metrics dict (either shape, possibly partial) with one key per figure.

    ``latency`` records become ``<runtime>_b<batch>_<median|p90>_ms`` keys and, where recorded,
    ``<runtime>_b<batch>_compile_s``; flat latency keys (the shape stored before the runtime
    registry) and every other key pass through; then, per timed batch, the fastest runtime's
    figures as ``best_b<batch>_median_ms`` / ``_p90_ms`` and its key as ``best_b<batch>_runtime``.
    ``latency_notes`` is dropped.
    """
    out = {k: v for k, v in d.items() if k not in ("latency", "latency_notes")}
    records = []
    for r in d.get("latency") or ():
        rec = LatencyRecord(str(r["runtime"]), int(r["batch"]), float(r.get("median_ms", math.nan)),
                            float(r.get("p90_ms", math.nan)), float(r.get("compile_s", math.nan)))
        records.append(rec)
        for stat in LATENCY_STATS:
            out[latency_key(rec.runtime, rec.batch, stat)] = rec.stat_ms(stat)
        if math.isfinite(rec.compile_s):
            out[compile_key(rec.runtime, rec.batch)] = rec.compile_s
    legacy: dict[tuple[str, int], dict[str, float]] = {}
    for k, v in out.items():
        parsed = parse_latency_key(k)
        if parsed is not None and parsed[0] != BEST and not any(r.runtime == parsed[0] and r.batch == parsed[1]
                                                                 for r in records):
            legacy.setdefault((parsed[0], parsed[1]), {})[parsed[2]] = float(v)
    records += [LatencyRecord(rt, b, s.get("median", math.nan), s.get("p90", math.nan)) for (rt, b), s in legacy.items()]
    for batch in dict.fromkeys(r.batch for r in records):
        best = _best(records, batch)
        if best is not None:
            for stat in LATENCY_STATS:
                out[latency_key(BEST, batch, stat)] = best.stat_ms(stat)
            out[best_runtime_key(batch)] = best.runtime
    return out
