"""The record every result (and its baseline) is measured into.

Scalar figures are fields with their units in their names. Latency is a tuple of
:class:`LatencyRecord` s, one per (runtime, batch) that was timed, so a new runtime adds records,
not fields. Flat views use one key per figure, ``<runtime>_b<batch>_<median|p90>_ms`` for latency
(:func:`latency_key`), the keys of the metric catalogue (:mod:`lwdash.measure.catalogue`).

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
    "LATENCY_STATS",
    "LatencyRecord",
    "Metrics",
    "flatten",
    "latency_key",
    "parse_latency_key",
]

LatencyStat = Literal["median", "p90"]
#: The statistics kept of each timed configuration.
LATENCY_STATS: tuple[LatencyStat, ...] = ("median", "p90")
_LATENCY_KEY = re.compile(r"^(?P<runtime>[a-z][a-z0-9_]*?)_b(?P<batch>[0-9]+)_(?P<stat>median|p90)_ms$")


def latency_key(runtime: str, batch: int, stat: str = "median") -> str:
    """The flat key of one latency figure: ``latency_key("ort", 32) == "ort_b32_median_ms"``."""
    if stat not in LATENCY_STATS:
        raise ValueError(f"latency statistic must be one of {LATENCY_STATS}, got {stat!r}")
    return f"{runtime}_b{int(batch)}_{stat}_ms"


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
    """

    runtime: str
    batch: int
    median_ms: float
    p90_ms: float

    def stat_ms(self, stat: str) -> float:
        """``median_ms`` or ``p90_ms`` by name."""
        if stat not in LATENCY_STATS:
            raise ValueError(f"latency statistic must be one of {LATENCY_STATS}, got {stat!r}")
        return float(self.median_ms if stat == "median" else self.p90_ms)

    def to_dict(self) -> dict[str, Any]:
        return {"runtime": self.runtime, "batch": int(self.batch), "median_ms": float(self.median_ms),
                "p90_ms": float(self.p90_ms)}


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
        """The record of ``runtime`` at ``batch``, or ``None`` when that was not timed."""
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
        timed = [r for r in self.latency if r.batch == batch and math.isfinite(r.stat_ms(stat))]
        return min(timed, key=lambda r: r.stat_ms(stat)) if timed else None

    @property
    def runtimes(self) -> tuple[str, ...]:
        """The runtimes that have at least one record, in the order they were timed."""
        return tuple(dict.fromkeys(r.runtime for r in self.latency))

    # ------------------------------------------------------------------ flat and stored forms

    def value(self, key: str) -> float:
        """Any figure by its flat key: a scalar field or a latency key (NaN when that latency was not timed).

        Raises:
            KeyError: ``key`` is neither.
        """
        if key in _SCALARS:
            return float(getattr(self, key))
        parsed = parse_latency_key(key)
        if parsed is None:
            raise KeyError(f"{key!r} is not a measured figure")
        return self.latency_ms(*parsed)

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
                                float(r.get("p90_ms", math.nan)))
            records[(rec.runtime, rec.batch)] = rec
        legacy: dict[tuple[str, int], dict[str, float]] = {}
        for k, v in d.items():
            parsed = parse_latency_key(k)
            if parsed is not None and (parsed[0], parsed[1]) not in records:
                legacy.setdefault((parsed[0], parsed[1]), {})[parsed[2]] = float(v)
        for (runtime, batch), stats in legacy.items():
            records[(runtime, batch)] = LatencyRecord(runtime, batch, stats.get("median", math.nan),
                                                      stats.get("p90", math.nan))
        return cls(**{k: d[k] for k in _SCALARS if k in d}, latency=tuple(records.values()),
                   latency_notes={str(k): str(v) for k, v in dict(d.get("latency_notes") or {}).items()})


_SCALARS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Metrics) if f.name not in ("latency", "latency_notes"))


def flatten(d: Mapping[str, Any]) -> dict[str, Any]:
    """A stored metrics dict (either shape, possibly partial) with one key per figure.

    ``latency`` records become ``<runtime>_b<batch>_<median|p90>_ms`` keys; flat latency keys
    (the shape stored before the runtime registry) and every other key pass through;
    ``latency_notes`` is dropped.
    """
    out = {k: v for k, v in d.items() if k not in ("latency", "latency_notes")}
    for r in d.get("latency") or ():
        for stat in LATENCY_STATS:
            out[latency_key(str(r["runtime"]), int(r["batch"]), stat)] = float(r.get(f"{stat}_ms", math.nan))
    return out
