"""Fashion-MNIST, read from the official IDX files that Debian's ``dataset-fashion-mnist`` package installs.

70,000 real 28x28 grey images of clothing in 10 classes: 60,000 training and 10,000 test images.
lwdash's test split is the official 10,000-image test set; the calibration split is a fixed,
stratified 5,000 of the training images, and training gets the other 55,000. Nothing is
downloaded: when the package is absent, :func:`fashion_mnist_unavailable` says how to install it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from lwdash.data.base import DataError, Dataset, Split
from lwdash.data.idx import read_idx

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_DIR",
    "DIR_ENV",
    "FASHION_MNIST_NAME",
    "INSTALL_HINT",
    "fashion_mnist_dir",
    "fashion_mnist_unavailable",
    "load_fashion_mnist",
]

FASHION_MNIST_NAME = "fashion_mnist"
DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
DIR_ENV = "LWDASH_FASHION_MNIST_DIR"
INSTALL_HINT = (
    "install it with `sudo apt-get install dataset-fashion-mnist` (`make run` and `make test` do), "
    f"or point {DIR_ENV} at a folder holding the four IDX files"
)
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
_CALIB_SAMPLES = 5_000
_SHAPE = (1, 28, 28)


def fashion_mnist_dir() -> Path:
    """The folder holding the four IDX files: ``$LWDASH_FASHION_MNIST_DIR`` or Debian's location."""
    return Path(os.environ.get(DIR_ENV) or DEFAULT_DIR)


def _file(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def fashion_mnist_unavailable() -> str | None:
    """``None`` when all four IDX files are present, else a message saying what is missing and how to install it."""
    folder = fashion_mnist_dir()
    missing = [stem for stem in _FILES.values() if _file(folder, stem) is None]
    if not missing:
        return None
    what = "no IDX files" if len(missing) == len(_FILES) else f"no {', '.join(missing)}"
    return f"Fashion-MNIST is not installed ({what} in {folder}); {INSTALL_HINT}"


def _stratified_take(y: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``count`` samples drawn with every class in proportion to its share of ``y``.

    Each class gets the floor of its quota and the samples left over go to the largest remainders
    (ties to the lower class id), so the total is exactly ``count``; exact shares for balanced sets.
    """
    classes, counts = np.unique(y, return_counts=True)
    quotas = count * counts
    shares = quotas // len(y)
    leftover = count - int(shares.sum())
    if leftover:
        order = np.lexsort((classes, -(quotas % len(y))))  # largest remainder first, then class id
        shares[order[:leftover]] += 1
    picked = [rng.choice(np.flatnonzero(y == c), size=int(k), replace=False) for c, k in zip(classes, shares, strict=True)]
    return np.sort(np.concatenate(picked))


def _read_pair(x_path: Path, y_path: Path) -> tuple[np.ndarray, np.ndarray]:
    x = read_idx(x_path, expect_ndim=3)
    y = read_idx(y_path, expect_ndim=1)
    if len(x) == 0:
        raise DataError(f"{x_path.name} holds no images; reinstall the data set")
    if x.shape[1:] != _SHAPE[1:]:
        raise DataError(f"{x_path.name} holds {x.shape[1]}x{x.shape[2]} images; Fashion-MNIST images are 28x28")
    if len(x) != len(y):
        raise DataError(f"{x_path.name} holds {len(x):,} images but {y_path.name} {len(y):,} labels; reinstall the data set")
    if int(y.max()) >= len(CLASS_NAMES):
        raise DataError(f"{y_path.name} holds label {int(y.max())}; Fashion-MNIST labels are 0..9")
    return x, y


_Stamp = tuple[tuple[str, int, int], ...]  # (path, mtime_ns, size) of each of the four files


def _stamp(folder: Path) -> _Stamp:
    """The four files' identities: the caches below are keyed by them, so a reinstalled file is read again."""
    paths = [_file(folder, stem) for stem in _FILES.values()]
    if any(path is None for path in paths):
        raise DataError(fashion_mnist_unavailable() or f"Fashion-MNIST files missing in {folder}")
    stats = [(str(path), path.stat()) for path in paths if path is not None]
    return tuple((name, st.st_mtime_ns, st.st_size) for name, st in stats)


@lru_cache(maxsize=1)  # 55 MB of uint8: the full set, the quick one and any subset decode the files once
def _read_files(stamp: _Stamp) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    train_x, train_y, test_x, test_y = (Path(name) for name, _, _ in stamp)
    return (*_read_pair(train_x, train_y), *_read_pair(test_x, test_y))


def _to_split(x: np.ndarray, y: np.ndarray) -> Split:
    xf = (x.astype(np.float32) / 255.0)[:, None, :, :]  # (N, 1, 28, 28) in [0, 1]
    return Split(x=torch.from_numpy(np.ascontiguousarray(xf)), y=torch.from_numpy(y.astype(np.int64)))


def load_fashion_mnist(
    seed: int = 0,
    *,
    test_limit: int | None = None,
    train_limit: int | None = None,
    calib_count: int | None = None,
    name: str = FASHION_MNIST_NAME,
) -> Dataset:
    """Load Fashion-MNIST with fixed splits: the official test set, 5,000 calibration and 55,000 training images.

    ``x`` is ``pixel / 255`` as float32 ``(N, 1, 28, 28)``; ``y`` int64 class ids (:data:`CLASS_NAMES`).
    The same seed always gives the same splits. The result is cached per process (treat it as read-only).

    Args:
        seed: seed of the calibration draw (and of the subsets below).
        test_limit: keep a stratified subset of this many official test images (quick runs, tests).
        train_limit: keep a stratified subset of this many images of the training file; the
            calibration split is drawn from them and training gets the rest.
        calib_count: images of the calibration split (stratified); default 5,000, or a tenth of
            ``train_limit`` when that is given.
        name: the data set's name (the reference a job records).

    Raises:
        DataError: the package is absent (with how to install it), a file is truncated or corrupt,
            or the limits leave a split empty.
    """
    for what, limit in (("test_limit", test_limit), ("train_limit", train_limit), ("calib_count", calib_count)):
        if limit is not None and limit < 1:
            raise DataError(f"{what} must be >= 1, got {limit}")
    return _load(_stamp(fashion_mnist_dir()), seed, test_limit, train_limit, calib_count, name)


@lru_cache(maxsize=2)  # the full set and the quick one; the full set's splits take ~220 MB as float32
def _load(
    stamp: _Stamp, seed: int, test_limit: int | None, train_limit: int | None, calib_count: int | None, name: str
) -> Dataset:
    train_x, train_y, test_x, test_y = _read_files(stamp)
    rng = np.random.default_rng(seed)
    if test_limit is not None and test_limit < len(test_y):
        keep = _stratified_take(test_y, test_limit, rng)
        test_x, test_y = test_x[keep], test_y[keep]
    if train_limit is not None and train_limit < len(train_y):
        keep = _stratified_take(train_y, train_limit, rng)
        train_x, train_y = train_x[keep], train_y[keep]
    if calib_count is None:
        calib_count = _CALIB_SAMPLES if train_limit is None else max(len(CLASS_NAMES), train_limit // 10)
    if calib_count >= len(train_y):
        raise DataError(f"calib_count must leave training images: got {calib_count} of {len(train_y)}")
    calib_ix = _stratified_take(train_y, calib_count, rng)
    train_mask = np.ones(len(train_y), dtype=bool)
    train_mask[calib_ix] = False
    return Dataset(
        name=name,
        input_shape=_SHAPE,
        num_classes=len(CLASS_NAMES),
        train=_to_split(train_x[train_mask], train_y[train_mask]),
        calib=_to_split(train_x[calib_ix], train_y[calib_ix]),
        test=_to_split(test_x, test_y),
    )
