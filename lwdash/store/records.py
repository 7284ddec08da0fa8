"""Typed records returned by the store (frozen dataclasses, never raw rows or dicts)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lwdash.measure.metrics import Metrics

__all__ = [
    "AnalysisRecord",
    "DatasetRecord",
    "ModelRecord",
    "NotFoundError",
    "ResultRecord",
    "SearchRecord",
    "SearchTrialRecord",
    "StoreBusy",
    "WorkerRecord",
]


class NotFoundError(LookupError):
    """No stored object has the requested id; the message names the id and the kind of object."""


class StoreBusy(RuntimeError):
    """The database stayed locked by other writers past the store's busy timeout.

    Raised by the store's methods instead of sqlite3's own error; the call changed nothing (its
    transaction was rolled back), so it can simply be tried again (the workers' loops do).
    """


@dataclass(frozen=True)
class ModelRecord:
    """A model the user can pick: a bundled sample (``sample/<name>``) or an upload (``upload/<sha16>``).

    Attributes:
        id: stable id; uploads are content-addressed, so the same bytes always get the same id.
        name: display name (an upload's original file name, a sample's name); never used as a path.
        kind: ``"sample"`` or ``"upload"``.
        source_format: how it was read (``sample``, ``onnx``, ``pt2``, ``torchscript``, ``state_dict``, ...).
        arch: architecture registry key when known.
        input_shape: per-sample input shape, no batch dim.
        num_classes: number of output logits.
        path: the stored file (inside the data dir for uploads).
        size_bytes: size of that file.
        created_at: unix time of the import (0 for samples).
        filename: the uploaded file's original name (display only).
        title / description / params_count / test_acc / role: sample metadata (empty for uploads); ``title``
            is the team's name for the model when it was renamed (:mod:`lwdash.annotations`).
        note / starred: what the team wrote on it, and whether it is starred.
    """

    id: str
    name: str
    kind: str
    source_format: str
    arch: str | None
    input_shape: tuple[int, ...]
    num_classes: int
    path: Path
    size_bytes: int
    created_at: float = 0.0
    filename: str = ""
    title: str = ""
    description: str = ""
    params_count: int | None = None
    test_acc: float | None = None
    role: str = ""
    note: str = ""
    starred: bool = False


@dataclass(frozen=True)
class DatasetRecord:
    """An evaluation data set: a bundled one (:mod:`lwdash.data.bundled`) or an upload (``dataset/<sha16>``).

    Attributes:
        id: a bundled set's name (``"digits"``, ``"fashion_mnist"``, ...) or ``"dataset/<sha16>"``
            (pass it as a job's ``data_ref``).
        name: display name (the bundled set's title; the original file name for uploads).
        kind: ``"builtin"`` (bundled) or ``"upload"``.
        path: the stored ``.npz`` (``None`` for a bundled set).
        samples_count: samples over all splits.
        input_shape: per-sample input shape.
        num_classes: number of classes.
        size_bytes: file size (0 for a bundled set).
        created_at: unix time of the import (0 for a bundled set).
        description: what a bundled set holds and how it is split ("" for uploads).
        unavailable: why a bundled set cannot be used on this machine and how to install it;
            ``""`` when it can.
    """

    id: str
    name: str
    kind: str
    path: Path | None
    samples_count: int
    input_shape: tuple[int, ...]
    num_classes: int
    size_bytes: int = 0
    created_at: float = 0.0
    filename: str = ""
    description: str = ""
    unavailable: str = ""


@dataclass(frozen=True)
class ResultRecord:
    """One finished compression: baseline and compressed metrics, weight summaries, artifacts.

    Attributes:
        artifact_dir: ``<data_dir>/artifacts/<id>/``, holding ``model.onnx``, ``model.pt2`` (when the
            PyTorch form could be exported), ``result.json`` and the model card.
        artifacts: artifact name -> absolute path inside ``artifact_dir``.
        config: the technique config in its dict form (``{"type", "version", "data"}``).
        label: what the result is called: the team's name when it was renamed, else the label the job gave it
            (then in ``renamed_from``).
        note / starred: what the team wrote on it (:mod:`lwdash.annotations`), and whether it is starred.
    """

    id: str
    job_id: str | None
    model_id: str
    data_ref: str
    technique: str
    family: str
    label: str
    config: dict[str, Any]
    baseline: Metrics
    compressed: Metrics
    baseline_weights: dict[str, Any]
    compressed_weights: dict[str, Any]
    notes: tuple[str, ...]
    steps: tuple[dict[str, Any], ...]
    environment: dict[str, Any]
    artifact_dir: Path
    artifacts: dict[str, Path] = field(default_factory=dict)
    created_at: float = 0.0
    seed: int = 0
    threads: int = 1
    note: str = ""
    starred: bool = False
    renamed_from: str = ""


@dataclass(frozen=True)
class WorkerRecord:
    """A registered worker process and when it last said it was alive."""

    id: str
    pid: int
    host: str
    started_at: float
    heartbeat_at: float


@dataclass(frozen=True)
class AnalysisRecord:
    """A finished analysis job (e.g. a per-layer sensitivity scan) and its JSON payload.

    Attributes:
        kind: the job kind that made it (``"sensitivity"``).
        config: the job's technique dict (``{"type": "sensitivity_scan", "data": {...}}``).
        payload: the analysis output (:func:`lwdash.analysis.sensitivity.run_scan`'s dict).
    """

    id: str
    job_id: str | None
    kind: str
    model_id: str
    data_ref: str
    config: dict[str, Any]
    payload: dict[str, Any]
    created_at: float = 0.0


@dataclass(frozen=True)
class SearchRecord:
    """A multi-objective search: its config, where it stands, and (once over) its summary.

    Attributes:
        config: :meth:`lwdash.search.SearchConfig.to_dict` of what it explores.
        status: ``running`` (trials are being proposed and run), ``done``, ``failed`` or ``cancelled``.
        message: a line on where it stands ("trial 5 of 12 queued", the reason it ended).
        summary: set when it ends: :func:`lwdash.search.search_summary`'s dict.
        cancel_requested: the user asked to stop it; the next worker pass cancels its open trials.
    """

    id: str
    model_id: str
    data_ref: str
    config: dict[str, Any]
    status: str
    message: str = ""
    created_at: float = 0.0
    finished_at: float | None = None
    cancel_requested: bool = False
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchTrialRecord:
    """One proposed point of a search: the knob values the sampler asked for and the job that measures them.

    Attributes:
        trial: the trial number (0, 1, ...), in the order the sampler proposed them.
        params: the searched knobs' values.
        system_attrs: the sampler's own bookkeeping for this trial (kept so the study can be rebuilt).
        job_status / result_id: the trial job's status and, once done, its result.
        metrics / baseline: that result's compressed and baseline :class:`Metrics` as dicts (``None`` before).
    """

    search_id: str
    trial: int
    job_id: str
    params: dict[str, Any]
    system_attrs: dict[str, Any]
    job_status: str
    result_id: str | None = None
    error: str = ""
    metrics: dict[str, Any] | None = None
    baseline: dict[str, Any] | None = None
