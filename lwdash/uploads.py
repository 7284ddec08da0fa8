"""What every upload goes through before it is kept: a clean display name, an accepted suffix,
a size check, and reading in a child process (a reader that crashes or hangs takes only the child).

Model and data-set catalogues (:mod:`lwdash.models.catalog`, :mod:`lwdash.data.catalog`) use
these; the user's file name is only ever display metadata, never a path on disk.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lwdash.config import get_settings
from lwdash.isolate import call_isolated

__all__ = [
    "DATASET_SUFFIXES",
    "ISOLATION_WHAT",
    "MODEL_SUFFIXES",
    "UPLOAD_READ_TIMEOUT_S",
    "clean_name",
    "mib",
    "read_isolated",
    "scrub",
    "suffix_of",
]

#: Model file suffixes accepted for upload (what ``lwdash.models.load_model_file`` reads).
MODEL_SUFFIXES = (".onnx", ".pt2", ".pt", ".pth", ".ts", ".safetensors")
#: Evaluation-set suffixes accepted for upload: NumPy archives and zipped image folders.
DATASET_SUFFIXES = (".npz", ".zip")
#: How long reading one upload may take in its child process.
UPLOAD_READ_TIMEOUT_S = 300.0
#: The words for an :class:`lwdash.isolate.IsolationError`'s kind in a refusal message.
ISOLATION_WHAT = {"crash": "crashed", "timeout": "hung"}
_NAME_MAX_CHARS = 200


def clean_name(filename: str) -> str:
    """A display name from an uploaded file name: its last path part, printable, bounded."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:_NAME_MAX_CHARS] or "upload"


def suffix_of(filename: str, accepted: Sequence[str], what: str) -> str:
    """The accepted suffix ``filename`` ends with (longest first).

    Raises:
        ValueError: none of ``accepted``; the message lists them.
    """
    name = clean_name(filename).lower()
    for suffix in sorted(accepted, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    raise ValueError(f"{what} {clean_name(filename)!r} has an unsupported extension; accepted: {', '.join(accepted)}")


def scrub(text: str, tmp: Path, display: str) -> str:
    """An engine message about a temp file, rewritten to name the user's file instead."""
    return text.replace(str(tmp), display).replace(tmp.name, display)


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def read_isolated(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a child process, under the per-job memory limit (``LWDASH_JOB_MEMORY_MB``)."""
    return call_isolated(fn, *args, timeout_s=UPLOAD_READ_TIMEOUT_S, memory_mb=get_settings().job_memory_mb)
