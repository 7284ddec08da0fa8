"""Uploaded .npz evaluation sets: the happy paths and every kind of bad file, refused with a clear DataError."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from lwdash.data import DataError, load_dataset, load_npz


class _CreatesFileWhenUnpickled:
    """Unpickling this runs ``open(path, "w")``: proof that a loader executed code from the file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


def _save(tmp_path: Path, name: str = "set.npz", **arrays: object) -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def _images(n: int = 100, shape: tuple[int, ...] = (1, 8, 8), classes: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((n, *shape), dtype=np.float32)
    y = np.arange(n, dtype=np.int64) % classes
    return x, y


def test_nchw_images_load_with_60_20_20_splits(tmp_path: Path) -> None:
    x, y = _images(100)
    data = load_npz(_save(tmp_path, x=x, y=y))
    assert data.name == "set"
    assert data.input_shape == (1, 8, 8)
    assert data.num_classes == 5
    assert (len(data.train), len(data.calib), len(data.test)) == (60, 20, 20)
    # every sample lands in exactly one split, unchanged
    rows = {r.tobytes() for s in (data.train, data.calib, data.test) for r in s.x.numpy()}
    assert rows == {r.tobytes() for r in x}
    # stratified: 5 classes x 4 samples in the test split
    assert torch.bincount(data.test.y, minlength=5).tolist() == [4, 4, 4, 4, 4]
    assert data.test.x.dtype == torch.float32 and data.test.y.dtype == torch.int64


def test_splits_are_deterministic_per_seed(tmp_path: Path) -> None:
    x, y = _images(100)
    path = _save(tmp_path, x=x, y=y)
    a, b, c = load_npz(path, seed=3), load_npz(path, seed=3), load_npz(path, seed=4)
    assert torch.equal(a.test.x, b.test.x) and torch.equal(a.train.y, b.train.y)
    assert not torch.equal(a.test.x, c.test.x)


def test_grey_images_get_a_channel_dim(tmp_path: Path) -> None:
    x, y = _images(50, shape=(28, 28))
    data = load_npz(_save(tmp_path, x=(x * 255).astype(np.uint8), y=y.astype(np.uint8)))
    assert data.input_shape == (1, 28, 28)
    assert tuple(data.test.x.shape[1:]) == (1, 28, 28)
    # values are kept as stored (no silent rescaling), only cast to float32
    assert data.train.x.dtype == torch.float32 and float(data.train.x.max()) > 1.0


def test_tabular_features_and_declared_num_classes(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 13))
    y = rng.integers(0, 3, size=40)
    data = load_npz(_save(tmp_path, x=x, y=y, num_classes=np.int64(7)), name="wine")
    assert data.name == "wine"
    assert data.input_shape == (13,)
    assert data.num_classes == 7
    assert len(data.train) + len(data.calib) + len(data.test) == 40


def test_unstratifiable_labels_still_split(tmp_path: Path) -> None:
    x, _ = _images(12)
    y = np.array([0] * 11 + [1])  # class 1 has a single sample: no stratified split exists
    data = load_npz(_save(tmp_path, x=x, y=y))
    assert len(data.train) + len(data.calib) + len(data.test) == 12
    assert data.num_classes == 2


def test_load_dataset_by_reference(tmp_path: Path) -> None:
    assert load_dataset("digits").input_shape == (1, 8, 8)
    x, y = _images(30)
    assert load_dataset(_save(tmp_path, x=x, y=y)).num_classes == 5
    with pytest.raises(DataError, match=r"bundled set \(digits, fashion_mnist.*\).*npz"):
        load_dataset("imagenet")
    with pytest.raises(DataError, match=r"no such|not an \.npz|unknown"):
        load_dataset(tmp_path / "missing.npz")


def _bad_cases() -> dict[str, tuple[Callable[[Path], Path], str]]:
    x, y = _images(30)

    def raw(content: bytes) -> Callable[[Path], Path]:
        def make(tmp: Path) -> Path:
            p = tmp / "bad.npz"
            p.write_bytes(content)
            return p

        return make

    def arrays(**kw: object) -> Callable[[Path], Path]:
        return lambda tmp: _save(tmp, **kw)

    def npy(tmp: Path) -> Path:
        p = tmp / "bad.npz"
        with p.open("wb") as fh:
            np.save(fh, x)
        return p

    def truncated(tmp: Path) -> Path:
        good = _save(tmp, "good.npz", x=x, y=y)
        p = tmp / "bad.npz"
        p.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
        return p

    nan_x = x.copy()
    nan_x[3, 0, 2, 2] = np.nan
    inf_x = x.copy()
    inf_x[0, 0, 0, 0] = np.inf
    return {
        "random bytes": (raw(np.random.default_rng(0).bytes(500)), "not an .npz archive"),
        "single npy": (npy, "not an .npz archive"),
        "truncated": (truncated, "not an .npz|could not read"),
        "missing x": (arrays(y=y), "no x array"),
        "missing y": (arrays(x=x), "no y array"),
        "wrong key names": (arrays(images=x, labels=y), r"no x or y array \(found: images, labels\)"),
        "x 1-d": (arrays(x=np.arange(30.0), y=y), r"x has shape \(30,\)"),
        "x 5-d": (arrays(x=x[:, None], y=y), r"x has shape \(30, 1, 1, 8, 8\)"),
        "x strings": (arrays(x=np.array([str(i) for i in range(30)]), y=y), "not numeric"),
        "x complex": (arrays(x=x.astype(np.complex64), y=y), "not numeric"),
        "y float": (arrays(x=x, y=y.astype(np.float32)), "integer class ids"),
        "y 2-d": (arrays(x=x, y=y[:, None]), r"y has shape \(30, 1\)"),
        "y length": (arrays(x=x, y=y[:20]), "30 samples but y has 20 labels"),
        "nan": (arrays(x=nan_x, y=y), "1 NaN or infinite"),
        "inf": (arrays(x=inf_x, y=y), "NaN or infinite"),
        "float32 overflow": (arrays(x=x.astype(np.float64) * 1e300, y=y), "NaN or infinite"),
        "too few samples": (arrays(x=x[:9], y=y[:9]), "holds 9 samples; at least 10"),
        "negative labels": (arrays(x=x, y=y - 1), "negative labels"),
        "label beyond num_classes": (arrays(x=x, y=y, num_classes=np.int64(3)), r"label 4, outside \[0, 3\)"),
        "num_classes not scalar": (arrays(x=x, y=y, num_classes=np.array([5, 5])), "scalar int"),
    }


@pytest.mark.parametrize("case", list(_bad_cases()))
def test_bad_npz_is_refused_with_a_clear_message(tmp_path: Path, case: str) -> None:
    make, pattern = _bad_cases()[case]
    path = make(tmp_path)
    with pytest.raises(DataError, match=pattern):
        load_npz(path)


def test_object_arrays_are_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    x = np.empty(30, dtype=object)
    for i in range(30):
        x[i] = _CreatesFileWhenUnpickled(marker)
    _, y = _images(30)
    path = _save(tmp_path, x=x, y=y)  # np.savez pickles object arrays
    assert not marker.exists()
    with pytest.raises(DataError, match="object \\(pickled\\) array"):
        load_npz(path)
    assert not marker.exists(), "loading the .npz executed code from the file"
