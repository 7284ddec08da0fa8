"""The bundled scikit-learn digits set: 1,797 real 8x8 handwritten digits, no download."""

from __future__ import annotations

import numpy as np
import torch

from lwdash.data.base import Dataset, Split

__all__ = ["DIGITS_NAME", "load_digits"]

DIGITS_NAME = "digits"
_TEST_FRACTION = 0.2
_CALIB_FRACTION = 0.1


def load_digits(seed: int = 0) -> Dataset:
    """Load scikit-learn's digits with fixed, stratified train / calibration / test splits.

    ``x`` is ``pixel / 16`` as float32 ``(N, 1, 8, 8)`` in ``[0, 1]``; ``y`` int64 class ids 0..9.
    The test split holds 20 % of the samples, the calibration split 10 %, training the rest;
    every split keeps the class proportions, and the same seed always gives the same splits.

    Args:
        seed: seed of the split shuffles.

    Returns:
        The data set named ``"digits"`` with input shape ``(1, 8, 8)`` and 10 classes.
    """
    from sklearn.datasets import load_digits as _sk_load_digits  # lazy: sklearn takes a while to import
    from sklearn.model_selection import train_test_split

    bunch = _sk_load_digits()
    x = (np.asarray(bunch.images, dtype=np.float64) / 16.0).astype(np.float32)[:, None, :, :]  # (N, 1, 8, 8)
    y = np.asarray(bunch.target, dtype=np.int64)  # (N,)
    idx = np.arange(len(y))
    idx_rest, idx_test = train_test_split(idx, test_size=_TEST_FRACTION, stratify=y, random_state=seed)
    calib_of_rest = _CALIB_FRACTION / (1.0 - _TEST_FRACTION)
    idx_train, idx_calib = train_test_split(idx_rest, test_size=calib_of_rest, stratify=y[idx_rest], random_state=seed)

    def split(ix: np.ndarray) -> Split:
        ix = np.sort(ix)
        return Split(x=torch.from_numpy(np.ascontiguousarray(x[ix])), y=torch.from_numpy(y[ix].copy()))

    return Dataset(
        name=DIGITS_NAME,
        input_shape=(1, 8, 8),
        num_classes=10,
        train=split(idx_train),
        calib=split(idx_calib),
        test=split(idx_test),
    )
