"""Small IDX files written by hand, as MNIST-style data sets ship them (for the data tests)."""
from __future__ import annotations

import gzip
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: ``write_idx(name, array_or_bytes, gz=True, folder=None) -> Path`` (the ``write_idx`` fixture).
IdxWriter = Callable[..., Path]


def idx_bytes(array: np.ndarray, *, type_code: int = 0x08) -> bytes:
    """The IDX encoding of ``array``: two zero bytes, type code, rank, big-endian uint32 sizes, the data."""
    return bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_idx_file(folder: Path, name: str, content: np.ndarray | bytes, *, gz: bool = True) -> Path:
    """Write ``content`` (an array, encoded as uint8 IDX, or raw bytes) as ``folder/name[.gz]``."""
    raw = content if isinstance(content, bytes) else idx_bytes(np.ascontiguousarray(content, dtype=np.uint8))
    target = folder / (name + (".gz" if gz else ""))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(gzip.compress(raw, mtime=0) if gz else raw)
    return target
