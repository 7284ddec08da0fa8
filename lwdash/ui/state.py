"""Every session-state key, declared once.

Session state holds only selections and ids; anything that must survive a browser refresh
lives in the store. Widget keys are namespaced ``"<page>.<field>"``; selections shared between
pages (``sel.*``) are plain keys, not widget keys, because Streamlit drops a widget's state
when a page that does not draw it runs.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

__all__ = [
    "COMPARE_3D_CHART",
    "COMPARE_ACROSS",
    "COMPARE_CSV",
    "COMPARE_DATES",
    "COMPARE_DETAIL_CHART",
    "COMPARE_DETAIL_LAYER",
    "COMPARE_DETAIL_LOG",
    "COMPARE_DOWNLOAD",
    "COMPARE_FAMILIES",
    "COMPARE_LAT_BATCH",
    "COMPARE_LAT_CHART",
    "COMPARE_LAT_RUNTIME",
    "COMPARE_MODELS",
    "COMPARE_PICK",
    "COMPARE_PNG",
    "COMPARE_RATIO",
    "COMPARE_REPORT",
    "COMPARE_SIDE",
    "COMPARE_SIDE_LAYER",
    "COMPARE_SIDE_LOG",
    "COMPARE_SIZE_CHART",
    "COMPARE_SIZE_METRIC",
    "COMPARE_STATUSES",
    "COMPRESS_DATA",
    "COMPRESS_MODEL",
    "COMPRESS_PREFIX",
    "COMPRESS_RUNTIMES",
    "COMPRESS_TECHNIQUE",
    "JOBS_PREFIX",
    "LAYERS_DATA",
    "LAYERS_HIST_LAYER",
    "LAYERS_HIST_LOG",
    "LAYERS_LAUNCH",
    "LAYERS_LEVELS",
    "LAYERS_MODE",
    "LAYERS_MODEL",
    "LAYERS_PICK",
    "LAYERS_SCAN",
    "LAYERS_SCAN_JOB",
    "MODELS_ARCH",
    "MODELS_DATA",
    "MODELS_DATA_OUTCOME",
    "MODELS_DATA_UPLOAD",
    "MODELS_MEASURE",
    "MODELS_PICK",
    "MODELS_UPLOAD",
    "MODELS_UPLOAD_OUTCOME",
    "SEARCH_CANCEL",
    "SEARCH_CHART",
    "SEARCH_COSTS",
    "SEARCH_DATA",
    "SEARCH_FIXED",
    "SEARCH_FORM",
    "SEARCH_KNOBS",
    "SEARCH_MODEL",
    "SEARCH_PARALLEL",
    "SEARCH_PICK",
    "SEARCH_PREFIX",
    "SEARCH_PROGRESS",
    "SEARCH_SAMPLER",
    "SEARCH_SEED",
    "SEARCH_SHOWN",
    "SEARCH_TECHNIQUE",
    "SEARCH_TRIALS",
    "SELECTED_DATA",
    "SELECTED_MODEL",
    "SELECTED_RESULT",
    "SUBMITTED_JOBS",
    "WORKSPACE",
    "get",
    "put",
]

# -- selections shared between pages (plain keys) -----------------------------------------
SELECTED_MODEL = "sel.model_id"  # str: the model the user is working on ("sample/<name>", "upload/<sha>")
SELECTED_DATA = "sel.data_ref"  # str: a bundled set's name or "dataset/<sha>"
SELECTED_RESULT = "sel.result_id"  # str: the result shown in detail on Compare
SUBMITTED_JOBS = "sel.submitted_job_ids"  # (technique key, list[str]): jobs queued by the last Compress submit

# -- Models page widgets ------------------------------------------------------------------
MODELS_PICK = "models.pick"  # prefix of the gallery's per-card buttons: "models.pick.<model id>"
MODELS_UPLOAD = "models.upload"  # file_uploader for a model file
MODELS_ARCH = "models.arch"  # selectbox: architecture of an uploaded state dict
MODELS_DATA_UPLOAD = "models.data_upload"  # file_uploader for an .npz evaluation set
MODELS_UPLOAD_OUTCOME = "models.upload_outcome"  # ((file id, arch), "ok" | "error", model id | message)
MODELS_DATA_OUTCOME = "models.data_outcome"  # (file id, "ok" | "error", text)
MODELS_DATA = "models.data"  # selectbox: the data set the baseline is measured on
MODELS_MEASURE = "models.measure"  # button: queue a baseline measurement

# -- Compress page widgets ----------------------------------------------------------------
COMPRESS_MODEL = "compress.model"  # selectbox of model ids
COMPRESS_DATA = "compress.data"  # selectbox of data refs
COMPRESS_TECHNIQUE = "compress.technique"  # selectbox of technique keys
COMPRESS_PREFIX = "compress"  # the technique form's fields: "compress.<technique>.<field>", submit: "compress.submit"
COMPRESS_RUNTIMES = "compress.runtimes"  # multiselect of the runtime keys the queued jobs measure

# -- Jobs page widgets --------------------------------------------------------------------
JOBS_PREFIX = "jobs"  # per-job buttons: "jobs.cancel.<job id>", "jobs.retry.<job id>"

# -- Compare page widgets -----------------------------------------------------------------
COMPARE_MODELS = "compare.models"  # multiselect: model filter
COMPARE_RATIO = "compare.ratio"  # toggle: ratios to each result's baseline
COMPARE_ACROSS = "compare.across"  # toggle: one front across models instead of one per model
COMPARE_SIZE_METRIC = "compare.size_metric"  # radio: onnx_bytes / compressed_bytes / sparse_bytes
COMPARE_LAT_RUNTIME = "compare.lat_runtime"  # radio: ort / torch
COMPARE_LAT_BATCH = "compare.lat_batch"  # radio: 1 / 32
COMPARE_SIZE_CHART = "compare.size_chart"  # plotly chart (selection state)
COMPARE_LAT_CHART = "compare.lat_chart"  # plotly chart (selection state)
COMPARE_PICK = "compare.pick"  # selectbox fallback: result id
COMPARE_DETAIL_LAYER = "compare.detail_layer"  # selectbox: histogram layer
COMPARE_DETAIL_LOG = "compare.detail_log"  # toggle: log-scale histogram
COMPARE_DETAIL_CHART = "compare.detail_chart"  # plotly chart: the weight histogram
COMPARE_DOWNLOAD = "compare.download"  # download buttons: "compare.download.<artifact name>"
COMPARE_CSV = "compare.csv"  # download button: every shown result as CSV
COMPARE_FAMILIES = "compare.families"  # multiselect: technique family filter
COMPARE_STATUSES = "compare.statuses"  # multiselect: job status filter (done = points; others listed)
COMPARE_DATES = "compare.dates"  # date_input: (from, to) finished-date filter
COMPARE_3D_CHART = "compare.chart_3d"  # plotly chart: the 3-D accuracy / size / latency view
COMPARE_REPORT = "compare.report"  # download button: the self-contained HTML report
COMPARE_PNG = "compare.png"  # download button: the charts as PNG (zip)
WORKSPACE = "workspace"  # prefix: "workspace.<model|result>.<field>.<id>" (name, note, star, save, confirm, delete)
COMPARE_SIDE = "compare.side"  # multiselect: 2-4 results side by side
COMPARE_SIDE_LAYER = "compare.side_layer"  # selectbox: layer of the side-by-side histogram overlay
COMPARE_SIDE_LOG = "compare.side_log"  # toggle: log scale of that overlay

# -- Search page widgets ------------------------------------------------------------------
SEARCH_MODEL = "search.model"  # selectbox of model ids
SEARCH_DATA = "search.data"  # selectbox of data refs
SEARCH_TECHNIQUE = "search.technique"  # selectbox of technique keys (with searchable knobs)
SEARCH_KNOBS = "search.knobs"  # multiselect per technique: "search.knobs.<technique>"
SEARCH_PREFIX = "search.range"  # a knob's range widgets: "search.range.<technique>.<knob>.low|high|log|choices"
SEARCH_FORM = "search.form"  # st.form of the search's space, objectives and sampler
SEARCH_COSTS = "search.costs"  # multiselect: the costs minimised beside accuracy
SEARCH_SAMPLER = "search.sampler"  # selectbox: tpe / gp / nsga2 / random
SEARCH_TRIALS = "search.trials"  # number input
SEARCH_PARALLEL = "search.parallel"  # number input: trials queued at once
SEARCH_SEED = "search.seed"  # number input
SEARCH_FIXED = "search.fixed"  # text input: other knobs, knob=value
SEARCH_CANCEL = "search.cancel"  # per-search buttons: "search.cancel.<search id>"
SEARCH_SHOWN = "search.shown"  # selectbox: the search shown in detail
SEARCH_PICK = "sel.search_id"  # str: the search shown in detail (plain key, survives page changes)
SEARCH_CHART = "search.chart"  # plotly chart of a search's trials: "search.chart.<search id>"
SEARCH_PROGRESS = "search.progress"  # plotly chart of its progress: "search.progress.<search id>"

# -- Layers page widgets ------------------------------------------------------------------
LAYERS_PICK = "layers.pick"  # selectbox: result id (shares SELECTED_RESULT)
LAYERS_HIST_LAYER = "layers.hist_layer"  # selectbox: histogram layer
LAYERS_HIST_LOG = "layers.hist_log"  # toggle: log-scale histogram
LAYERS_MODEL = "layers.model"  # selectbox: model to scan
LAYERS_DATA = "layers.data"  # selectbox: evaluation data of the scan
LAYERS_MODE = "layers.mode"  # radio: prune / quantize
LAYERS_LEVELS = "layers.levels"  # text_input: scan levels, comma-separated
LAYERS_LAUNCH = "layers.launch"  # button: queue the sensitivity scan
LAYERS_SCAN = "layers.scan"  # selectbox: a finished scan (analysis id)
LAYERS_SCAN_JOB = "layers.scan_job"  # str: the last queued scan's job id


#: Selections that also live in the page's URL (``?model=...&data=...``), so a reload, a bookmark or
#: a link sent to a colleague opens the same model and data set.
URL_PARAMS = {SELECTED_MODEL: "model", SELECTED_DATA: "data"}


def get(key: str, default: Any = None) -> Any:
    """Read a session-state value (``default`` when unset); URL-backed keys fall back to the URL."""
    param = URL_PARAMS.get(key)
    if param is None:
        return st.session_state.get(key, default)
    if key not in st.session_state and param in st.query_params:
        st.session_state[key] = st.query_params[param]  # a reload: the session is new, the URL is not
    value = st.session_state.get(key, default)
    if value is not None and st.query_params.get(param) != value:
        st.query_params[param] = value  # a page switch drops the query string; put it back
    return value


def put(key: str, value: Any) -> None:
    """Write a session-state value (and the URL's copy of a URL-backed one)."""
    st.session_state[key] = value
    param = URL_PARAMS.get(key)
    if param is not None and value is not None:
        st.query_params[param] = value
