"""Multi-objective search: a sampler proposes configs of one technique, each runs as a job, the front fills.

A search explores some knobs of one technique (e.g. ``magnitude_pruning``'s ``amount`` in
[0.1, 0.95] and its ``scope``) for two or three objectives (top-1 accuracy against ONNX size,
latency or MACs) with an Optuna sampler: TPE, GP-based Bayesian optimisation, NSGA-II or random.

Every trial is an ordinary compression job (``JobSpec.search_id`` says whose): it runs on the
worker like any other (its own process or a Ray task, the same limits, cancel and retry), is
measured against its baseline in the same process, and lands as a result on the Compare page.
A failed trial is a failed job, told to the sampler as a failure; the search goes on.

No sampler state lives in memory between steps. On every pass a worker (the local one or the
Ray driver) calls :func:`advance_searches`: for each running search it rebuilds the study from
the store (finished trials with their measured objectives, open ones as running, each with the
sampler's own bookkeeping kept at ask time), asks for the next trial while fewer than
``parallel`` are open, and queues it; :meth:`~lwdash.store.SqliteStore.add_search_trial` adds
the trial and its job in one transaction, so two workers cannot queue the same trial twice.
Trial ``k`` asks a sampler seeded with ``seed`` and ``k``: a search is reproducible, and a
worker restarted mid-search picks it up where the store says it stands.

Optuna is imported only while a search is advanced; this module imports no torch.
"""
from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lwdash.jobs.spec import JobSpec, JobStatus
from lwdash.measure.catalogue import live_view, objectives
from lwdash.measure.metrics import flatten
from lwdash.pareto import hypervolume_2d, pareto_mask
from lwdash.store.records import StoreBusy

if TYPE_CHECKING:
    from lwdash.store.records import SearchRecord, SearchTrialRecord
    from lwdash.store.sqlite import SqliteStore
    from lwdash.techniques.base import FieldSpec

__all__ = [
    "OBJECTIVES",
    "SAMPLERS",
    "KnobRange",
    "SearchConfig",
    "advance",
    "advance_searches",
    "check_search",
    "default_space",
    "knob_range",
    "midpoint_params",
    "search_summary",
    "searchable_knobs",
    "trial_runtimes",
    "trial_technique",
]

log = logging.getLogger("lwdash.search")

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
#: A search whose first trials all fail stops after this many: its config does not fit the model.
_FAILURES_BEFORE_GIVING_UP = 3
_OPEN = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


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


# ---------------------------------------------------------------------- spaces from the registry


def searchable_knobs(technique: str) -> list[FieldSpec]:
    """The knobs of ``technique`` a search can explore (numbers, choices and toggles; not text or steps)."""
    from lwdash.techniques import form_spec, get_technique

    return [f for f in form_spec(get_technique(technique).config_type) if f.widget not in ("text", "steps")]


def knob_range(spec: FieldSpec, config_type: type | None = None) -> KnobRange:
    """The suggested place to search a knob: its choices, or an interval inside its declared bounds.

    Fractions (an exclusive 0 below, at most 1 above) start at a twentieth of their top; other
    open or wide intervals are searched on a log scale around the default (learning rates);
    whole numbers stop at four times the default (epochs, ranks). With ``config_type``, an
    integer interval's top is lowered until the config accepts it with the other knobs at their
    defaults (``n`` of N:M sparsity stays below ``m``).
    """
    if spec.widget == "toggle":
        return KnobRange(spec.name, choices=(False, True))
    if spec.widget == "select":
        return KnobRange(spec.name, choices=tuple(spec.options))
    integer = spec.widget == "int"
    default = float(spec.default)
    step = float(spec.step) if spec.step else (1.0 if integer else 0.0)
    low = spec.ge if spec.ge is not None else (spec.gt + step if spec.gt is not None and step else spec.gt)
    high = spec.le if spec.le is not None else (spec.lt - step if spec.lt is not None and step else None)
    log = False
    if not integer and (low is None or (low <= 0 < default and spec.ge is None)):
        if high is not None and high <= 1.0 and default >= 0.05:  # a fraction
            low = round(high / 20, 4)
        else:
            low, log = default / 100.0, True
            high = min(high, default * 100.0) if high is not None else default * 100.0
    if high is None:
        high = default * 4.0 if default > 0 else float(low or 0) + 10.0
    if integer:
        low = math.ceil(float(low if low is not None else 0))
        high = math.floor(min(float(high), max(4 * default, low + 10)))
        if config_type is not None:
            high = _largest_accepted(config_type, spec.name, int(low), int(high))
    low, high = float(low or 0.0), float(high)
    if high <= low:
        high = low + (1.0 if integer else max(abs(low), 1.0))
    return KnobRange(spec.name, low=low, high=high, log=log, integer=integer)


def _largest_accepted(config_type: type, name: str, low: int, high: int) -> int:
    from lwdash.techniques import build_config

    for value in range(high, max(low, high - 64) - 1, -1):
        try:
            build_config(config_type, {name: value})
            return value
        except (TypeError, ValueError):
            continue
    return high


def default_space(technique: str) -> tuple[KnobRange, ...]:
    """The sweepable knobs of ``technique`` (the knobs a front is drawn along) over their suggested ranges."""
    from lwdash.techniques import get_technique

    config_type = get_technique(technique).config_type
    knobs = searchable_knobs(technique)
    sweepable = [k for k in knobs if k.sweepable] or knobs[:1]
    return tuple(knob_range(k, config_type) for k in sweepable)


def trial_technique(cfg: SearchConfig, params: Mapping[str, Any]) -> dict[str, Any]:
    """The technique dict (``{"type", "version", "data"}``) of one trial: the fixed knobs plus its params."""
    return {"type": cfg.technique, "version": cfg.version, "data": {**dict(cfg.fixed), **dict(params)}}


def check_search(cfg: SearchConfig) -> None:
    """Check a search against its technique before it is queued (the UI and the CLI call this).

    Raises:
        ValueError: an unknown technique or knob, a knob that cannot be searched, a range outside
            the knob's bounds or a choice it does not take, or fixed values the config refuses.
    """
    from lwdash.techniques import build_config, get_technique

    try:
        tech = get_technique(cfg.technique)
    except KeyError as e:
        raise ValueError(str(e.args[0])) from None
    knobs = {k.name: k for k in searchable_knobs(cfg.technique)}
    for r in cfg.space:
        spec = knobs.get(r.name)
        if spec is None:
            raise ValueError(f"{cfg.technique} has no knob {r.name!r} a search can explore; "
                             f"searchable: {', '.join(knobs)}")
        if r.choices:
            allowed = knob_range(spec).choices
            if not allowed:
                raise ValueError(f"{r.name} is numeric: give it a range low:high, not choices")
            bad = [c for c in r.choices if c not in allowed]
            if bad:
                raise ValueError(f"{r.name} takes {list(allowed)}, not {bad}")
            continue
        if spec.widget in ("select", "toggle"):
            raise ValueError(f"{r.name} takes one of {list(knob_range(spec).choices)}: give choices, not a range")
        for end in (r.low, r.high):
            probe = int(end) if spec.widget == "int" and end is not None else end
            try:  # each end alone must be a valid value of the knob
                build_config(tech.config_type, {**dict(cfg.fixed), r.name: probe})
            except (TypeError, ValueError) as e:
                raise ValueError(f"{r.name} range {r.low:g}:{r.high:g} reaches a value the knob refuses: {e}") from None
    try:
        build_config(tech.config_type, trial_technique(cfg, midpoint_params(cfg))["data"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{cfg.technique} refuses the search's config: {e}") from None


def midpoint_params(cfg: SearchConfig) -> dict[str, Any]:
    """The middle of the space (geometric for log ranges, the first choice of each choice knob): a probe config."""
    out: dict[str, Any] = {}
    for r in cfg.space:
        if r.choices:
            out[r.name] = r.choices[0]
        else:
            assert r.low is not None and r.high is not None
            mid = math.sqrt(r.low * r.high) if r.log else (r.low + r.high) / 2
            out[r.name] = round(mid) if r.integer else mid
    return out


# ---------------------------------------------------------------------- the sampler, rebuilt from the store


def _distributions(cfg: SearchConfig) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for r in cfg.space:
        if r.choices:
            out[r.name] = CategoricalDistribution(list(r.choices))
        elif r.integer:
            out[r.name] = IntDistribution(int(r.low or 0), int(r.high or 0), log=r.log)
        else:
            out[r.name] = FloatDistribution(float(r.low or 0.0), float(r.high or 0.0), log=r.log)
    return out


def _sampler(cfg: SearchConfig, trial: int) -> Any:
    import optuna

    seed = cfg.seed * 100_003 + trial  # a different, reproducible stream for every trial's ask
    startup = max(2, min(10, cfg.trials // 3))
    if cfg.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True, constant_liar=True)
    if cfg.sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)
    if cfg.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(2, min(10, max(cfg.parallel, startup))))
    return optuna.samplers.RandomSampler(seed=seed)


def trial_runtimes(cfg: SearchConfig) -> tuple[str, ...]:
    """The runtimes a trial measures: this worker's selection (``LWDASH_RUNTIMES`` or the defaults) plus every
    runtime an objective reads, so that a latency objective on an opt-in runtime (torch.compile, TVM) is measured.

    ``()`` (the worker's selection) when no objective names a runtime outside it.
    """
    from lwdash.config import get_settings
    from lwdash.measure.catalogue import metric
    from lwdash.runtimes import BEST, resolve_runtimes

    base = resolve_runtimes(get_settings().runtimes)
    wanted = [str(metric(o).runtime) for o in cfg.objectives if metric(o).runtime not in (None, BEST)]
    if all(k in base for k in wanted):
        return ()
    return resolve_runtimes([*base, *wanted])


def objective_values(cfg: SearchConfig, t: SearchTrialRecord) -> list[float] | None:
    """A finished trial's objective values (from its stored result), ``None`` if it has none."""
    if t.job_status != JobStatus.DONE.value or not t.metrics:
        return None
    flat = flatten(t.metrics)  # either stored shape: latency records or the older flat fields
    values = [float(flat.get(o, math.nan)) for o in cfg.objectives]
    return values if all(math.isfinite(v) for v in values) else None


def _rebuild(cfg: SearchConfig, trials: Sequence[SearchTrialRecord]) -> Any:
    """An in-memory study holding every trial the store knows: finished, failed, and still open."""
    import optuna
    from optuna.trial import TrialState, create_trial

    dists = _distributions(cfg)
    directions: list[Any] = ["maximize" if d == "max" else "minimize" for d in cfg.directions]
    study = optuna.create_study(directions=directions, sampler=_sampler(cfg, len(trials)))
    for t in trials:
        params = {k: v for k, v in t.params.items() if k in dists}
        if set(params) != set(dists):
            continue  # proposed before the space changed: it cannot inform this space
        values = objective_values(cfg, t)
        if t.job_status in _OPEN:
            state = TrialState.RUNNING
        else:
            state = TrialState.COMPLETE if values is not None else TrialState.FAIL
        study.add_trial(create_trial(state=state, params=params, distributions=dists,
                                     values=values if state == TrialState.COMPLETE else None,
                                     system_attrs=dict(t.system_attrs)))
    return study


def _plain(v: Any) -> Any:
    """A sampled value as a plain JSON type (numpy scalars out)."""
    if isinstance(v, np.generic):
        return v.item()
    return v


def _ask(cfg: SearchConfig, trials: Sequence[SearchTrialRecord]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The next trial's params and the sampler's bookkeeping for it."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ExperimentalWarning (GPSampler, multivariate TPE), independent sampling
        study = _rebuild(cfg, trials)
        trial = study.ask(_distributions(cfg))
        frozen = study._storage.get_trial(trial._trial_id)
    return {k: _plain(v) for k, v in trial.params.items()}, dict(frozen.system_attrs)


# ---------------------------------------------------------------------- advancing searches (on the worker)


def _trial_label(search: SearchRecord, cfg: SearchConfig, trial: int, params: Mapping[str, Any]) -> str:
    knobs = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
    return f"search {search.id[:6]} trial {trial + 1}/{cfg.trials}: {cfg.technique} {knobs}"


def advance(store: SqliteStore, search: SearchRecord) -> None:
    """One step of one running search: cancel it, end it, or queue its next trials (see the module docstring)."""
    cfg = SearchConfig.from_dict(search.config)
    trials = store.search_trials(search.id)
    open_ = [t for t in trials if t.job_status in _OPEN]
    if search.cancel_requested:
        for t in open_:
            store.cancel(t.job_id)
        done = sum(objective_values(cfg, t) is not None for t in trials)
        store.finish_search(search.id, "cancelled", f"cancelled after {done} measured trial(s)",
                            search_summary(cfg, trials))
        return
    finished = [t for t in trials if t.job_status not in _OPEN]
    measured = [t for t in finished if objective_values(cfg, t) is not None]
    if not measured and len(finished) >= _FAILURES_BEFORE_GIVING_UP and not open_:
        first = (finished[0].error or "no reason recorded").strip().splitlines()[0]
        store.finish_search(search.id, "failed", f"its first {len(finished)} trials all failed: {first}",
                            search_summary(cfg, trials))
        return
    if len(trials) >= cfg.trials and not open_:
        store.finish_search(search.id, "done", f"{len(measured)} of {cfg.trials} trials measured",
                            search_summary(cfg, trials))
        return
    while len(trials) < cfg.trials and len(open_) < cfg.parallel:
        k = len(trials)
        params, attrs = _ask(cfg, trials)
        spec = JobSpec(model_id=search.model_id, data_ref=search.data_ref, technique=trial_technique(cfg, params),
                       seed=cfg.seed, label=_trial_label(search, cfg, k, params), search_id=search.id,
                       runtimes=trial_runtimes(cfg))
        if store.add_search_trial(search.id, k, spec, params, attrs) is None:
            return  # another worker queued it, or the search ended meanwhile
        log.info("search %s: queued trial %d/%d %s", search.id, k + 1, cfg.trials, params)
        trials = store.search_trials(search.id)
        open_ = [t for t in trials if t.job_status in _OPEN]
    message = f"{len(measured)} of {cfg.trials} trials measured, {len(open_)} queued or running"
    if message != search.message:
        store.set_search_message(search.id, message)


def advance_searches(store: SqliteStore) -> int:
    """Advance every running search once; a search that cannot advance is failed with the reason.

    Returns:
        How many searches were running.
    """
    searches = store.list_searches(status="running")
    for search in searches:
        try:
            advance(store, search)
        except StoreBusy:
            raise  # the store is busy: the worker's loop tries again on its next pass
        except Exception as e:  # a broken search must not stop the worker that serves every other job
            log.exception("search %s: failed", search.id)
            store.finish_search(search.id, "failed", f"the search could not go on: {type(e).__name__}: {e}",
                                search_summary(SearchConfig.from_dict(search.config), store.search_trials(search.id))
                                if _config_ok(search) else {})
    return len(searches)


def _config_ok(search: SearchRecord) -> bool:
    try:
        SearchConfig.from_dict(search.config)
    except (KeyError, TypeError, ValueError):
        return False
    return True


# ---------------------------------------------------------------------- what a search has found


def search_summary(cfg: SearchConfig, trials: Sequence[SearchTrialRecord]) -> dict[str, Any]:
    """Every trial with its params and objective values, the Pareto front, and the hypervolume over time.

    The hypervolume (two objectives only) is taken in baseline units: accuracy as a fraction, the
    cost as a ratio to the trial's own baseline, reference point (0, 1): the share of "as
    accurate as possible for a fraction of the cost" that the front covers. It can only grow;
    flat means recent trials found nothing better.

    Returns:
        A JSON-safe dict: ``objectives``, ``directions``, ``trials`` (``trial``, ``job_id``,
        ``result_id``, ``status``, ``params``, ``values``, ``on_front``, ``error``), ``front``
        (trial numbers), ``hypervolume`` (after each trial, ``None`` with three objectives),
        ``measured`` and ``failed`` counts.
    """
    rows = []
    for t in trials:
        values = objective_values(cfg, t)
        ratio = None
        if values is not None and len(cfg.objectives) == 2 and t.baseline:
            base = float(flatten(t.baseline).get(cfg.objectives[1], math.nan))
            ratio = [values[0], values[1] / base] if base > 0 else None
        rows.append((t, values, ratio))
    measured = [(t, v) for t, v, _ in rows if v is not None]
    mask = pareto_mask(np.array([v for _, v in measured], dtype=float).reshape(-1, len(cfg.objectives)),
                       list(cfg.directions)) if measured else np.zeros(0, dtype=bool)
    front = {t.trial for (t, _), on in zip(measured, mask, strict=True) if on}
    hv: list[float] | None = None
    if len(cfg.objectives) == 2:
        hv, seen = [], []
        for _, _, ratio in rows:
            if ratio is not None:
                seen.append(ratio)
            hv.append(hypervolume_2d(np.array(seen), ["max", "min"], [0.0, 1.0]) if seen else 0.0)
    return {
        "objectives": list(cfg.objectives),
        "directions": list(cfg.directions),
        "trials": [
            {"trial": t.trial, "job_id": t.job_id, "result_id": t.result_id, "status": t.job_status,
             "params": t.params, "values": v, "on_front": t.trial in front,
             "error": (t.error or "").strip().splitlines()[0] if t.error else ""}
            for t, v, _ in rows
        ],
        "front": sorted(front),
        "hypervolume": hv,
        "measured": len(measured),
        "failed": sum(1 for t, v, _ in rows if v is None and t.job_status not in _OPEN),
    }
