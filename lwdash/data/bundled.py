"""The data sets lwdash offers without an upload: one registered entry each, looked up by name.

A job, a result and a CLI ``--data`` refer to a bundled set by its name (``"digits"``,
``"fashion_mnist"``); everything that needs to know whether a reference is bundled, what it is
called on screen, or why it cannot be used here asks this registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lwdash.data.base import DataError, Dataset
from lwdash.data.digits import DIGITS_NAME, load_digits
from lwdash.data.fashion_mnist import FASHION_MNIST_NAME, fashion_mnist_unavailable, load_fashion_mnist

__all__ = [
    "DEFAULT_DATA",
    "BundledDataset",
    "bundled_names",
    "default_data_for",
    "get_bundled",
    "is_bundled",
    "list_bundled",
    "load_bundled",
]

#: The data set a page or command uses when none is chosen (always available: it ships with scikit-learn).
DEFAULT_DATA = DIGITS_NAME


@dataclass(frozen=True)
class BundledDataset:
    """One bundled data set.

    Attributes:
        name: the reference jobs and results record (stable, persisted).
        title: what pages show.
        description: one or two sentences on what it holds and its splits.
        input_shape: per-sample input shape, no batch dim.
        num_classes: number of classes.
        samples_count: train + calibration + test samples.
        load: builds the :class:`Dataset` (fixed, seeded splits).
        unavailable: ``None`` when it can be loaded here, else why not and how to install it.
    """

    name: str
    title: str
    description: str
    input_shape: tuple[int, ...]
    num_classes: int
    samples_count: int
    load: Callable[[], Dataset]
    unavailable: Callable[[], str | None]


def _always() -> str | None:
    return None


_QUICK = FASHION_MNIST_NAME + "_quick"

def _load_quick() -> Dataset:
    return load_fashion_mnist(test_limit=2_000, train_limit=5_500, calib_count=500, name=_QUICK)


_REGISTRY: dict[str, BundledDataset] = {
    d.name: d
    for d in (
        BundledDataset(
            DIGITS_NAME,
            "Digits (handwritten, 8x8)",
            "scikit-learn's 1,797 handwritten digits, 8x8 grey, 10 classes, shipped inside the package: seconds "
            "per job. Splits: 20 % test, 10 % calibration, the rest training (stratified, seeded).",
            (1, 8, 8),
            10,
            1_797,
            load_digits,
            _always,
        ),
        BundledDataset(
            FASHION_MNIST_NAME,
            "Fashion-MNIST (clothing, 28x28)",
            "Zalando's 70,000 28x28 grey images of clothing in 10 classes, from Debian's dataset-fashion-mnist. "
            "Test: the official 10,000 images; calibration: a stratified 5,000 of the training images; "
            "training: the other 55,000.",
            (1, 28, 28),
            10,
            70_000,
            load_fashion_mnist,
            fashion_mnist_unavailable,
        ),
        BundledDataset(
            _QUICK,
            "Fashion-MNIST quick (2,000 test images)",
            "The same files, cut for quick runs: a stratified 2,000 of the official test images, 500 calibration "
            "and 5,000 training images. At 90 % accuracy the standard error of top-1 on 2,000 images is 0.7 "
            "points (0.3 on the full 10,000).",
            (1, 28, 28),
            10,
            7_500,
            _load_quick,
            fashion_mnist_unavailable,
        ),
    )
}


def list_bundled() -> list[BundledDataset]:
    """Every bundled data set, available or not (check ``unavailable()``)."""
    return list(_REGISTRY.values())


def bundled_names() -> list[str]:
    """The references of every bundled data set."""
    return list(_REGISTRY)


def is_bundled(ref: object) -> bool:
    """Whether ``ref`` names a bundled data set (case-insensitive)."""
    return isinstance(ref, str) and ref.strip().lower() in _REGISTRY


def get_bundled(ref: str) -> BundledDataset:
    """The entry of a bundled data set.

    Raises:
        DataError: not a bundled name; the message lists them.
    """
    try:
        return _REGISTRY[ref.strip().lower()]
    except KeyError:
        raise DataError(f"unknown bundled data set {ref!r}; bundled: {', '.join(_REGISTRY)}") from None


def default_data_for(input_shape: tuple[int, ...] | list[int] | None, *, installed_only: bool = True) -> str:
    """The bundled set to evaluate a model of this per-sample input shape on when none is chosen.

    The first registered set of that shape (Fashion-MNIST for 1x28x28 models, digits for 1x8x8
    ones) that can be loaded here (any, with ``installed_only=False``), else :data:`DEFAULT_DATA`.
    """
    if input_shape is not None:
        shape = tuple(int(d) for d in input_shape)
        for d in _REGISTRY.values():
            if d.input_shape == shape and (not installed_only or d.unavailable() is None):
                return d.name
    return DEFAULT_DATA


def load_bundled(ref: str) -> Dataset:
    """Load a bundled data set by name.

    Raises:
        DataError: unknown name, not installed here (the message says how to install it), or a corrupt file.
    """
    entry = get_bundled(ref)
    reason = entry.unavailable()
    if reason is not None:
        raise DataError(reason)
    return entry.load()
