"""The Optuna sampler, rebuilt from the store on every step: distributions, the study of every known trial, the ask.

Optuna is imported only inside these functions, while a search is advanced.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lwdash.search.config import SearchConfig
from lwdash.search.outcomes import OPEN_STATUSES, objective_values

if TYPE_CHECKING:
    from lwdash.store.records import SearchTrialRecord

__all__ = ["ask_trial"]


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
        if t.job_status in OPEN_STATUSES:
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


def ask_trial(cfg: SearchConfig, trials: Sequence[SearchTrialRecord]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The next trial's params and the sampler's bookkeeping for it."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ExperimentalWarning (GPSampler, multivariate TPE), independent sampling
        study = _rebuild(cfg, trials)
        trial = study.ask(_distributions(cfg))
        frozen = study._storage.get_trial(trial._trial_id)
    return {k: _plain(v) for k, v in trial.params.items()}, dict(frozen.system_attrs)

