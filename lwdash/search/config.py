"""What a search is: the knobs it explores (:class:`KnobRange`), its objectives, sampler and budget (:class:`SearchConfig`)."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lwdash.measure.catalogue import live_view, objectives

__all__ = ["OBJECTIVES", "SAMPLERS", "KnobRange", "SearchConfig"]

#: Objectives a search can optimise: metric key -> (direction, label). A live view of the metric
#: catalogue's objectives (:func:`lwdash.measure.catalogue.objectives`): accuracy, sizes, MACs and
#: every registered runtime's median latency at every batch, and the best runtime's (``best_b32_median_ms``:
#: each trial's fastest runtime).
OBJECTIVES: Mapping[str, tuple[str, str]] = live_view(lambda: {s.key: (s.direction, s.objective) for s in objectives()})
#: Sampler key -> what it is.
SAMPLERS: dict[str, str] = {
    "tpe": "TPE (tree-structured Parzen estimator, multivariate): Optuna's default, good from ~10 trials",
    "gp": "Gaussian-process Bayesian optimisation: the most sample-efficient for a few numeric knobs",
    "nsga2": "NSGA-II (genetic): spreads trials along the whole front; wants many trials",
    "random": "random sampling: the baseline every other sampler should beat",
}
_MAX_TRIALS = 200
_MAX_PARALLEL = 16


@dataclass(frozen=True)
class KnobRange:
    """Where a search may put one knob: a numeric interval (optionally log-scaled) or a set of choices.

    Attributes:
        name: the knob (a field of the technique's config).
        low / high: the interval's ends, both included (numeric knobs).
        log: sample the interval on a log scale (learning rates, ranks).
        integer: the knob takes whole numbers.
        choices: the values of a categorical knob (``Literal`` or ``bool``); empty for numeric ones.
    """

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.choices:
            if len(set(map(repr, self.choices))) != len(self.choices):
                raise ValueError(f"{self.name}: the choices {list(self.choices)} repeat a value")
            return
        if self.low is None or self.high is None:
            raise ValueError(f"{self.name}: give a range low:high, or at least one value to try")
        low, high = float(self.low), float(self.high)
        if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
            raise ValueError(f"{self.name}: the range must have low < high, got {self.low}:{self.high}")
        if self.log and low <= 0:
            raise ValueError(f"{self.name}: a log-scaled range must be above 0, got {self.low}:{self.high}")
        if self.integer and (low != int(low) or high != int(high)):
            raise ValueError(f"{self.name}: an integer knob needs whole-number ends, got {self.low}:{self.high}")

    def to_dict(self) -> dict[str, Any]:
        if self.choices:
            return {"name": self.name, "choices": list(self.choices)}
        return {"name": self.name, "low": self.low, "high": self.high, "log": self.log, "integer": self.integer}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> KnobRange:
        if d.get("choices"):
            return cls(name=str(d["name"]), choices=tuple(d["choices"]))
        return cls(name=str(d["name"]), low=d.get("low"), high=d.get("high"), log=bool(d.get("log", False)),
                   integer=bool(d.get("integer", False)))

    def describe(self) -> str:
        """``amount in [0.1, 0.95]``, ``lr in [0.0001, 0.01] (log)``, ``scope in {global, per_layer}``."""
        if self.choices:
            return f"{self.name} in {{{', '.join(map(str, self.choices))}}}"
        return f"{self.name} in [{self.low:g}, {self.high:g}]" + (" (log)" if self.log else "")


@dataclass(frozen=True)
class SearchConfig:
    """What a search explores, for which objectives, with which sampler and how many trials.

    Attributes:
        technique: the technique key (its config is built from ``fixed`` plus the searched knobs).
        space: the searched knobs, one :class:`KnobRange` each.
        fixed: values of other knobs (the rest keep their defaults).
        objectives: two or three :data:`OBJECTIVES` keys; directions come with them.
        sampler: a :data:`SAMPLERS` key.
        trials: how many trials to run in all.
        parallel: how many trials may be queued or running at once (the worker's concurrency
            decides how many really run together).
        seed: the sampler's seed (trial ``k`` uses ``seed`` and ``k``) and every trial job's seed.
        version: the technique config's format version.
    """

    technique: str
    space: tuple[KnobRange, ...]
    fixed: tuple[tuple[str, Any], ...] = ()
    objectives: tuple[str, ...] = ("top1_acc", "onnx_bytes")
    sampler: str = "tpe"
    trials: int = 12
    parallel: int = 1
    seed: int = 0
    version: int = 1

    def __post_init__(self) -> None:
        if not self.space:
            raise ValueError("a search needs at least one knob to explore")
        names = [k.name for k in self.space]
        if len(set(names)) != len(names):
            raise ValueError(f"a knob is searched twice: {names}")
        both = set(names) & {k for k, _ in self.fixed}
        if both:
            raise ValueError(f"knob(s) {sorted(both)} are both searched and fixed")
        unknown = [o for o in self.objectives if o not in OBJECTIVES]
        if unknown:
            raise ValueError(f"unknown objective(s) {unknown}; accepted: {', '.join(OBJECTIVES)}")
        if not 2 <= len(self.objectives) <= 3 or len(set(self.objectives)) != len(self.objectives):
            raise ValueError(f"a search takes two or three different objectives, got {list(self.objectives)}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; accepted: {', '.join(SAMPLERS)}")
        if not 1 <= self.trials <= _MAX_TRIALS:
            raise ValueError(f"trials must be from 1 to {_MAX_TRIALS}, got {self.trials}")
        if not 1 <= self.parallel <= min(_MAX_PARALLEL, self.trials):
            raise ValueError(f"parallel must be from 1 to {min(_MAX_PARALLEL, self.trials)} (and at most the "
                             f"number of trials), got {self.parallel}")

    @property
    def directions(self) -> tuple[str, ...]:
        return tuple(OBJECTIVES[o][0] for o in self.objectives)

    def to_dict(self) -> dict[str, Any]:
        return {"technique": self.technique, "version": self.version, "space": [k.to_dict() for k in self.space],
                "fixed": dict(self.fixed), "objectives": list(self.objectives), "sampler": self.sampler,
                "trials": self.trials, "parallel": self.parallel, "seed": self.seed}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SearchConfig:
        return cls(
            technique=str(d["technique"]), version=int(d.get("version", 1)),
            space=tuple(KnobRange.from_dict(k) for k in d.get("space", ())),
            fixed=tuple(dict(d.get("fixed") or {}).items()), objectives=tuple(d.get("objectives", ())),
            sampler=str(d.get("sampler", "tpe")), trials=int(d.get("trials", 12)),
            parallel=int(d.get("parallel", 1)), seed=int(d.get("seed", 0)),
        )

    def describe(self) -> str:
        """One line: the technique, the space, the objectives and the sampler."""
        objectives = " vs ".join(OBJECTIVES[o][1] for o in self.objectives)
        fixed = f" ({', '.join(f'{k}={v}' for k, v in self.fixed)})" if self.fixed else ""
        return (f"{self.technique}{fixed}: {'; '.join(k.describe() for k in self.space)} · {objectives} · "
                f"{self.sampler}, {self.trials} trials")
