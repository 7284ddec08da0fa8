"""A small, validating reader of the IDX files MNIST-style data sets ship as (optionally gzip-compressed).

IDX layout (big-endian): two zero bytes, a type code, the number of dimensions ``d``, then ``d``
uint32 sizes, then the data. lwdash reads only unsigned-byte files (type ``0x08``), the type of
every image and label file of MNIST and Fashion-MNIST. Every size is checked against the bytes
actually present before any array is built, so a truncated or corrupt file is refused with a
message instead of giving a short or garbage array.
"""

from __future__ import annotations

import gzip
import io
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from lwdash.data.base import DataError

__all__ = ["MAX_IDX_BYTES", "read_idx"]

MAX_IDX_BYTES = 512 * 1024 * 1024  # decompressed: Fashion-MNIST's largest file is 47 MB
_UBYTE = 0x08
_TYPE_NAMES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "short", 0x0C: "int", 0x0D: "float", 0x0E: "double"}


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic; at most :data:`MAX_IDX_BYTES`."""
    if path.stat().st_size > MAX_IDX_BYTES:
        raise DataError(f"{path.name} is larger than {MAX_IDX_BYTES // 2**20} MiB; not an IDX data file")
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as fh:
            data = fh.read(MAX_IDX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path.name} is a truncated or corrupt gzip file ({exc}); reinstall the data set") from None
    if len(data) > MAX_IDX_BYTES:
        raise DataError(f"{path.name} decompresses to more than {MAX_IDX_BYTES // 2**20} MiB; not an IDX data file")
    return data


def read_idx(path: Path, *, expect_ndim: int) -> np.ndarray:
    """Read one unsigned-byte IDX file (``.gz`` or plain) into a uint8 array.

    Args:
        path: the file.
        expect_ndim: the number of dimensions the file must have (3 for images, 1 for labels).

    Returns:
        A uint8 array of the file's shape, e.g. ``(60000, 28, 28)``.

    Raises:
        DataError: missing, not IDX, not unsigned bytes, wrong number of dimensions, or the
            data is shorter or longer than the header says (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no IDX file at {path}")
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path.name} is not an IDX file (it must start with two zero bytes, a type code and a rank)")
    type_code, ndim = data[2], data[3]
    if type_code != _UBYTE:
        kind = _TYPE_NAMES.get(type_code, f"unknown type 0x{type_code:02x}")
        raise DataError(f"{path.name} holds {kind} values; lwdash reads unsigned-byte IDX files (type 0x08)")
    if ndim != expect_ndim:
        raise DataError(f"{path.name} has {ndim} dimensions; expected {expect_ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path.name} is truncated inside its header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = math.prod(dims)  # Python ints: a forged header cannot overflow the check
    present = len(data) - header
    if present != expected:
        what = "truncated" if present < expected else "longer than its header says"
        raise DataError(
            f"{path.name} is {what}: the header gives shape {tuple(dims)} ({expected:,} bytes of data), "
            f"the file holds {present:,}; reinstall the data set"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()
