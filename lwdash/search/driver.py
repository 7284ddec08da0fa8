"""Advancing searches on the worker: cancel, end, or queue the next trials of every running search."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lwdash.jobs.spec import JobSpec
from lwdash.search.config import SearchConfig
from lwdash.search.outcomes import OPEN_STATUSES, objective_values, search_summary
from lwdash.search.sampler import ask_trial
from lwdash.search.space import trial_technique
from lwdash.store.records import StoreBusy

if TYPE_CHECKING:
    from lwdash.store.records import SearchRecord
    from lwdash.workspace import Store

__all__ = ["advance", "advance_searches", "trial_runtimes"]

log = logging.getLogger("lwdash.search")

#: A search whose first trials all fail stops after this many: its config does not fit the model.
_FAILURES_BEFORE_GIVING_UP = 3


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


def _trial_label(search: SearchRecord, cfg: SearchConfig, trial: int, params: Mapping[str, Any]) -> str:
    knobs = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
    return f"search {search.id[:6]} trial {trial + 1}/{cfg.trials}: {cfg.technique} {knobs}"


def advance(store: Store, search: SearchRecord) -> None:
    """One step of one running search: cancel it, end it, or queue its next trials (see the module docstring)."""
    cfg = SearchConfig.from_dict(search.config)
    trials = store.search_trials(search.id)
    open_ = [t for t in trials if t.job_status in OPEN_STATUSES]
    if search.cancel_requested:
        for t in open_:
            store.cancel(t.job_id)
        done = sum(objective_values(cfg, t) is not None for t in trials)
        store.finish_search(search.id, "cancelled", f"cancelled after {done} measured trial(s)",
                            search_summary(cfg, trials))
        return
    finished = [t for t in trials if t.job_status not in OPEN_STATUSES]
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
        params, attrs = ask_trial(cfg, trials)
        spec = JobSpec(model_id=search.model_id, data_ref=search.data_ref, technique=trial_technique(cfg, params),
                       seed=cfg.seed, label=_trial_label(search, cfg, k, params), search_id=search.id,
                       runtimes=trial_runtimes(cfg))
        if store.add_search_trial(search.id, k, spec, params, attrs) is None:
            return  # another worker queued it, or the search ended meanwhile
        log.info("search %s: queued trial %d/%d %s", search.id, k + 1, cfg.trials, params)
        trials = store.search_trials(search.id)
        open_ = [t for t in trials if t.job_status in OPEN_STATUSES]
    message = f"{len(measured)} of {cfg.trials} trials measured, {len(open_)} queued or running"
    if message != search.message:
        store.set_search_message(search.id, message)


def advance_searches(store: Store) -> int:
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

