"""Measured results and analyses: what a finished job leaves behind.

:class:`ResultBook` is that part of :class:`lwdash.workspace.Store`. A result is a row of kind
``"results"`` (the baseline's and the compressed model's metrics, weight summaries, notes, steps,
environment) plus its artifact folder under the ``artifacts`` area (``<result_id>/model.onnx``,
``model.pt2``, ``result.json``, ``model_card.md``, ...). An analysis (a sensitivity scan, say) is
one JSON payload of kind ``"analyses"``.
"""
from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lwdash.store.backend import Backend, Row, rebase
from lwdash.store.codec import dumps, loads
from lwdash.store.records import AnalysisRecord, NotFoundError, ResultRecord

if TYPE_CHECKING:
    from lwdash.jobs.runner import RunOutput
    from lwdash.jobs.spec import JobSpec

__all__ = ["ResultBook"]

_WEIGHTS = ("baseline_weights", "compressed_weights")


class ResultBook:
    """Save, list, read and delete results and analyses."""

    backend: Backend

    def save_result(self, job_id: str | None, spec: JobSpec, run_output: RunOutput, artifact_dir: Path) -> str:
        """Store a run's output; its artifacts move from ``artifact_dir`` to ``artifacts/<result_id>/``.

        ``artifact_dir`` should be inside the data dir (``tmp/``), so the move is one rename.

        Returns:
            The new result's id.
        """
        from lwdash.jobs.runner import job_label

        result_id = uuid.uuid4().hex
        src = Path(artifact_dir).resolve()
        dest = self.backend.area("artifacts") / result_id
        artifacts: dict[str, str] = {}
        for name, path in run_output.artifacts.items():
            p = Path(path).resolve()
            try:
                artifacts[name] = str(p.relative_to(src))
            except ValueError:
                artifacts[name] = p.name
        try:
            os.replace(src, dest)
        except OSError:
            shutil.move(str(src), str(dest))
        for name, path in run_output.artifacts.items():
            p = Path(path).resolve()
            if not p.is_relative_to(src) and p.exists():  # an artifact written elsewhere: copy it in
                shutil.copy2(p, dest / artifacts[name])

        key = str(spec.technique.get("type", ""))
        row = {
            "id": result_id, "job_id": job_id, "model_id": spec.model_id, "data_ref": spec.data_ref,
            "technique": key, "family": _family(key), "label": spec.label or job_label(spec.technique),
            "config": dumps(spec.technique), "seed": int(spec.seed), "threads": int(spec.threads),
            "baseline": dumps(run_output.baseline.to_dict()), "compressed": dumps(run_output.compressed.to_dict()),
            "baseline_weights": dumps(run_output.baseline_weights),
            "compressed_weights": dumps(run_output.compressed_weights),
            "notes": dumps(list(run_output.notes)), "steps": dumps(list(run_output.steps)),
            "environment": dumps(run_output.environment), "artifact_dir": str(dest), "artifacts": dumps(artifacts),
            "created_at": time.time(),
        }
        try:
            with self.backend.atomic():
                self.backend.put("results", row)
                if job_id is not None:
                    self.backend.update("jobs", job_id, {"result_id": result_id})
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        return result_id

    def list_results(self, *, with_weights: bool = True) -> list[ResultRecord]:
        """Every result, newest first. ``with_weights=False`` skips the (large) weight summaries."""
        rows = self.backend.query("results", omit=() if with_weights else _WEIGHTS)
        area = self.backend.area("artifacts")
        return [_result_from_row(r, area) for r in rows]

    def latest_result(self, model_id: str, data_ref: str) -> ResultRecord | None:
        """The newest result of ``model_id`` on ``data_ref`` (without weight summaries), or ``None``."""
        rows = self.backend.query("results", {"model_id": model_id, "data_ref": data_ref}, limit=1, omit=_WEIGHTS)
        return _result_from_row(rows[0], self.backend.area("artifacts")) if rows else None

    def get_result(self, result_id: str) -> ResultRecord:
        """One result with its weight summaries.

        Raises:
            NotFoundError: no such result.
        """
        row = self.backend.get("results", result_id)
        if row is None:
            raise NotFoundError(f"no result {result_id!r}")
        return _result_from_row(row, self.backend.area("artifacts"))

    def delete_result(self, result_id: str) -> None:
        """Delete a result and its artifact folder.

        Raises:
            NotFoundError: no such result.
        """
        rec = self.get_result(result_id)
        with self.backend.atomic():
            self.backend.delete("results", result_id)
            for job in self.backend.query("jobs", {"result_id": result_id}, omit=("spec",)):
                self.backend.update("jobs", job["id"], {"result_id": None})
        if rec.artifact_dir.is_relative_to(self.backend.area("artifacts")):
            shutil.rmtree(rec.artifact_dir, ignore_errors=True)

    # ------------------------------------------------------------------ analyses

    def save_analysis(self, job_id: str | None, spec: JobSpec, payload: dict[str, Any]) -> str:
        """Store an analysis job's JSON output (e.g. a sensitivity scan); returns its id."""
        analysis_id = uuid.uuid4().hex
        self.backend.put("analyses", {
            "id": analysis_id, "job_id": job_id, "kind": spec.kind, "model_id": spec.model_id,
            "data_ref": spec.data_ref, "config": dumps(spec.technique), "payload": dumps(payload),
            "created_at": time.time(),
        })
        return analysis_id

    def get_analysis(self, analysis_id: str) -> AnalysisRecord:
        """One stored analysis.

        Raises:
            NotFoundError: no such analysis.
        """
        row = self.backend.get("analyses", analysis_id)
        if row is None:
            raise NotFoundError(f"no analysis {analysis_id!r}")
        return _analysis_from_row(row)

    def list_analyses(self, model_id: str | None = None, kind: str | None = None) -> list[AnalysisRecord]:
        """Stored analyses, newest first, optionally of one model and / or one kind."""
        return [_analysis_from_row(r) for r in self.backend.query("analyses", {"model_id": model_id, "kind": kind})]


def _family(key: str) -> str:
    try:
        from lwdash.techniques import get_technique

        return get_technique(key).family
    except Exception:  # an unregistered key must not lose a measured result
        return ""


def _result_from_row(r: Row, artifacts_area: Path) -> ResultRecord:
    from lwdash.measure.metrics import Metrics

    artifact_dir = rebase(r["artifact_dir"], artifacts_area)
    artifacts = {name: artifact_dir / rel for name, rel in loads(r["artifacts"]).items()}
    return ResultRecord(
        id=r["id"],
        job_id=r["job_id"],
        model_id=r["model_id"],
        data_ref=r["data_ref"],
        technique=r["technique"],
        family=r["family"],
        label=r["label"],
        config=loads(r["config"]),
        baseline=Metrics.from_dict(loads(r["baseline"])),
        compressed=Metrics.from_dict(loads(r["compressed"])),
        baseline_weights=loads(r["baseline_weights"]),
        compressed_weights=loads(r["compressed_weights"]),
        notes=tuple(loads(r["notes"])),
        steps=tuple(loads(r["steps"])),
        environment=loads(r["environment"]),
        artifact_dir=artifact_dir,
        artifacts=artifacts,
        created_at=float(r["created_at"]),
        seed=int(r["seed"]),
        threads=int(r["threads"]),
    )


def _analysis_from_row(r: Row) -> AnalysisRecord:
    return AnalysisRecord(
        id=r["id"], job_id=r["job_id"], kind=r["kind"], model_id=r["model_id"], data_ref=r["data_ref"],
        config=loads(r["config"]), payload=loads(r["payload"]), created_at=float(r["created_at"]),
    )
