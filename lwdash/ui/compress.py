"""The Compress page's sections: the model and technique pickers, queueing the configs as jobs, the confirmation."""
from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from lwdash.data import DataError
from lwdash.jobs.spec import JobSpec, JobStatus
from lwdash.models.base import ModelLoadError
from lwdash.store.records import NotFoundError
from lwdash.techniques import Technique, TechniqueConfig, config_to_dict, list_techniques
from lwdash.ui import state
from lwdash.ui.records import list_models
from lwdash.ui.resources import model_names
from lwdash.ui.text import literal
from lwdash.workspace import Store

__all__ = ["pick_model", "pick_technique", "queue_jobs", "submitted_jobs"]


def pick_model(store: Store, key: str) -> str | None:
    """A model selectbox that starts at (and updates) the shared model selection."""
    models = list_models(store)
    if not models:
        st.warning("No models yet: upload one on the Models page.")
        return None
    names = model_names(models)
    ids = list(names)
    selected = state.get(state.SELECTED_MODEL)
    if st.session_state.get(key) not in ids:
        st.session_state[key] = selected if selected in ids else ids[0]
    choice = st.selectbox("Model", ids, format_func=names.__getitem__, key=key)
    state.put(state.SELECTED_MODEL, choice)
    return str(choice)


def pick_technique(key: str) -> Technique:
    """A technique selectbox (grouped by family) with the chosen technique's description."""
    techniques = list_techniques()
    by_key = {t.key: t for t in techniques}
    keys = sorted(by_key, key=lambda k: (by_key[k].family, k))
    choice = st.selectbox(
        "Technique", keys, key=key, format_func=lambda k: f"{by_key[k].family} · {by_key[k].title}",
    )
    tech = by_key[choice]
    st.caption(tech.description or tech.title)
    if tech.when:
        st.caption(f"**When to use it:** {tech.when}")
    return tech


def queue_jobs(
    store: Store, model_id: str, data_ref: str, technique: Technique, configs: Sequence[TechniqueConfig],
    runtimes: Sequence[str] = (),
) -> list[str]:
    """Check every config against the model and the data, then queue one job per config.

    Nothing is queued when any config is refused: the reasons are shown with ``st.error``.
    ``runtimes``: the runtime keys each job measures (``()``: the worker's ``LWDASH_RUNTIMES`` or the defaults).

    Returns:
        The queued job ids (also kept in session state for the confirmation).
    """
    from lwdash.data import check_model_fits

    try:
        with st.spinner("Checking the configs against the model..."):
            model = store.load_model(model_id)
            check_model_fits(model, store.resolve_data(data_ref))
    except (ModelLoadError, DataError, NotFoundError) as e:
        st.error(f"Nothing was queued: {literal(e)}")
        return []
    refused = []
    for cfg in configs:
        try:
            cfg.validate_for(model.module, model.input_shape)
        except ValueError as e:
            refused.append(f"{literal(_knobs(cfg))}: {literal(e)}")
    if refused:
        st.error(f"Nothing was queued: {technique.title} cannot take {len(refused)} of the configs.\n\n- "
                 + "\n- ".join(refused))
        return []
    specs = [JobSpec(model_id=model_id, data_ref=data_ref, technique=config_to_dict(technique.key, c),
                     runtimes=tuple(runtimes)) for c in configs]
    existing = store.jobs_of("compress", model_id, data_ref=data_ref,
                             status=[JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.DONE], limit=100_000)
    twins = {i: next((j for j in existing if s.same_work(j.spec)), None) for i, s in enumerate(specs)}
    repeated = [(configs[i], j) for i, j in twins.items() if j is not None]
    if repeated:
        st.warning(f"Not queued again: {len(repeated)} of the {len(specs)} configs already have an identical job on "
                   "this model and data (retry it on the Jobs page to run it again):\n\n- "
                   + "\n- ".join(f"{_knobs(c)}: job `{j.id[:8]}`, {j.status.value}" for c, j in repeated))
    fresh = [s for i, s in enumerate(specs) if twins[i] is None]
    ids = store.submit_many(fresh) if fresh else []
    state.put(state.SUBMITTED_JOBS, (technique.key, ids))
    return ids


def _knobs(cfg: TechniqueConfig) -> str:
    return ", ".join(f"{k}={v}" for k, v in config_to_dict("", cfg)["data"].items())


def submitted_jobs(technique_key: str) -> None:
    """Confirm the last submit of ``technique_key``: the queued job ids and a link to the Jobs page.

    Nothing is shown once another technique is picked (the confirmation belongs to its form).
    """
    key, ids = state.get(state.SUBMITTED_JOBS) or ("", [])
    if not ids or key != technique_key:
        return
    st.success(f"Queued {len(ids)} job(s): " + ", ".join(f"`{i[:8]}`" for i in ids))
    st.page_link("pages/jobs.py", label="Follow them on the Jobs page", icon=":material/arrow_forward:")
