"""Recognising a model file's format by its content (the file suffix is only a hint).

Re-exported by :mod:`lwdash.models.loading`; nothing here unpickles or executes the file.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

__all__ = ["detect_model_format"]


def _looks_like_safetensors(path: Path, head: bytes, size: int) -> bool:
    # safetensors: little-endian u64 header length, then that many bytes of JSON starting with '{'
    if len(head) < 9:
        return False
    (header_len,) = struct.unpack("<Q", head[:8])
    return 2 <= header_len <= size - 8 and head[8:9] == b"{"


def _parses_as_pickle(path: Path, size: int, max_bytes: int = 1024 * 1024) -> bool:
    """Whether a (small) file is one complete pickle: its opcodes are parsed, never executed."""
    import pickletools

    if size > max_bytes:
        return False
    data = path.read_bytes()
    try:
        ops = list(pickletools.genops(data))
    except Exception:  # ValueError on an unknown opcode, truncated argument, ...
        return False
    if not ops or ops[-1][0].name != "STOP" or ops[-1][2] is None:
        return False
    return not data[ops[-1][2] + 1 :].strip()


def detect_model_format(path: Path) -> str:
    """Guess a model file's format from its content.

    Args:
        path: the file.

    Returns:
        One of ``"onnx"`` (anything unrecognised is tried as ONNX, a protobuf without a magic
        number), ``"pt2"``, ``"torchscript"``, ``"torch_pickle"`` (``torch.save`` output: a state
        dict or a pickled object), ``"safetensors"``, ``"npz"`` (a NumPy data set, not a model)
        ``"zip"`` (an unrelated zip archive) or ``"broken_zip"`` (a truncated or corrupt zip).
    """
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(16)
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError):
            return "broken_zip"
        if any("/code/" in n or n.endswith("constants.pkl") for n in names):
            return "torchscript"
        if any(n == "archive_format" or n.endswith("/archive_format") for n in names):
            return "pt2"
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return "torch_pickle"
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
        return "zip"
    if _looks_like_safetensors(path, head, size):
        return "safetensors"
    if head[:1] == b"\x80":  # pickle protocol >= 2: legacy torch.save or a raw pickle
        return "torch_pickle"
    if _parses_as_pickle(path, size):  # protocol 0/1 pickles are text-like opcodes with no magic number
        return "torch_pickle"
    return "onnx"
