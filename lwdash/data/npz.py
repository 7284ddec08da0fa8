"""User evaluation sets uploaded as NumPy ``.npz`` archives with ``x`` and ``y``, and :func:`load_dataset`.

Accepted layout (``np.savez(path, x=x, y=y)``):

- ``x``: numeric, ``(N, D)`` tabular features, ``(N, H, W)`` grey images (a channel dim is
  added) or ``(N, C, H, W)`` images; fed to the model as float32 exactly as stored, so apply
  the model's own preprocessing (scaling, normalisation) before saving;
- ``y``: integer class ids ``(N,)`` in ``[0, C)``;
- optional ``num_classes``: a scalar int ``C`` when some classes are absent from ``y``.

Pickled (object) arrays are never loaded.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from lwdash.data._zipsafe import ZipLimits, vet_zip
from lwdash.data.arrays import ACCEPTED, MIN_SAMPLES, dataset_from_arrays, validate_y
from lwdash.data.base import DataError, Dataset

__all__ = [
    "MAX_NPZ_ARRAY_BYTES",
    "MIN_SAMPLES",
    "NPZ_ZIP_LIMITS",
    "dataset_file_facts",
    "dataset_from_arrays",
    "load_dataset",
    "load_npz",
]

MAX_NPZ_ARRAY_BYTES = 2 * 1024**3  # uncompressed, per array: refuses zip bombs before decompressing
#: Archive bounds of an .npz: x, y, num_classes and a few extras; 2 GiB in all; deflate at most 500x.
NPZ_ZIP_LIMITS = ZipLimits(max_members=64, max_total_bytes=2 * 1024**3, max_ratio=500.0)


def _npy_header(fh: IO[bytes]) -> tuple[tuple[int, ...], np.dtype[Any]]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    return tuple(int(d) for d in shape), dtype


def _vet_npz(path: Path, shown: str) -> None:
    """Check the archive and every array header before numpy allocates or decompresses anything.

    numpy allocates an array of the size its header declares before reading the data, so a
    1 KiB member declaring a (10**12,) array would exhaust memory: each declared size must fit
    in the bytes the member really holds.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            infos = vet_zip(zf, shown, NPZ_ZIP_LIMITS, ACCEPTED)
            for info in infos:
                if not info.filename.endswith(".npy"):
                    continue
                key = info.filename[: -len(".npy")]
                if info.file_size > MAX_NPZ_ARRAY_BYTES:
                    raise DataError(
                        f"{shown}: array {key!r} is {info.file_size / 1024**3:.1f} GiB uncompressed; the limit is "
                        f"{MAX_NPZ_ARRAY_BYTES / 1024**3:.0f} GiB per array"
                    )
                try:
                    with zf.open(info) as fh:
                        shape, dtype = _npy_header(fh)
                except Exception as exc:  # bad magic, malformed header, corrupt deflate stream
                    raise DataError(
                        f"{shown}: array {key!r} has no valid .npy header ({type(exc).__name__}: {exc}); {ACCEPTED}"
                    ) from exc
                if dtype.hasobject:
                    raise DataError(
                        f"{shown}: {key!r} is an object (pickled) array, which is never loaded because unpickling can "
                        f"run code; save plain numeric arrays; {ACCEPTED}"
                    )
                declared = math.prod(shape) * dtype.itemsize
                if declared > info.file_size:
                    raise DataError(
                        f"{shown}: array {key!r} declares shape {shape} of {dtype} ({declared:,} bytes) but holds only "
                        f"{info.file_size:,} bytes; the file is truncated or forged; {ACCEPTED}"
                    )
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"{shown} is not an .npz archive (not a readable zip file: {exc}); {ACCEPTED}") from exc


def _read_array(npz: np.lib.npyio.NpzFile, key: str, name: str) -> np.ndarray:
    try:
        return np.asarray(npz[key])
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise DataError(
                f"{name}: '{key}' is an object (pickled) array, which is never loaded because unpickling can run "
                f"code; save plain numeric arrays; {ACCEPTED}"
            ) from exc
        raise DataError(f"{name}: could not read '{key}': {exc}; {ACCEPTED}") from exc
    except Exception as exc:  # corrupt member: zlib.error, EOFError, BadZipFile, ...
        raise DataError(f"{name}: could not read '{key}' ({type(exc).__name__}: {exc}); {ACCEPTED}") from exc


def _num_classes(npz: np.lib.npyio.NpzFile, y: np.ndarray, name: str) -> int:
    observed = int(y.max()) + 1
    if "num_classes" not in npz.files:
        return observed
    raw = _read_array(npz, "num_classes", name)
    if raw.shape != () or not np.issubdtype(raw.dtype, np.integer):
        raise DataError(f"{name}: num_classes must be a scalar int, got shape {raw.shape} dtype {raw.dtype}")
    declared = int(raw)
    if declared < 1:
        raise DataError(f"{name}: num_classes must be >= 1, got {declared}")
    if observed > declared:
        raise DataError(
            f"{name}: y holds label {observed - 1}, outside [0, {declared}) given by num_classes; {ACCEPTED}"
        )
    return declared


def load_npz(path: Path, *, seed: int = 0, name: str | None = None, display_name: str | None = None) -> Dataset:
    """Load and validate an uploaded ``.npz`` evaluation set; split it 60/20/20 train/calib/test.

    Args:
        path: the ``.npz`` file.
        seed: seed of the split shuffle (same seed, same splits).
        name: data-set name shown to the user; defaults to the file's stem.
        display_name: the file name the user knows (e.g. an upload's original name), used in
            messages instead of ``path.name`` (which may be a generated name).

    Returns:
        The data set; ``input_shape`` is ``x``'s per-sample shape (a channel dim added to
        ``(N, H, W)`` input) and ``num_classes`` is ``max(y) + 1`` unless ``num_classes`` is stored.

    Raises:
        DataError: the file is not an npz, misses ``x`` or ``y``, holds pickled arrays, wrong
            dims or dtypes, NaN/inf, fewer than 10 samples, labels outside ``[0, C)``, or
            breaks the archive limits (zip bomb, path traversal, forged array headers).
    """
    path = Path(path)
    shown = display_name or path.name
    label = name or Path(shown).stem
    if not path.is_file():
        raise DataError(f"no data file at {path}")
    _vet_npz(path, shown)
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"{shown} is not a readable .npz archive ({exc}); {ACCEPTED}") from exc
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataError(f"{shown} is a single .npy array, not an .npz archive with x and y; {ACCEPTED}")
    with npz:
        missing = [k for k in ("x", "y") if k not in npz.files]
        if missing:
            found = ", ".join(npz.files) or "nothing"
            raise DataError(f"{shown} has no {' or '.join(missing)} array (found: {found}); {ACCEPTED}")
        x_raw = _read_array(npz, "x", shown)
        y_raw = _read_array(npz, "y", shown)
        num_classes = None
        if "num_classes" in npz.files:
            if x_raw.ndim == 0:
                raise DataError(f"{shown}: x is a scalar; {ACCEPTED}")
            y_checked = validate_y(y_raw, int(x_raw.shape[0]), shown)
            num_classes = _num_classes(npz, y_checked, shown) if len(y_checked) else None
    return dataset_from_arrays(x_raw, y_raw, name=label, shown=shown, seed=seed, num_classes=num_classes)


def load_dataset(ref: str | Path, *, input_shape: tuple[int, ...] | None = None) -> Dataset:
    """Load a data set by reference: a bundled set's name (``"digits"``, ``"fashion_mnist"``, ...; see
    :mod:`lwdash.data.bundled`), or the path of an ``.npz`` or zipped image folder.

    Args:
        ref: a bundled name or a file path.
        input_shape: for an image folder, the model's input ``(C, H, W)`` the images are resized
            to (see :func:`lwdash.data.imagefolder.read_image_folder`); ignored otherwise.

    Raises:
        DataError: unknown reference, a bundled set not installed here (the message says how to
            install it), or an invalid file (the message says what is accepted).
    """
    from lwdash.data.bundled import bundled_names, is_bundled, load_bundled
    from lwdash.data.imagefolder import load_image_folder

    if is_bundled(ref):
        return load_bundled(str(ref))
    path = Path(ref)
    if path.is_file():
        if path.suffix.lower() == ".zip":
            return load_image_folder(path, input_shape=input_shape)
        return load_npz(path)
    raise DataError(
        f"unknown data set {str(ref)!r}: give a bundled set ({', '.join(bundled_names())}) or the path of an "
        "existing .npz file or zipped image folder (.zip)"
    )


def dataset_file_facts(
    src: str, kind: str, dest: str, input_shape: tuple[int, ...] | None, display_name: str
) -> dict[str, Any]:
    """Read an uploaded evaluation set and return what the store keeps of it (run in a child process).

    Args:
        src: the uploaded file.
        kind: ``".npz"`` (kept as it is) or ``".zip"`` (an image folder, decoded and written to ``dest``
            as an ``.npz`` of ``x`` in [0, 1], ``y`` and ``num_classes``).
        dest: where an image folder's arrays are written.
        input_shape: the ``(C, H, W)`` an image folder is resized to (``None``: the images' own size).
        display_name: the file's name as the user knows it, for messages.

    Returns:
        ``samples_count``, ``input_shape`` and ``num_classes``.

    Raises:
        DataError: the file is not a usable evaluation set (the message says why and what is accepted).
    """
    from lwdash.data.imagefolder import read_image_folder

    if kind == ".npz":
        ds = load_npz(Path(src), display_name=display_name)
    else:
        x, y, classes = read_image_folder(Path(src).read_bytes(), input_shape=input_shape, display_name=display_name)
        ds = dataset_from_arrays(x, y, name=display_name, shown=display_name, num_classes=len(classes))
        with open(dest, "wb") as fh:
            np.savez(fh, x=x, y=y, num_classes=np.int64(len(classes)))
    return {"samples_count": len(ds.train) + len(ds.calib) + len(ds.test), "input_shape": tuple(ds.input_shape),
            "num_classes": int(ds.num_classes)}
