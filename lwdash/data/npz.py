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

import zipfile
from pathlib import Path

import numpy as np
import torch

from lwdash.data import DataError, Dataset, Split

__all__ = ["MAX_NPZ_ARRAY_BYTES", "MIN_SAMPLES", "load_dataset", "load_npz"]

MIN_SAMPLES = 10
MAX_NPZ_ARRAY_BYTES = 2 * 1024**3  # uncompressed, per array: refuses zip bombs before decompressing
_ACCEPTED = (
    "accepted: an .npz file (np.savez(path, x=x, y=y)) with x numeric of shape (N, D), (N, H, W) or (N, C, H, W) "
    "and y integer class ids of shape (N,) in [0, num_classes), at least 10 samples"
)
_TEST_FRACTION = 0.2
_CALIB_FRACTION = 0.2


def _member_sizes(path: Path) -> dict[str, int]:
    try:
        with zipfile.ZipFile(path) as zf:
            return {info.filename: info.file_size for info in zf.infolist()}
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path.name} is not an .npz archive (not a zip file: {exc}); {_ACCEPTED}") from exc


def _read_array(npz: np.lib.npyio.NpzFile, key: str, name: str) -> np.ndarray:
    try:
        return np.asarray(npz[key])
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise DataError(
                f"{name}: '{key}' is an object (pickled) array, which is never loaded because unpickling can run "
                f"code; save plain numeric arrays; {_ACCEPTED}"
            ) from exc
        raise DataError(f"{name}: could not read '{key}': {exc}; {_ACCEPTED}") from exc
    except Exception as exc:  # corrupt member: zlib.error, EOFError, BadZipFile, ...
        raise DataError(f"{name}: could not read '{key}' ({type(exc).__name__}: {exc}); {_ACCEPTED}") from exc


def _validate_x(x: np.ndarray, name: str) -> np.ndarray:
    if x.dtype == object:
        raise DataError(f"{name}: x has dtype object; {_ACCEPTED}")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating) or x.dtype == np.bool_):
        raise DataError(f"{name}: x has dtype {x.dtype}, which is not numeric (int or float); {_ACCEPTED}")
    if x.ndim == 3:  # (N, H, W) -> (N, 1, H, W)
        x = x[:, None, :, :]
    if x.ndim not in (2, 4):
        raise DataError(f"{name}: x has shape {x.shape} ({x.ndim} dims); {_ACCEPTED}")
    if any(d == 0 for d in x.shape[1:]):
        raise DataError(f"{name}: x has shape {x.shape} with an empty per-sample dim; {_ACCEPTED}")
    with np.errstate(over="ignore", invalid="ignore"):
        x32 = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x32).all():
        bad = int((~np.isfinite(x32)).sum())
        raise DataError(
            f"{name}: x holds {bad} NaN or infinite values (after conversion to float32); every value must be finite"
        )
    return x32


def _validate_y(y: np.ndarray, n: int, name: str) -> np.ndarray:
    if y.dtype == object or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{name}: y has dtype {y.dtype}; y must hold integer class ids (e.g. int64); {_ACCEPTED}")
    if y.ndim != 1:
        raise DataError(f"{name}: y has shape {y.shape}; y must be one class id per sample, shape (N,); {_ACCEPTED}")
    if y.shape[0] != n:
        raise DataError(f"{name}: x has {n} samples but y has {y.shape[0]} labels; they must match")
    if n and int(y.min()) < 0:
        raise DataError(f"{name}: y holds negative labels (min {int(y.min())}); labels must be class ids in [0, C)")
    return y.astype(np.int64)


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
        raise DataError(f"{name}: y holds label {observed - 1}, outside [0, {declared}) given by num_classes")
    return declared


def _split(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded 60/20/20 train / calib / test index split, stratified where every class allows it."""
    from sklearn.model_selection import train_test_split  # lazy: sklearn takes a while to import

    idx = np.arange(len(y))

    def cut(ix: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
        labels = y[ix]
        _, counts = np.unique(labels, return_counts=True)
        n_cut = int(np.ceil(fraction * len(ix)))
        can_stratify = counts.min() >= 2 and len(counts) <= n_cut and len(counts) <= len(ix) - n_cut
        return train_test_split(ix, test_size=fraction, stratify=labels if can_stratify else None, random_state=seed)

    rest, test = cut(idx, _TEST_FRACTION)
    train, calib = cut(rest, _CALIB_FRACTION / (1.0 - _TEST_FRACTION))
    return np.sort(train), np.sort(calib), np.sort(test)


def load_npz(path: Path, *, seed: int = 0, name: str | None = None) -> Dataset:
    """Load and validate an uploaded ``.npz`` evaluation set; split it 60/20/20 train/calib/test.

    Args:
        path: the ``.npz`` file.
        seed: seed of the split shuffle (same seed, same splits).
        name: data-set name shown to the user; defaults to the file's stem.

    Returns:
        The data set; ``input_shape`` is ``x``'s per-sample shape (a channel dim added to
        ``(N, H, W)`` input) and ``num_classes`` is ``max(y) + 1`` unless ``num_classes`` is stored.

    Raises:
        DataError: the file is not an npz, misses ``x`` or ``y``, holds pickled arrays, wrong
            dims or dtypes, NaN/inf, fewer than 10 samples, or labels outside ``[0, C)``.
    """
    path = Path(path)
    label = name or path.stem
    shown = path.name
    if not path.is_file():
        raise DataError(f"no data file at {path}")
    sizes = _member_sizes(path)
    for member, size in sizes.items():
        if size > MAX_NPZ_ARRAY_BYTES:
            raise DataError(
                f"{shown}: array {member} is {size / 1024**3:.1f} GiB uncompressed; the limit is "
                f"{MAX_NPZ_ARRAY_BYTES / 1024**3:.0f} GiB per array"
            )
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"{shown} is not a readable .npz archive ({exc}); {_ACCEPTED}") from exc
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataError(f"{shown} is a single .npy array, not an .npz archive with x and y; {_ACCEPTED}")
    with npz:
        missing = [k for k in ("x", "y") if k not in npz.files]
        if missing:
            found = ", ".join(npz.files) or "nothing"
            raise DataError(f"{shown} has no {' or '.join(missing)} array (found: {found}); {_ACCEPTED}")
        x_raw = _read_array(npz, "x", shown)
        y_raw = _read_array(npz, "y", shown)
        if x_raw.ndim == 0:
            raise DataError(f"{shown}: x is a scalar; {_ACCEPTED}")
        n = int(x_raw.shape[0])
        y = _validate_y(y_raw, n, shown)
        if n < MIN_SAMPLES:
            raise DataError(f"{shown} holds {n} samples; at least {MIN_SAMPLES} are needed for train/calib/test splits")
        x = _validate_x(x_raw, shown)
        num_classes = _num_classes(npz, y, shown)

    train, calib, test = _split(x, y, seed)

    def split(ix: np.ndarray) -> Split:
        return Split(x=torch.from_numpy(np.ascontiguousarray(x[ix])), y=torch.from_numpy(y[ix].copy()))

    return Dataset(
        name=label,
        input_shape=tuple(int(d) for d in x.shape[1:]),
        num_classes=num_classes,
        train=split(train),
        calib=split(calib),
        test=split(test),
    )


def load_dataset(ref: str | Path) -> Dataset:
    """Load a data set by reference: ``"digits"`` (bundled) or the path of an ``.npz`` file.

    Raises:
        DataError: unknown reference or an invalid file (the message says what is accepted).
    """
    from lwdash.data.digits import DIGITS_NAME, load_digits

    if isinstance(ref, str) and ref.strip().lower() == DIGITS_NAME:
        return load_digits()
    path = Path(ref)
    if path.is_file():
        return load_npz(path)
    raise DataError(f"unknown data set {str(ref)!r}: give 'digits' (bundled) or the path of an existing .npz file")
