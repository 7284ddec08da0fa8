"""Fashion-MNIST from Debian's package: the official test set, fixed stratified splits, the registry, the absent case.

The real files are read where the data set is installed (``make test`` installs it); small
hand-written IDX folders cover stratification and corrupt installs, an empty folder the absent package.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _idx_files import IdxWriter

from lwdash.data import DataError, load_dataset, load_digits
from lwdash.data.bundled import (
    DEFAULT_DATA,
    bundled_names,
    default_data_for,
    get_bundled,
    is_bundled,
    list_bundled,
    load_bundled,
)
from lwdash.data.fashion_mnist import (
    DIR_ENV,
    fashion_mnist_dir,
    fashion_mnist_unavailable,
    load_fashion_mnist,
)
from lwdash.data.idx import read_idx

_TRAIN_X, _TRAIN_Y = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
_TEST_X, _TEST_Y = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"


@pytest.fixture(scope="module")
def installed() -> Path:
    """The folder of the real IDX files; fails with the install hint where they are absent."""
    reason = fashion_mnist_unavailable()
    if reason is not None:
        pytest.fail(f"these tests read the real Fashion-MNIST files: {reason}")
    return fashion_mnist_dir()


@pytest.fixture
def absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder in place of the Debian package."""
    folder = tmp_path / "no-fashion"
    folder.mkdir()
    monkeypatch.setenv(DIR_ENV, str(folder))
    return folder


def _counts(y: torch.Tensor) -> list[int]:
    return np.bincount(y.numpy(), minlength=10).tolist()


def _pixel_total(x: torch.Tensor) -> int:
    return int(torch.round(x * 255).to(torch.int64).sum())


# ------------------------------------------------------------------------------------ the real files


def test_full_set_uses_the_official_test_images_and_fixed_stratified_splits(installed: Path) -> None:
    data = load_fashion_mnist()
    assert (data.name, data.input_shape, data.num_classes) == ("fashion_mnist", (1, 28, 28), 10)
    assert (len(data.train), len(data.calib), len(data.test)) == (55_000, 5_000, 10_000)
    official_x = read_idx(installed / (_TEST_X + ".gz"), expect_ndim=3)
    official_y = read_idx(installed / (_TEST_Y + ".gz"), expect_ndim=1)
    assert torch.equal(data.test.y, torch.from_numpy(official_y.astype(np.int64)))  # all 10,000, in file order
    assert torch.equal(torch.round(data.test.x[:, 0] * 255).to(torch.uint8), torch.from_numpy(official_x))
    assert _counts(data.calib.y) == [500] * 10 and _counts(data.train.y) == [5_500] * 10
    # calibration and training split the 60,000 training images between them: every pixel is accounted for
    train_x = read_idx(installed / (_TRAIN_X + ".gz"), expect_ndim=3)
    assert _pixel_total(data.train.x) + _pixel_total(data.calib.x) == int(train_x.sum(dtype=np.int64))
    for split in (data.train, data.calib, data.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert tuple(split.x.shape[1:]) == (1, 28, 28)
        assert float(split.x.min()) == 0.0 and float(split.x.max()) == 1.0  # pixel / 255


def test_splits_are_deterministic_and_the_seed_changes_them(installed: Path) -> None:
    # ``name`` is part of the per-process cache key, so "a" and "b" are two independent loads.
    a = load_fashion_mnist(seed=3, test_limit=300, train_limit=600, name="a")
    b = load_fashion_mnist(seed=3, test_limit=300, train_limit=600, name="b")
    c = load_fashion_mnist(seed=4, test_limit=300, train_limit=600, name="c")
    for split in ("train", "calib", "test"):
        assert torch.equal(getattr(a, split).x, getattr(b, split).x)
        assert torch.equal(getattr(a, split).y, getattr(b, split).y)
    assert not torch.equal(a.calib.x, c.calib.x) and not torch.equal(a.test.x, c.test.x)
    assert (len(a.train), len(a.calib), len(a.test)) == (540, 60, 300)  # calibration: a tenth of the training pool


def test_quick_variant_is_a_stratified_cut_of_the_same_files(installed: Path) -> None:
    quick = load_bundled("fashion_mnist_quick")
    assert quick.name == "fashion_mnist_quick" and quick.input_shape == (1, 28, 28)
    assert (len(quick.train), len(quick.calib), len(quick.test)) == (5_000, 500, 2_000)
    assert _counts(quick.test.y) == [200] * 10 and _counts(quick.calib.y) == [50] * 10
    assert _counts(quick.train.y) == [500] * 10
    assert load_bundled("FASHION_MNIST_QUICK") is quick  # names are case-insensitive; loads are cached


def test_registry_facts_match_what_each_set_loads(installed: Path) -> None:
    assert bundled_names() == ["digits", "fashion_mnist", "fashion_mnist_quick"] and DEFAULT_DATA == "digits"
    for entry in list_bundled():
        data = load_bundled(entry.name)
        assert entry.unavailable() is None and entry.title and entry.description
        assert data.name == entry.name
        assert (tuple(data.input_shape), data.num_classes) == (entry.input_shape, entry.num_classes)
        assert len(data.train) + len(data.calib) + len(data.test) == entry.samples_count


def test_load_dataset_takes_bundled_names_and_lists_them_when_unknown(installed: Path) -> None:
    assert load_dataset("fashion_mnist_quick") is load_bundled("fashion_mnist_quick")
    assert is_bundled(" Fashion_MNIST ") and not is_bundled("dataset/0123") and not is_bundled(None)
    with pytest.raises(DataError, match="give a bundled set \\(digits, fashion_mnist, fashion_mnist_quick\\)"):
        load_dataset("fashion")
    with pytest.raises(DataError, match="unknown bundled data set 'mnist'; bundled: digits, fashion_mnist"):
        get_bundled("mnist")


def test_a_bundled_set_travels_to_a_ray_node_by_name(installed: Path, tmp_path: Path) -> None:
    import pickle

    from lwdash.jobs.ray_executor import ship_inputs
    from lwdash.jobs.spec import JobSpec
    from lwdash.workspace import SqliteStore

    store = SqliteStore(tmp_path / "data")
    spec = JobSpec(model_id="sample/digits_mlp", data_ref="fashion_mnist_quick",
                   technique={"type": "magnitude_pruning", "data": {}})
    shipped = pickle.loads(pickle.dumps(ship_inputs(store, spec)))
    assert shipped.data_bytes is None  # 30 MB of IDX files stay home: the node reads its own copy
    remote = shipped.resolve_data("fashion_mnist_quick")
    assert torch.equal(remote.test.x, store.resolve_data("fashion_mnist_quick").test.x)


# ------------------------------------------------------------------------------- small IDX folders


def _write_set(write_idx: IdxWriter, folder: Path, train_y: np.ndarray, test_y: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    for stem, labels in ((_TRAIN_X, train_y), (_TEST_X, test_y)):
        write_idx(stem, rng.integers(0, 256, size=(len(labels), 28, 28)), folder=folder)
    write_idx(_TRAIN_Y, train_y, folder=folder)
    write_idx(_TEST_Y, test_y, folder=folder, gz=False)  # plain files are read as well


def test_stratified_draws_keep_unbalanced_class_shares_and_exact_counts(
    write_idx: IdxWriter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "small"
    train_y = np.repeat(np.arange(10), [40, 30, 20, 10, 10, 10, 10, 10, 10, 10])  # 160 images, unbalanced
    test_y = np.repeat(np.arange(10), 5)
    _write_set(write_idx, folder, train_y, test_y)
    monkeypatch.setenv(DIR_ENV, str(folder))
    assert fashion_mnist_unavailable() is None
    data = load_fashion_mnist(calib_count=16, test_limit=20, name="small")
    assert (len(data.train), len(data.calib), len(data.test)) == (144, 16, 20)
    assert _counts(data.calib.y) == [4, 3, 2, 1, 1, 1, 1, 1, 1, 1]  # a tenth of each class
    assert _counts(data.test.y) == [2] * 10
    odd = load_fashion_mnist(calib_count=7, name="odd")  # quotas 1.75, 1.31, 0.88, 0.44 x7: largest remainders
    assert len(odd.calib) == 7 and _counts(odd.calib.y)[:3] == [2, 1, 1]
    with pytest.raises(DataError, match="calib_count must leave training images"):
        load_fashion_mnist(calib_count=160, name="all")


def test_a_corrupt_install_is_refused_with_the_file_named(
    write_idx: IdxWriter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "corrupt"
    _write_set(write_idx, folder, np.arange(20) % 10, np.arange(10))
    whole = (folder / (_TRAIN_X + ".gz")).read_bytes()
    (folder / (_TRAIN_X + ".gz")).write_bytes(whole[: len(whole) // 2])
    monkeypatch.setenv(DIR_ENV, str(folder))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz is a truncated or corrupt gzip file"):
        load_bundled("fashion_mnist")
    write_idx(_TRAIN_X, np.zeros((20, 28, 28)), folder=folder)
    write_idx(_TRAIN_Y, np.arange(19) % 10, folder=folder)  # one label short
    with pytest.raises(DataError, match=r"holds 20 images but train-labels-idx1-ubyte\.gz 19 labels"):
        load_fashion_mnist(name="mismatch")
    write_idx(_TRAIN_Y, np.full(20, 12), folder=folder)
    with pytest.raises(DataError, match=r"holds label 12; Fashion-MNIST labels are 0\.\.9"):
        load_fashion_mnist(name="labels")
    write_idx(_TRAIN_X, np.zeros((20, 32, 32)), folder=folder)
    with pytest.raises(DataError, match="holds 32x32 images; Fashion-MNIST images are 28x28"):
        load_fashion_mnist(name="size")


# ---------------------------------------------------------------------------------- package absent


def test_a_model_is_matched_to_the_bundled_set_of_its_input_shape(installed: Path) -> None:
    assert default_data_for((1, 28, 28)) == "fashion_mnist"
    assert default_data_for([1, 8, 8]) == "digits"
    assert default_data_for((3, 32, 32)) == DEFAULT_DATA and default_data_for(None) == DEFAULT_DATA


def test_without_the_package_a_28x28_model_falls_back_to_digits(absent: Path) -> None:
    assert default_data_for((1, 28, 28)) == DEFAULT_DATA


def test_absent_package_gives_the_install_hint_and_digits_still_loads(absent: Path, tmp_path: Path) -> None:
    from lwdash.workspace import SqliteStore

    reason = fashion_mnist_unavailable()
    assert reason is not None and f"no IDX files in {absent}" in reason
    assert "sudo apt-get install dataset-fashion-mnist" in reason and DIR_ENV in reason
    for name in ("fashion_mnist", "fashion_mnist_quick"):
        assert get_bundled(name).unavailable() == reason
        with pytest.raises(DataError) as info:
            load_bundled(name)
        assert str(info.value) == reason
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(name="absent")
    assert get_bundled("digits").unavailable() is None and len(load_bundled("digits").test) == len(load_digits().test)

    store = SqliteStore(tmp_path / "data")
    records = {d.id: d for d in store.list_datasets()}
    assert list(records) == bundled_names()
    assert records["digits"].unavailable == "" and records["fashion_mnist"].unavailable == reason
    assert records["fashion_mnist_quick"].kind == "builtin" and records["fashion_mnist_quick"].path is None
    assert store.get_dataset("fashion_mnist").unavailable == reason  # still a record: old jobs keep their name
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        store.resolve_data("fashion_mnist")
    assert store.resolve_data("digits").name == "digits"
    with pytest.raises(ValueError, match="bundled data set 'fashion_mnist' cannot be deleted"):
        store.delete_dataset("fashion_mnist")


def test_a_partial_install_names_the_missing_files(write_idx: IdxWriter, absent: Path) -> None:
    write_idx(_TEST_X, np.zeros((1, 28, 28)), folder=absent)
    write_idx(_TEST_Y, np.zeros(1), folder=absent, gz=False)
    reason = fashion_mnist_unavailable()
    assert reason is not None and f"no {_TRAIN_X}, {_TRAIN_Y} in {absent}" in reason
