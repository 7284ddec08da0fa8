"""The evaluation sets a user can pick: the bundled ones merged with validated uploads.

:class:`DataCatalog` is the data-set part of :class:`lwdash.workspace.Store`. Bundled sets come
from :mod:`lwdash.data.bundled` (with whether they are installed here), uploads are rows of kind
``"datasets"`` with their arrays under the ``datasets`` area (``<sha256>.npz``). Resolving a
job's data reference (a bundled name or ``dataset/<sha16>``) to a :class:`lwdash.data.Dataset`
lives here too.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from lwdash import uploads
from lwdash.isolate import IsolationError
from lwdash.store.backend import Backend, Row, rebase
from lwdash.store.records import DatasetRecord, NotFoundError

if TYPE_CHECKING:
    from lwdash.data import Dataset

__all__ = ["DataCatalog", "bundled_records"]

# Free of torch and numpy at import (the worker's supervising process imports it): readers are
# imported where they are used.


class DataCatalog:
    """List, read, import and delete evaluation sets (bundled and uploaded)."""

    backend: Backend

    def import_dataset(
        self, filename: str, data: bytes, *, input_shape: tuple[int, ...] | None = None
    ) -> DatasetRecord:
        """Validate an uploaded evaluation set and keep it under ``datasets/<sha256>.npz``.

        Accepted: an ``.npz`` (``x``, ``y``; kept as uploaded) or a zipped image folder
        (``<class>/<image>.png|jpg``; decoded in memory, resized to ``input_shape``, kept as an
        ``.npz`` of ``x`` in ``[0, 1]``, ``y`` and ``num_classes``). The size limit
        (``LWDASH_MAX_UPLOAD_MB``) is checked first; nothing is extracted to disk and the user's
        file name is kept only as display metadata.

        Args:
            filename: the uploaded file's name (display only; its extension picks the reader).
            data: the file's bytes.
            input_shape: the model's per-sample input ``(C, H, W)`` that an image folder is resized
                to; ``None`` keeps the images' own (common) size. Ignored for ``.npz``.

        Raises:
            DataError: too large, empty, unsupported extension, or rejected by
                :func:`lwdash.data.load_npz` / :func:`lwdash.data.imagefolder.read_image_folder`;
                no file is left behind.
        """
        from lwdash.data import DataError
        from lwdash.data.npz import dataset_file_facts
        from lwdash.models.loading import max_upload_bytes

        display = uploads.clean_name(filename)
        limit = max_upload_bytes()
        if not data:
            raise DataError(f"{display} is empty (0 bytes); accepted: {', '.join(uploads.DATASET_SUFFIXES)}")
        if len(data) > limit:
            raise DataError(
                f"{display} is {uploads.mib(len(data))} ({len(data):,} bytes); the upload limit is "
                f"{uploads.mib(limit)} ({limit:,} bytes, set by LWDASH_MAX_UPLOAD_MB)"
            )
        try:
            suffix = uploads.suffix_of(filename, uploads.DATASET_SUFFIXES, "data file")
        except ValueError as e:
            raise DataError(
                f"{e} (.npz with x and y, or .zip of class folders <class>/<image>.png|jpg)"
            ) from None
        key = data if suffix == ".npz" else data + b"\0image-folder" + json.dumps(input_shape).encode()
        sha = hashlib.sha256(key).hexdigest()
        ds_id = f"dataset/{sha[:16]}"
        existing = self.backend.get("datasets", ds_id)
        if existing is not None:
            return _dataset_from_row(existing, self.backend.area("datasets"))

        tmp_dir = self.backend.area("tmp")
        tmp = tmp_dir / f"upload-{uuid.uuid4().hex}.npz"  # what is kept: the .npz, or the folder's arrays
        src = tmp if suffix == ".npz" else tmp_dir / f"upload-{uuid.uuid4().hex}{suffix}"
        final = self.backend.area("datasets") / f"{sha}.npz"
        try:
            src.write_bytes(data)
            try:  # in a child process, as for models: image decoders are native code too
                facts = uploads.read_isolated(dataset_file_facts, str(src), suffix, str(tmp), input_shape, display)
            except DataError as e:
                raise DataError(uploads.scrub(uploads.scrub(str(e), tmp, display), src, display)) from e
            except IsolationError as e:
                raise DataError(
                    f"{display} could not be read safely: the data reader {uploads.ISOLATION_WHAT[e.kind]} "
                    f"({e.reason}); nothing was stored. Accepted: an .npz with x and y, or a .zip of class "
                    "folders <class>/<image>.png|jpg"
                ) from e
            except Exception as e:
                raise DataError(
                    f"{display} could not be read as a data set: {type(e).__name__}: "
                    f"{uploads.scrub(str(e), tmp, display)}"
                ) from e
            stored_bytes = tmp.stat().st_size
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
            src.unlink(missing_ok=True)
        row = {
            "id": ds_id, "name": display, "filename": display, "path": str(final),
            "n": int(facts["samples_count"]), "input_shape": json.dumps(list(facts["input_shape"])),
            "num_classes": int(facts["num_classes"]), "bytes": stored_bytes, "sha256": sha, "created_at": time.time(),
        }
        try:
            self.backend.put("datasets", row)
        except BaseException:
            if self.backend.get("datasets", ds_id) is None:
                final.unlink(missing_ok=True)
            raise
        return self.get_dataset(ds_id)

    def list_datasets(self) -> list[DatasetRecord]:
        """The bundled sets first (available or not: see ``unavailable``), then uploads, newest first."""
        area = self.backend.area("datasets")
        return bundled_records() + [_dataset_from_row(r, area) for r in self.backend.query("datasets")]

    def get_dataset(self, ref: str) -> DatasetRecord:
        """The record of a bundled set (by name, even when it is not installed here) or a stored ``"dataset/<sha16>"``.

        Raises:
            NotFoundError: no such data set.
        """
        upload = self.uploaded_dataset(ref)
        if upload is not None:
            return upload
        bundled = bundled_records(ref)
        if not bundled:
            names = ", ".join(r.id for r in bundled_records())
            raise NotFoundError(f"no stored data set {ref!r}; use a bundled set ({names}) or an uploaded set's id "
                                "('dataset/<hash>')")
        return bundled[0]

    def uploaded_dataset(self, ref: str) -> DatasetRecord | None:
        """The record of an uploaded data set, or ``None`` when ``ref`` is none (a bundled set's name, say).

        Reads only the backend (no torch import), for processes that never load data themselves.
        """
        row = self.backend.get("datasets", ref)
        return None if row is None else _dataset_from_row(row, self.backend.area("datasets"))

    def delete_dataset(self, ref: str) -> None:
        """Delete an uploaded data set and its file.

        Raises:
            ValueError: ``ref`` is a bundled set.
            NotFoundError: no such upload.
        """
        if bundled_records(ref):
            raise ValueError(f"the bundled data set {ref!r} cannot be deleted")
        rec = self.get_dataset(ref)
        self.backend.delete("datasets", ref)
        if rec.path is not None:
            rec.path.unlink(missing_ok=True)

    def resolve_data(self, ref: str) -> Dataset:
        """Load the data set a job refers to: a bundled set's name or ``"dataset/<sha16>"``.

        Raises:
            DataError: unknown reference, a bundled set not installed here (with how to install
                it), or an unreadable file.
        """
        from lwdash.data.bundled import is_bundled, load_bundled

        if is_bundled(ref):
            return load_bundled(ref)
        from lwdash.data import DataError, load_npz

        try:
            rec = self.get_dataset(ref)
        except NotFoundError as e:
            raise DataError(str(e)) from None
        assert rec.path is not None
        return load_npz(rec.path, name=rec.name, display_name=rec.filename or rec.name)


def bundled_records(ref: str | None = None) -> list[DatasetRecord]:
    """The records of every bundled data set (or of ``ref`` alone, ``[]`` when it is none), with availability.

    Nothing is loaded: the facts come from the registry, availability from a look at the files.
    """
    from lwdash.data.bundled import get_bundled, is_bundled, list_bundled

    if ref is not None and not is_bundled(ref):
        return []
    entries = list_bundled() if ref is None else [get_bundled(ref)]
    return [
        DatasetRecord(id=e.name, name=e.title, kind="builtin", path=None, samples_count=e.samples_count,
                      input_shape=tuple(e.input_shape), num_classes=e.num_classes, description=e.description,
                      unavailable=e.unavailable() or "")
        for e in entries
    ]


def _dataset_from_row(r: Row, datasets_area: Path) -> DatasetRecord:
    return DatasetRecord(
        id=r["id"],
        name=r["name"],
        kind="upload",
        path=rebase(r["path"], datasets_area),
        samples_count=int(r["n"]),
        input_shape=tuple(json.loads(r["input_shape"])),
        num_classes=int(r["num_classes"]),
        size_bytes=int(r["bytes"]),
        created_at=float(r["created_at"]),
        filename=r["filename"],
    )
