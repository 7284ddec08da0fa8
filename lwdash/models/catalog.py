"""The models a user can pick: the bundled samples merged with validated uploads.

:class:`ModelCatalog` is the model part of :class:`lwdash.workspace.Store`: samples come from
the registry (:func:`lwdash.models.list_samples`), uploads are rows of kind ``"models"`` in the
backend with their file under the ``models`` area (``<sha256>.<ext>``: content-addressed, so the
same bytes imported twice are one model). Upload validation reads the file in a child process.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lwdash import uploads
from lwdash.isolate import IsolationError
from lwdash.store.backend import Backend, Row, rebase
from lwdash.store.records import ModelRecord, NotFoundError

if TYPE_CHECKING:
    from lwdash.models.base import LoadedModel

__all__ = ["ModelCatalog"]

# The catalogue stays free of torch (the worker's supervising process imports it): the model
# registry and loaders are imported where they are used.


class ModelCatalog:
    """List, read, import and delete models (samples and uploads)."""

    backend: Backend

    def list_models(self) -> list[ModelRecord]:
        """Bundled samples first (``sample/<name>``), then uploads, newest first."""
        from lwdash.models import list_samples

        area = self.backend.area("models")
        return [_sample_record(s) for s in list_samples()] + [_model_from_row(r, area) for r in self.backend.query("models")]

    def get_model(self, model_id: str) -> ModelRecord:
        """The record of a sample or upload.

        Raises:
            NotFoundError: no such model.
        """
        if model_id.startswith("sample/"):
            from lwdash.models import list_samples

            name = model_id.removeprefix("sample/")
            samples = list_samples()
            for s in samples:
                if s.name == name:
                    return _sample_record(s)
            raise NotFoundError(f"no sample model {name!r}; samples: {', '.join(s.name for s in samples)}")
        row = self.backend.get("models", model_id)
        if row is None:
            raise NotFoundError(f"no stored model {model_id!r} (ids look like 'sample/<name>' or 'upload/<hash>')")
        return _model_from_row(row, self.backend.area("models"))

    def load_model(self, model_id: str) -> LoadedModel:
        """Load a sample or an upload as a :class:`LoadedModel` (fresh module each call).

        Raises:
            NotFoundError: no such model.
            ModelLoadError: the stored file could not be read.
        """
        rec = self.get_model(model_id)
        if rec.kind == "sample":
            from lwdash.models import load_sample

            return load_sample(rec.name)
        from lwdash.models import load_model_file

        return load_model_file(rec.path, arch=rec.arch, input_shape=rec.input_shape)

    def import_model(
        self, filename: str, data: bytes, *, arch: str | None = None, input_shape: tuple[int, ...] | None = None
    ) -> ModelRecord:
        """Validate an uploaded model and keep it under ``models/<sha256>.<ext>``.

        The size limit (``LWDASH_MAX_UPLOAD_MB``) is checked first; the bytes are written to a
        temp file with a generated name inside the data dir and read with
        :func:`lwdash.models.load_model_file`; only a file that loads is moved into place
        (atomically). The same bytes imported twice return the existing record. The user's file
        name is kept only as display metadata: it never names a file on disk.

        Args:
            filename: the uploaded file's name: only its (validated) extension is used on disk.
            data: the file's bytes.
            arch: architecture key, needed for state dicts.
            input_shape: per-sample input shape, for TorchScript files without ``arch``.

        Raises:
            ModelLoadError: too large, empty, unsupported extension, or the file does not load (the
                message names the user's file, never the temp file); no file is left behind.
        """
        from lwdash.models.base import ModelLoadError
        from lwdash.models.loading import check_upload_size, model_file_facts

        display = uploads.clean_name(filename)
        check_upload_size(len(data), display)
        try:
            suffix = uploads.suffix_of(filename, uploads.MODEL_SUFFIXES, "model file")
        except ValueError as e:
            raise ModelLoadError(str(e)) from None
        sha = hashlib.sha256(data).hexdigest()
        model_id = f"upload/{sha[:16]}"
        existing = self.backend.get("models", model_id)
        if existing is not None:
            return _model_from_row(existing, self.backend.area("models"))

        tmp = self.backend.area("tmp") / f"upload-{uuid.uuid4().hex}{suffix}"
        final = self.backend.area("models") / f"{sha}{suffix}"
        try:
            tmp.write_bytes(data)
            try:  # in a child process: a reader that crashes or hangs on the file takes only the child down
                facts = uploads.read_isolated(model_file_facts, str(tmp), arch, input_shape, display)
            except ModelLoadError as e:
                raise ModelLoadError(uploads.scrub(str(e), tmp, display)) from e
            except IsolationError as e:
                raise ModelLoadError(
                    f"{display} could not be read safely: the model reader {uploads.ISOLATION_WHAT[e.kind]} "
                    f"({e.reason}); nothing was stored. Accepted: ONNX, torch.export .pt2, TorchScript, or a "
                    "state dict (.pt/.pth/.safetensors) of a known architecture"
                ) from e
            except Exception as e:  # an engine error the loader did not expect: still the user's file's fault
                raise ModelLoadError(
                    f"{display} could not be read as a model: {type(e).__name__}: {uploads.scrub(str(e), tmp, display)}"
                ) from e
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)

        row = {
            "id": model_id, "name": display, "filename": display, "source_format": facts["source_format"],
            "arch": facts["arch"], "input_shape": json.dumps(list(facts["input_shape"])),
            "num_classes": int(facts["num_classes"]), "path": str(final), "bytes": len(data), "sha256": sha,
            "created_at": time.time(),
        }
        try:
            self.backend.put("models", row)
        except BaseException:
            if self.backend.get("models", model_id) is None:
                final.unlink(missing_ok=True)  # no record points at it: leave nothing behind
            raise
        return self.get_model(model_id)

    def delete_model(self, model_id: str) -> None:
        """Delete an uploaded model and its file (results made from it keep their artifacts).

        Raises:
            ValueError: ``model_id`` is a bundled sample.
            NotFoundError: no such upload.
        """
        if model_id.startswith("sample/"):
            raise ValueError(f"{model_id} is a bundled sample and cannot be deleted")
        rec = self.get_model(model_id)
        self.backend.delete("models", model_id)
        rec.path.unlink(missing_ok=True)


def _sample_record(s: Any) -> ModelRecord:
    path = Path(s.path)
    return ModelRecord(
        id=f"sample/{s.name}",
        name=s.name,
        kind="sample",
        source_format="sample",
        arch=s.arch,
        input_shape=tuple(s.input_shape),
        num_classes=int(s.num_classes),
        path=path,
        size_bytes=path.stat().st_size if path.exists() else 0,
        title=s.title,
        description=s.description,
        params_count=s.params_count,
        test_acc=s.test_acc,
        role=s.role,
    )


def _model_from_row(r: Row, models_area: Path) -> ModelRecord:
    return ModelRecord(
        id=r["id"],
        name=r["name"],
        kind="upload",
        source_format=r["source_format"],
        arch=r["arch"],
        input_shape=tuple(json.loads(r["input_shape"])),
        num_classes=int(r["num_classes"]),
        path=rebase(r["path"], models_area),
        size_bytes=int(r["bytes"]),
        created_at=float(r["created_at"]),
        filename=r["filename"],
    )
