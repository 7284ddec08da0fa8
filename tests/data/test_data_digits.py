"""The bundled digits set: shapes, value range, and fixed, disjoint, stratified splits."""

from __future__ import annotations

import numpy as np
import torch

from lwdash.data import Dataset, load_digits


def _rows(split_x: torch.Tensor) -> set[bytes]:
    return {row.tobytes() for row in split_x.numpy().reshape(len(split_x), -1)}


def test_digits_shapes_dtypes_and_range() -> None:
    data = load_digits()
    assert isinstance(data, Dataset)
    assert data.name == "digits"
    assert data.input_shape == (1, 8, 8)
    assert data.num_classes == 10
    for split in (data.train, data.calib, data.test):
        assert split.x.dtype == torch.float32
        assert split.y.dtype == torch.int64
        assert tuple(split.x.shape[1:]) == (1, 8, 8)
        assert split.x.shape[0] == split.y.shape[0]
        assert float(split.x.min()) >= 0.0
        assert float(split.x.max()) <= 1.0
    # pixel / 16: the brightest pixels reach exactly 1.0
    assert float(data.train.x.max()) == 1.0


def test_digits_split_sizes_are_20_10_70_percent() -> None:
    data = load_digits()
    total = len(data.train) + len(data.calib) + len(data.test)
    assert total == 1797
    assert len(data.test) == 360  # ceil(0.2 * 1797)
    assert abs(len(data.calib) - 0.1 * total) <= 1
    assert len(data.train) == total - len(data.test) - len(data.calib)


def test_digits_splits_are_disjoint_and_cover_everything() -> None:
    data = load_digits()
    train, calib, test = _rows(data.train.x), _rows(data.calib.x), _rows(data.test.x)
    assert train.isdisjoint(calib)
    assert train.isdisjoint(test)
    assert calib.isdisjoint(test)
    assert len(train | calib | test) == 1797  # the 1,797 digits images are all distinct


def test_digits_splits_are_stratified() -> None:
    data = load_digits()
    overall = np.bincount(torch.cat([data.train.y, data.calib.y, data.test.y]).numpy(), minlength=10) / 1797.0
    for split in (data.train, data.calib, data.test):
        counts = np.bincount(split.y.numpy(), minlength=10)
        expected = overall * len(split)
        assert np.all(np.abs(counts - expected) <= 1.0), (counts, expected)


def test_digits_is_deterministic_and_seeded() -> None:
    a, b = load_digits(seed=0), load_digits(seed=0)
    assert torch.equal(a.test.x, b.test.x)
    assert torch.equal(a.train.y, b.train.y)
    assert torch.equal(a.calib.x, b.calib.x)
    c = load_digits(seed=1)
    assert _rows(a.test.x) != _rows(c.test.x)
    assert len(c.test) == len(a.test)
