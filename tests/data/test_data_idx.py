"""The IDX reader: valid files (gzip and plain) round-trip; truncated, corrupt or foreign files are refused."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from _idx_files import IdxWriter, idx_bytes

from lwdash.data import DataError
from lwdash.data.idx import read_idx


def _images(n: int = 5) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "plain"])
def test_valid_files_round_trip(write_idx: IdxWriter, gz: bool) -> None:
    images, labels = _images(), np.array([0, 9, 3, 3, 7], dtype=np.uint8)
    got_x = read_idx(write_idx("images-idx3-ubyte", images, gz=gz), expect_ndim=3)
    got_y = read_idx(write_idx("labels-idx1-ubyte", labels, gz=gz), expect_ndim=1)
    assert got_x.dtype == np.uint8 and got_x.shape == (5, 28, 28) and np.array_equal(got_x, images)
    assert np.array_equal(got_y, labels)
    got_x[0, 0, 0] ^= 0xFF  # a writable copy, not a view of the file's bytes
    assert read_idx(write_idx("again", images, gz=gz), expect_ndim=3)[0, 0, 0] == images[0, 0, 0]


def test_truncated_data_is_refused_with_both_sizes(write_idx: IdxWriter) -> None:
    raw = idx_bytes(_images())
    path = write_idx("images-idx3-ubyte", raw[:-100])
    with pytest.raises(DataError, match=r"images-idx3-ubyte.gz is truncated: the header gives shape \(5, 28, 28\) "
                                        r"\(3,920 bytes of data\), the file holds 3,820"):
        read_idx(path, expect_ndim=3)


def test_data_longer_than_the_header_is_refused(write_idx: IdxWriter) -> None:
    path = write_idx("labels-idx1-ubyte", idx_bytes(np.arange(10, dtype=np.uint8)) + b"\x00\x01", gz=False)
    with pytest.raises(DataError, match="longer than its header says"):
        read_idx(path, expect_ndim=1)


def test_truncated_gzip_stream_is_refused(tmp_path: Path) -> None:
    whole = gzip.compress(idx_bytes(_images(50)), mtime=0)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz is a truncated or corrupt gzip file"):
        read_idx(path, expect_ndim=3)


def test_corrupt_gzip_stream_is_refused(tmp_path: Path) -> None:
    whole = bytearray(gzip.compress(idx_bytes(_images(50)), mtime=0))
    whole[-6] ^= 0xFF  # the CRC-32 trailer no longer matches the data
    path = tmp_path / "x.gz"
    path.write_bytes(bytes(whole))
    with pytest.raises(DataError, match="truncated or corrupt gzip"):
        read_idx(path, expect_ndim=3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x01\x00\x08\x01" + struct.pack(">I", 3) + b"abc", "is not an IDX file"),
        (b"PK\x03\x04 not idx at all", "is not an IDX file"),
        (b"\x00\x00", "is not an IDX file"),
        (b"", "is not an IDX file"),
        (b"\x00\x00\x08\x03" + struct.pack(">I", 5), "truncated inside its header"),
    ],
    ids=["wrong-magic", "zip", "two-bytes", "empty", "short-header"],
)
def test_files_that_are_not_idx_are_refused(write_idx: IdxWriter, content: bytes, message: str) -> None:
    with pytest.raises(DataError, match=message):
        read_idx(write_idx("f", content, gz=False), expect_ndim=3)


def test_wrong_type_code_is_refused_by_name(write_idx: IdxWriter) -> None:
    floats = idx_bytes(np.zeros((2, 4), dtype=np.uint8), type_code=0x0D)
    with pytest.raises(DataError, match=r"holds float values; lwdash reads unsigned-byte IDX files \(type 0x08\)"):
        read_idx(write_idx("f", floats), expect_ndim=2)
    with pytest.raises(DataError, match="unknown type 0x42"):
        read_idx(write_idx("g", idx_bytes(np.zeros(3, dtype=np.uint8), type_code=0x42)), expect_ndim=1)


def test_wrong_rank_is_refused(write_idx: IdxWriter) -> None:
    path = write_idx("t10k-labels-idx1-ubyte", _images())  # images where labels are expected
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz has 3 dimensions; expected 1"):
        read_idx(path, expect_ndim=1)


def test_a_forged_huge_header_is_refused_without_allocating(write_idx: IdxWriter) -> None:
    forged = b"\x00\x00\x08\x03" + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 2**32 - 1) + b"\x00" * 16
    with pytest.raises(DataError, match="is truncated: the header gives shape"):
        read_idx(write_idx("forged", forged), expect_ndim=3)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no IDX file at"):
        read_idx(tmp_path / "absent.gz", expect_ndim=1)
