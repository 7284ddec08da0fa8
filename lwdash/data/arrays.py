"""Arrays to a :class:`~lwdash.data.base.Dataset`: validating ``x``/``y`` and the seeded 60/20/20 split.

Shared by the ``.npz`` loader (:mod:`lwdash.data.npz`) and the image-folder loader
(:mod:`lwdash.data.imagefolder`).
"""
from __future__ import annotations

import numpy as np
import torch

from lwdash.data.base import DataError, Dataset, Split

__all__ = ["ACCEPTED", "MIN_SAMPLES", "dataset_from_arrays", "validate_y"]

MIN_SAMPLES = 10
#: What an array data set must look like; ends every validation message.
ACCEPTED = (
    "accepted: an .npz file (np.savez(path, x=x, y=y)) with x numeric of shape (N, D), (N, H, W) or (N, C, H, W) "
    "and y integer class ids of shape (N,) in [0, num_classes), at least 10 samples"
)
_TEST_FRACTION = 0.2
_CALIB_FRACTION = 0.2


def _validate_x(x: np.ndarray, name: str) -> np.ndarray:
    if x.dtype == object:
        raise DataError(f"{name}: x has dtype object; {ACCEPTED}")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating) or x.dtype == np.bool_):
        raise DataError(f"{name}: x has dtype {x.dtype}, which is not numeric (int or float); {ACCEPTED}")
    if x.ndim == 3:  # (N, H, W) -> (N, 1, H, W)
        x = x[:, None, :, :]
    if x.ndim not in (2, 4):
        raise DataError(f"{name}: x has shape {x.shape} ({x.ndim} dims); {ACCEPTED}")
    if any(d == 0 for d in x.shape[1:]):
        raise DataError(f"{name}: x has shape {x.shape} with an empty per-sample dim; {ACCEPTED}")
    with np.errstate(over="ignore", invalid="ignore"):
        x32 = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x32).all():
        bad = int((~np.isfinite(x32)).sum())
        raise DataError(
            f"{name}: x holds {bad} NaN or infinite values (after conversion to float32); every value must be finite; "
            f"{ACCEPTED}"
        )
    return x32


def validate_y(y: np.ndarray, n: int, name: str) -> np.ndarray:
    if y.dtype == object or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{name}: y has dtype {y.dtype}; y must hold integer class ids (e.g. int64); {ACCEPTED}")
    if y.ndim != 1:
        raise DataError(f"{name}: y has shape {y.shape}; y must be one class id per sample, shape (N,); {ACCEPTED}")
    if y.shape[0] != n:
        raise DataError(f"{name}: x has {n} samples but y has {y.shape[0]} labels; they must match; {ACCEPTED}")
    if n and int(y.min()) < 0:
        raise DataError(
            f"{name}: y holds negative labels (min {int(y.min())}); labels must be class ids in [0, C); {ACCEPTED}"
        )
    return y.astype(np.int64)


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


def dataset_from_arrays(
    x: np.ndarray, y: np.ndarray, *, name: str, shown: str, seed: int = 0, num_classes: int | None = None
) -> Dataset:
    """Validate ``x``/``y`` (as for :func:`load_npz`) and split them 60/20/20 train/calib/test.

    Args:
        x: inputs ``(N, D)``, ``(N, H, W)`` or ``(N, C, H, W)``, numeric.
        y: integer class ids ``(N,)``.
        name: the data set's name.
        shown: the file name the user knows, for messages.
        seed: seed of the split shuffle.
        num_classes: the number of classes when known (e.g. one per folder), else ``max(y) + 1``.

    Raises:
        DataError: wrong dims or dtypes, NaN/inf, too few samples, labels outside ``[0, C)``.
    """
    if x.ndim == 0:
        raise DataError(f"{shown}: x is a scalar; {ACCEPTED}")
    n = int(x.shape[0])
    y = validate_y(y, n, shown)
    if n < MIN_SAMPLES:
        raise DataError(
            f"{shown} holds {n} samples; at least {MIN_SAMPLES} are needed for train/calib/test splits; {ACCEPTED}"
        )
    x = _validate_x(x, shown)
    observed = int(y.max()) + 1
    if num_classes is not None and observed > num_classes:
        raise DataError(f"{shown}: y holds label {observed - 1}, outside [0, {num_classes}); {ACCEPTED}")
    train, calib, test = _split(x, y, seed)

    def split(ix: np.ndarray) -> Split:
        return Split(x=torch.from_numpy(np.ascontiguousarray(x[ix])), y=torch.from_numpy(y[ix].copy()))

    return Dataset(
        name=name,
        input_shape=tuple(int(d) for d in x.shape[1:]),
        num_classes=num_classes if num_classes is not None else observed,
        train=split(train),
        calib=split(calib),
        test=split(test),
    )
