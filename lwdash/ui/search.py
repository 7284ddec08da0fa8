"""The Search page's sections: the search form (space, objectives, sampler), the live list, one search in detail.

The form is generated from the technique's knobs (:func:`lwdash.search.searchable_knobs`); a
search is checked against the technique and the model before it is stored. Its trials are
ordinary jobs, so their results are on the Compare page too; here they are drawn alone, with
the search's progress trial by trial.
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from lwdash.figures.search import plot_search_progress, search_progress_info
from lwdash.models.base import ModelLoadError
from lwdash.search import (
    OBJECTIVES,
    SAMPLERS,
    KnobRange,
    SearchConfig,
    check_search,
    default_space,
    knob_range,
    midpoint_params,
    search_summary,
    searchable_knobs,
    trial_technique,
)
from lwdash.store.records import NotFoundError, SearchRecord
from lwdash.sweeps import UsageError, parse_assignments
from lwdash.techniques import Technique, build_config, get_technique, jsonable, list_techniques
from lwdash.techniques.base import CONFIG_FORMAT_VERSION
from lwdash.ui import charts, state
from lwdash.ui.records import fitting_records
from lwdash.ui.resources import get_store, model_title, results_frame
from lwdash.workspace import Store

__all__ = ["pick_search_technique", "search_detail", "search_form", "search_list"]

#: Seconds between refreshes of a running search's sections.
SEARCH_REFRESH_S = 2.0
_COSTS = [o for o in OBJECTIVES if OBJECTIVES[o][0] == "min"]


def pick_search_technique(key: str) -> Technique:
    """A technique select limited to techniques with knobs a search can explore."""
    techniques = [t for t in list_techniques() if searchable_knobs(t.key)]
    by_key = {t.key: t for t in techniques}
    keys = sorted(by_key, key=lambda k: (by_key[k].family, k))
    if st.session_state.get(key) not in by_key:
        st.session_state[key] = "structured_pruning" if "structured_pruning" in by_key else keys[0]
    choice = st.selectbox("Technique", keys, key=key, format_func=lambda k: f"{by_key[k].family} · {by_key[k].title}")
    return by_key[choice]


def _range_inputs(tech: Technique, name: str) -> dict[str, Any]:
    """The widgets of one searched knob: low / high (and log) for numbers, a multiselect for choices.

    Returns:
        The :class:`KnobRange` arguments as entered (checked when the form is submitted).
    """
    spec = next(k for k in searchable_knobs(tech.key) if k.name == name)
    suggested = knob_range(spec, tech.config_type)
    base = f"{state.SEARCH_PREFIX}.{tech.key}.{name}"
    if suggested.choices:
        chosen = st.multiselect(f"{spec.label}: values to try", list(suggested.choices), default=list(suggested.choices),
                                key=f"{base}.choices", help=spec.help)
        return {"name": name, "choices": tuple(chosen)}
    low_col, high_col, log_col = st.columns([2, 2, 1])
    number: Any = int if suggested.integer else float
    fmt = None if suggested.integer else "%.6g"
    low = low_col.number_input(f"{spec.label}: from", value=number(suggested.low), format=fmt, key=f"{base}.low",
                               help=spec.help)
    high = high_col.number_input(f"{spec.label}: to", value=number(suggested.high), format=fmt, key=f"{base}.high")
    log = log_col.toggle("log scale", value=suggested.log, key=f"{base}.log",
                         help="Sample evenly in log space (learning rates, ranks spanning decades)")
    return {"name": name, "low": float(low), "high": float(high), "log": bool(log), "integer": suggested.integer}


def search_form(store: Store, model_id: str | None, data_ref: str, tech: Technique) -> str | None:
    """The search's space, objectives and sampler; on submit, checks it and stores it. Returns the search id."""
    knobs = searchable_knobs(tech.key)
    names = [k.name for k in knobs]
    labels = {k.name: k.label for k in knobs}
    default = [r.name for r in default_space(tech.key)]
    searched = st.multiselect("Knobs to explore", names, default=default, key=f"{state.SEARCH_KNOBS}.{tech.key}",
                              format_func=labels.__getitem__,
                              help="The sampler proposes values for these; every other knob keeps its default "
                                   "unless you set it below.")
    with st.form(state.SEARCH_FORM, border=True, enter_to_submit=False):
        space = [_range_inputs(tech, n) for n in searched]
        costs = st.multiselect(
            "Objectives: maximise top-1 accuracy, and minimise", _COSTS, default=["onnx_bytes"],
            format_func=lambda o: OBJECTIVES[o][1], max_selections=2, key=state.SEARCH_COSTS,
            help="One cost gives a 2-D front (and its hypervolume); two give a 3-D one.",
        )
        left, mid, right, far = st.columns(4)
        sampler = left.selectbox("Sampler", list(SAMPLERS), key=state.SEARCH_SAMPLER,
                                 format_func=lambda s: {"tpe": "TPE", "gp": "GP (Bayesian)", "nsga2": "NSGA-II",
                                                        "random": "random"}[s],
                                 help=" · ".join(f"{k}: {v}" for k, v in SAMPLERS.items()))
        trials = mid.number_input("Trials", min_value=1, max_value=200, value=12, step=1, key=state.SEARCH_TRIALS)
        parallel = right.number_input("At once", min_value=1, max_value=16, value=1, step=1, key=state.SEARCH_PARALLEL,
                                      help="Trials queued at the same time; the worker's concurrency "
                                           "(LWDASH_CONCURRENCY, or the Ray cluster) decides how many run together.")
        seed = far.number_input("Seed", min_value=0, value=0, step=1, key=state.SEARCH_SEED)
        others = st.text_input("Other knobs (knob=value, comma-separated)", key=state.SEARCH_FIXED,
                               placeholder="e.g. fine_tune_epochs=1",
                               help="Knobs not explored keep these values; the rest keep their defaults.")
        submitted = st.form_submit_button("Start the search", type="primary", icon=":material/travel_explore:")
    if not submitted:
        return None
    if model_id is None:
        st.error("Pick a model first.")
        return None
    try:
        fixed = parse_assignments([p for p in (x.strip() for x in others.split(",")) if p], sweep=False)
        typed = build_config(tech.config_type, fixed)
        cfg = SearchConfig(technique=tech.key, version=CONFIG_FORMAT_VERSION,
                           space=tuple(KnobRange(**r) for r in space),
                           fixed=tuple((k, jsonable(getattr(typed, k))) for k in fixed),
                           objectives=("top1_acc", *costs), sampler=str(sampler), trials=int(trials),
                           parallel=min(int(parallel), int(trials)), seed=int(seed))
        check_search(cfg)
    except (UsageError, TypeError, ValueError) as e:
        st.error(f"The search was not started: {e}")
        return None
    if not _fits(store, model_id, data_ref, cfg):
        return None
    search_id = store.create_search(model_id, data_ref, cfg.to_dict())
    state.put(state.SEARCH_PICK, search_id)
    st.session_state[state.SEARCH_SHOWN] = search_id  # the list below shows it (its select is drawn later)
    st.success(f"Started search `{search_id[:8]}`: the worker queues its trials one by one; follow it below.")
    return search_id


def _fits(store: Store, model_id: str, data_ref: str, cfg: SearchConfig) -> bool:
    """Whether the data fits the model and the model takes the technique (at the middle of the space)."""
    records = fitting_records(store, model_id, data_ref, "The search was not started")
    if records is None:
        return False
    model_rec = records[0]
    try:
        probe = build_config(get_technique(cfg.technique).config_type, trial_technique(cfg, midpoint_params(cfg))["data"])
        with st.spinner("Checking the search against the model..."):
            probe.validate_for(store.load_model(model_id).module, tuple(model_rec.input_shape))
    except (NotFoundError, ModelLoadError, ValueError) as e:
        st.error(f"The search was not started: {e}")
        return False
    return True


def _progress_line(search: SearchRecord, finished: int) -> None:
    total = max(1, int(search.config.get("trials", 1)))
    st.progress(min(finished / total, 1.0), text=f"{finished} of {total} trials finished · {search.message}")


@st.fragment(run_every=SEARCH_REFRESH_S)
def search_list() -> None:
    """Every search, newest first, with a cancel button for each running one and the pick of the one shown below.

    Refreshes itself every few seconds.
    """
    store = get_store()
    searches = store.list_searches()
    if not searches:
        st.info("No searches yet: start one above. Its trials run on the worker like any job and land on Compare.")
        return
    rows = []
    for s in searches:
        cfg = SearchConfig.from_dict(s.config)
        n = len(store.search_trials(s.id))
        rows.append({"search": s.id[:8], "status": s.status, "model": model_title(s.model_id), "explores": cfg.describe(),
                     "trials": f"{n}/{cfg.trials}", "detail": s.message})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    for s in (s for s in searches if s.status == "running" and not s.cancel_requested):
        if st.button(f"Cancel search {s.id[:8]}", key=f"{state.SEARCH_CANCEL}.{s.id}", icon=":material/cancel:"):
            store.cancel_search(s.id)
            st.rerun(scope="app")
    ids = [s.id for s in searches]
    shown = state.get(state.SEARCH_PICK)
    if st.session_state.get(state.SEARCH_SHOWN) not in ids:
        st.session_state[state.SEARCH_SHOWN] = shown if shown in ids else ids[0]
    status = {s.id: s.status for s in searches}
    picked = st.selectbox("Show search", ids, key=state.SEARCH_SHOWN, format_func=lambda i: f"{i[:8]} · {status[i]}")
    if picked != shown:
        state.put(state.SEARCH_PICK, picked)
        if shown is not None:  # the detail below this fragment shows the new pick
            st.rerun(scope="app")


def search_detail(store: Store) -> None:
    """The picked search: its front, its progress trial by trial, every trial's params and objectives."""
    search_id = state.get(state.SEARCH_PICK)
    if not search_id:
        return
    try:
        search = store.get_search(search_id)
    except NotFoundError:
        return
    if search.status == "running":
        _live_detail(search_id)
    else:
        _render_detail(store, search)


@st.fragment(run_every=SEARCH_REFRESH_S)
def _live_detail(search_id: str) -> None:
    store = get_store()
    search = store.get_search(search_id)
    _render_detail(store, search)
    if search.status != "running":
        st.rerun(scope="app")  # drawn once more, without the refresh


def _render_detail(store: Store, search: SearchRecord) -> None:
    cfg = SearchConfig.from_dict(search.config)
    trials = store.search_trials(search.id)
    summary = search.summary if search.status != "running" and search.summary else search_summary(cfg, trials)
    st.subheader(f"Search {search.id[:8]}")
    st.caption(f"{cfg.describe()} · model `{search.model_id}` on `{search.data_ref}` · seed {cfg.seed} · "
               f"{search.status}: {search.message}")
    _progress_line(search, sum(t.job_status in ("done", "failed", "cancelled") for t in trials))
    frame = results_frame()
    ids = {t["result_id"] for t in summary.get("trials", []) if t.get("result_id")}
    mine = frame[frame["id"].isin(ids)] if len(frame) else frame
    chart, progress = st.columns(2)
    with chart:
        if mine.empty:
            st.info("No trial has been measured yet: its point appears here when it is.")
        else:
            charts.tradeoff_chart(mine, cfg.objectives[1], ratio_to_baseline=False,
                                  key=f"{state.SEARCH_CHART}.{search.id}",
                                  title=f"Trials: accuracy vs {OBJECTIVES[cfg.objectives[1]][1]}",
                                  on_select=lambda rid: state.put(state.SELECTED_RESULT, rid))
    with progress:
        info = search_progress_info(summary, cost=OBJECTIVES[cfg.objectives[-1]][1])
        st.plotly_chart(plot_search_progress(info), key=f"{state.SEARCH_PROGRESS}.{search.id}", width="stretch")
        st.caption(f"{info.summary} {info.explanation}")
    st.dataframe(trials_table(summary), hide_index=True, width="stretch")
    st.page_link("pages/compare.py", label="Every trial is a result on Compare too: click a point above to open it "
                 "there in detail", icon=":material/scatter_plot:")


def trials_table(summary: dict[str, Any]) -> pd.DataFrame:
    """One row per trial: its number, status, params, objective values (shown units), front membership."""
    rows = []
    for t in summary.get("trials", []):
        row: dict[str, Any] = {"trial": t["trial"] + 1, "status": t["status"], "on front": "yes" if t["on_front"] else ""}
        row.update({k: (f"{v:.4g}" if isinstance(v, float) else str(v)) for k, v in (t.get("params") or {}).items()})
        for name, value in zip(summary.get("objectives", []), t.get("values") or [None] * 3, strict=False):
            row[OBJECTIVES[name][1]] = _shown(name, value)
        row["result"] = (t.get("result_id") or "")[:8]
        row["error"] = t.get("error", "")
        rows.append(row)
    return pd.DataFrame(rows)


def _shown(name: str, value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return ""
    if name == "top1_acc":
        return f"{100 * value:.2f} %"
    if name.endswith("_bytes"):
        return f"{value / 1024:,.1f} KiB"
    if name.endswith("_ms"):
        return f"{value:.3f} ms"
    return f"{value:,.0f}"
