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
``parallel`` are open, and queues it; :meth:`~lwdash.workspace.Store.add_search_trial` adds
the trial and its job in one transaction, so two workers cannot queue the same trial twice.
Trial ``k`` asks a sampler seeded with ``seed`` and ``k``: a search is reproducible, and a
worker restarted mid-search picks it up where the store says it stands.

Optuna is imported only while a search is advanced; this package imports no torch. Its modules:
:mod:`~lwdash.search.config` (what a search is), :mod:`~lwdash.search.space` (spaces from the
registry and the checks), :mod:`~lwdash.search.sampler` (the study rebuilt from the store),
:mod:`~lwdash.search.driver` (advancing searches) and :mod:`~lwdash.search.outcomes` (what a
search has found).
"""
from __future__ import annotations

from lwdash.search.config import OBJECTIVES, SAMPLERS, KnobRange, SearchConfig
from lwdash.search.driver import advance, advance_searches, trial_runtimes
from lwdash.search.outcomes import objective_values as objective_values
from lwdash.search.outcomes import search_summary
from lwdash.search.sampler import ask_trial
from lwdash.search.space import (
    check_search,
    default_space,
    knob_range,
    midpoint_params,
    searchable_knobs,
    trial_technique,
)

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

#: Kept under its old name: tests import it.
_ask = ask_trial
