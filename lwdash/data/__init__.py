"""Datasets: the bundled sets (scikit-learn digits, Fashion-MNIST: :mod:`lwdash.data.bundled`) and uploaded
evaluation sets (``.npz``, zipped image folders)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "DataError",
    "Dataset",
    "Split",
    "check_model_fits",
    "load_bundled",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_image_folder",
    "load_npz",
]


class DataError(ValueError):
    """A data set could not be read or does not fit the model; the message says what is accepted."""


@dataclass(frozen=True)
class Split:
    """One split: ``x`` float32 ``(N, *input_shape)``, ``y`` int64 ``(N,)`` class indices."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class Dataset:
    """Fixed train / calibration / test splits of one data set (seeded, reproducible)."""

    name: str
    input_shape: tuple[int, ...]  # per sample, no batch dim, e.g. (1, 8, 8)
    num_classes: int
    train: Split
    calib: Split
    test: Split


# Loaders live in submodules that import the types above (hence after them).
from lwdash.data.bundled import load_bundled  # noqa: E402
from lwdash.data.digits import load_digits  # noqa: E402
from lwdash.data.fashion_mnist import load_fashion_mnist  # noqa: E402
from lwdash.data.fit import check_model_fits  # noqa: E402
from lwdash.data.imagefolder import load_image_folder  # noqa: E402
from lwdash.data.npz import load_dataset, load_npz  # noqa: E402
