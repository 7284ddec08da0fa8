"""The data package's base types: :class:`DataError`, one :class:`Split` and a :class:`Dataset` of three.

Every loader of :mod:`lwdash.data` builds on these; the package ``__init__`` re-exports them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["DataError", "Dataset", "Split"]


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
