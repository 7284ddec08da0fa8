"""Reading uploaded zip archives in memory, with limits: never extracted to disk, never trusted.

Every uploaded archive (an ``.npz``, a zipped image folder) goes through :func:`vet_zip` before a
single member is decompressed. It refuses:

- path traversal: absolute member names, drive letters, ``..`` parts, backslashes;
- links and special files: a member whose Unix mode is a symlink, device or fifo;
- encrypted members, and duplicate names (two members with one name read differently by different tools);
- zip bombs: too many members, too many declared uncompressed bytes in all, or a member whose
  declared size is far larger than its compressed size.

Python's ``zipfile`` never returns more bytes than a member declares (it stops at the declared
size and checks the CRC), so the declared sizes bound what decompression can produce.
"""
from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from lwdash.data.base import DataError

__all__ = ["ZipLimits", "read_member", "vet_zip"]


@dataclass(frozen=True)
class ZipLimits:
    """Bounds on one archive.

    Attributes:
        max_members: most members (files and folders) in the archive.
        max_total_bytes: most uncompressed bytes in all members, as declared in the archive.
        max_ratio: most uncompressed bytes per compressed byte in one member larger than
            ``ratio_floor_bytes`` (deflate reaches ~1000x only on degenerate data such as zeros).
        ratio_floor_bytes: members at most this large are not ratio-checked (tiny files compress oddly).
    """

    max_members: int
    max_total_bytes: int
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 1024 * 1024


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _unsafe_name(member: str) -> str | None:
    """Why a member name is a path-traversal risk, or ``None`` if it is a plain relative path."""
    if "\\" in member:
        return "it contains a backslash"
    if member.startswith("/"):
        return "it is an absolute path"
    if len(member) >= 2 and member[1] == ":":
        return "it starts with a drive letter"
    if any(part == ".." for part in PurePosixPath(member).parts):
        return "it contains '..'"
    if "\x00" in member:
        return "it contains a NUL character"
    return None


def vet_zip(zf: zipfile.ZipFile, shown: str, limits: ZipLimits, accepted: str) -> list[zipfile.ZipInfo]:
    """Check an archive's directory before anything is decompressed; return its members.

    Args:
        zf: the open archive.
        shown: the file name the user knows, for messages.
        limits: the bounds to enforce.
        accepted: what is accepted, appended to every message.

    Returns:
        The members (``infolist()``), directories included.

    Raises:
        DataError: path traversal, a link or special file, an encrypted or duplicate member, or a
            zip bomb (member count, total size or compression ratio over the limits).
    """
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise DataError(
            f"{shown} holds {len(infos):,} archive members; the limit is {limits.max_members:,}; {accepted}"
        )
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        why = _unsafe_name(name)
        if why is not None:
            raise DataError(
                f"{shown} is refused: member {name[:120]!r} could write outside its folder ({why}; path "
                f"traversal). Archive members must be relative paths such as 'cat/001.png'; {accepted}"
            )
        mode = info.external_attr >> 16  # Unix mode when written on Unix; many writers leave the type bits 0
        if info.create_system == 3 and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            kind = "a symbolic link" if stat.S_ISLNK(mode) else "a special file (device, fifo or socket)"
            raise DataError(
                f"{shown} is refused: member {name[:120]!r} is {kind}, which could point outside the archive; "
                f"only plain files are accepted; {accepted}"
            )
        if info.flag_bits & 0x1:
            raise DataError(f"{shown} is refused: member {name[:120]!r} is encrypted; {accepted}")
        if name in seen:
            raise DataError(f"{shown} is refused: it holds two members named {name[:120]!r}; {accepted}")
        seen.add(name)
        total += info.file_size
    if total > limits.max_total_bytes:
        raise DataError(
            f"{shown} is refused: its members declare {_mib(total)} uncompressed, over the limit of "
            f"{_mib(limits.max_total_bytes)} (zip bomb guard); {accepted}"
        )
    for info in infos:
        name = info.filename
        if info.file_size > limits.ratio_floor_bytes and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            raise DataError(
                f"{shown} is refused: member {name[:120]!r} expands {ratio:,.0f}x ({_mib(info.compress_size)} to "
                f"{_mib(info.file_size)}); the limit is {limits.max_ratio:,.0f}x (zip bomb guard); {accepted}"
            )
    return infos


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, shown: str, accepted: str) -> bytes:
    """Decompress one vetted member into memory (bounded by its declared size).

    Raises:
        DataError: the member is corrupt (bad CRC, truncated data, unsupported compression).
    """
    try:
        with zf.open(info) as fh:
            data = fh.read(info.file_size + 1)
    except Exception as exc:  # BadZipFile (CRC), zlib.error, EOFError, NotImplementedError (compression)
        raise DataError(
            f"{shown}: member {info.filename[:120]!r} could not be decompressed ({type(exc).__name__}: {exc}); {accepted}"
        ) from exc
    if len(data) > info.file_size:  # zipfile stops at the declared size; this guards that promise
        raise DataError(f"{shown}: member {info.filename[:120]!r} is larger than it declares; {accepted}")
    return data
