"""Zipped image folders: decoded in memory, converted and resized to the model's input, refused clearly otherwise."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lwdash.data import DataError, check_model_fits, load_dataset, load_image_folder
from lwdash.data.imagefolder import read_image_folder
from lwdash.models import load_sample
from lwdash.workspace import SqliteStore


def _encode(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def _folder(
    classes: tuple[str, ...] = ("cat", "dog"), per_class: int = 6, size: tuple[int, int] = (8, 8), rgb: bool = False,
    prefix: str = "", fmt: str = "PNG",
) -> tuple[bytes, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    pixels = {}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for c in classes:
            for i in range(per_class):
                shape = (size[1], size[0], 3) if rgb else (size[1], size[0])
                arr = rng.integers(0, 256, shape, dtype=np.uint8)
                name = f"{prefix}{c}/{i:02d}.{'png' if fmt == 'PNG' else 'jpg'}"
                zf.writestr(name, _encode(arr, fmt))
                pixels[name] = arr
    return buf.getvalue(), pixels


def test_grey_pngs_become_x_in_0_1_with_class_ids_from_sorted_folders() -> None:
    data, pixels = _folder(classes=("dog", "cat", "bird"))
    x, y, classes = read_image_folder(data, input_shape=(1, 8, 8), display_name="pets.zip")
    assert classes == ["bird", "cat", "dog"] and x.shape == (18, 1, 8, 8) and x.dtype == np.float32
    assert y.tolist() == [0] * 6 + [1] * 6 + [2] * 6  # members in name order: bird/, cat/, dog/
    expected = np.stack([pixels[n] for n in sorted(pixels)]).astype(np.float32)[:, None] / 255.0
    np.testing.assert_array_equal(x, expected)


def test_images_are_resized_and_converted_to_the_model_input() -> None:
    data, _ = _folder(rgb=True, size=(20, 12), prefix="export/")  # one shared top-level folder is stripped
    x, _, classes = read_image_folder(data, input_shape=(1, 8, 8))
    assert x.shape == (12, 1, 8, 8) and classes == ["cat", "dog"] and 0.0 <= x.min() and x.max() <= 1.0
    x3, _, _ = read_image_folder(_folder(size=(8, 8))[0], input_shape=(3, 16, 16))
    assert x3.shape == (12, 3, 16, 16)
    np.testing.assert_array_equal(x3[:, 0], x3[:, 2])  # grey -> RGB repeats the channel
    jpg, _ = _folder(rgb=True, fmt="JPEG")
    assert read_image_folder(jpg)[0].shape == (12, 3, 8, 8)  # no model: the images' own size, RGB kept


def test_a_model_that_does_not_take_images_is_refused_with_both_shapes() -> None:
    data, _ = _folder()
    with pytest.raises(DataError, match=r"pets\.zip is an image folder.*\(1, H, W\).*model expects input \(64,\)"):
        read_image_folder(data, input_shape=(64,), display_name="pets.zip")
    with pytest.raises(DataError, match=r"model expects input \(4, 8, 8\)"):
        read_image_folder(data, input_shape=(4, 8, 8))


def test_load_image_folder_splits_and_fits_a_sample_model(tmp_path: Path) -> None:
    data, _ = _folder(classes=tuple(str(d) for d in range(10)), per_class=3)
    path = tmp_path / "digits_like.zip"
    path.write_bytes(data)
    ds = load_image_folder(path, input_shape=(1, 8, 8))
    assert ds.name == "digits_like" and ds.num_classes == 10 and ds.input_shape == (1, 8, 8)
    assert len(ds.train) + len(ds.calib) + len(ds.test) == 30
    check_model_fits(load_sample("digits_cnn"), ds)  # a real forward pass on the decoded images
    assert load_dataset(path, input_shape=(1, 8, 8)).input_shape == (1, 8, 8)


def test_too_few_images_and_bad_members(tmp_path: Path) -> None:
    few, _ = _folder(per_class=2)
    with pytest.raises(DataError, match=r"holds 4 samples; at least 10"):
        load_image_folder(_write(tmp_path, "few.zip", few))
    with pytest.raises(DataError, match=r"not a readable \.zip archive"):
        read_image_folder(b"not a zip at all", display_name="x.zip")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("cat/a/b.png", _encode(np.zeros((8, 8), np.uint8)))
        zf.writestr("dog/c.png", _encode(np.zeros((8, 8), np.uint8)))
    with pytest.raises(DataError, match=r"'cat/a/b\.png' is 2 folders deep"):
        read_image_folder(buf.getvalue())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("cat/a.gif", b"GIF89a")
    with pytest.raises(DataError, match=r"'cat/a\.gif' is not a \.png or \.jpg image"):
        read_image_folder(buf.getvalue())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # a GIF named .png: checked by content
        gif = io.BytesIO()
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(gif, format="GIF")
        zf.writestr("cat/a.png", gif.getvalue())
    with pytest.raises(DataError, match=r"'cat/a\.png' is a GIF file, not a PNG or JPEG"):
        read_image_folder(buf.getvalue())


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_store_keeps_an_image_folder_as_an_npz_per_input_shape(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "data")
    data, _ = _folder()
    rec = store.import_dataset("pets.zip", data, input_shape=(1, 8, 8))
    assert rec.name == "pets.zip" and rec.samples_count == 12 and rec.input_shape == (1, 8, 8) and rec.num_classes == 2
    assert rec.path is not None and rec.path.suffix == ".npz" and rec.path.parent == store.datasets_dir
    again = store.import_dataset("pets.zip", data, input_shape=(1, 8, 8))
    bigger = store.import_dataset("pets.zip", data, input_shape=(3, 16, 16))
    assert again.id == rec.id and bigger.id != rec.id and bigger.input_shape == (3, 16, 16)
    ds = store.resolve_data(rec.id)
    x_direct, _, _ = read_image_folder(data, input_shape=(1, 8, 8))
    all_x = torch.cat([ds.train.x, ds.calib.x, ds.test.x])
    assert sorted(map(float, all_x.sum(dim=(1, 2, 3)))) == pytest.approx(sorted(map(float, x_direct.sum(axis=(1, 2, 3)))))
    assert list(store.tmp_dir.iterdir()) == []
