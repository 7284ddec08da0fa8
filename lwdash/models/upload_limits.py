"""The upload size limit: :data:`MAX_UPLOAD_BYTES`, ``LWDASH_MAX_UPLOAD_MB`` and the check every upload passes.

Re-exported by :mod:`lwdash.models.loading`.
"""

from __future__ import annotations

import math
import os

from lwdash.models._loadutil import ACCEPTED_FORMATS, mib
from lwdash.models.base import ModelLoadError

__all__ = ["MAX_UPLOAD_BYTES", "UPLOAD_LIMIT_ENV", "check_upload_size", "max_upload_bytes"]

#: Default upload size limit (200 MiB); :func:`max_upload_bytes` applies ``LWDASH_MAX_UPLOAD_MB``.
MAX_UPLOAD_BYTES = 200 * 1024 * 1024

UPLOAD_LIMIT_ENV = "LWDASH_MAX_UPLOAD_MB"


def max_upload_bytes() -> int:
    """The upload size limit in bytes: ``LWDASH_MAX_UPLOAD_MB`` (MiB, may be fractional), default 200.

    Read at every call, so an operator's change takes effect without a restart of the library.

    Raises:
        ValueError: the environment variable is set but is not a positive number.
    """
    raw = os.environ.get(UPLOAD_LIMIT_ENV, "").strip()
    if not raw:
        return MAX_UPLOAD_BYTES
    try:
        mib = float(raw)
    except ValueError:
        mib = float("nan")
    if not math.isfinite(mib) or mib <= 0:
        raise ValueError(f"{UPLOAD_LIMIT_ENV} must be a positive number of MiB (e.g. 200), got {raw!r}")
    return max(1, int(mib * 1024 * 1024))


def check_upload_size(n_bytes: int, name: str = "the uploaded file") -> None:
    """Refuse an empty upload or one larger than :func:`max_upload_bytes`.

    Args:
        n_bytes: size of the uploaded file in bytes.
        name: the file's name as the user knows it, for the message.

    Raises:
        ModelLoadError: the file is empty or too large (the message gives both sizes).
    """
    if n_bytes <= 0:
        raise ModelLoadError(f"{name} is empty (0 bytes); accepted formats: {ACCEPTED_FORMATS}")
    limit = max_upload_bytes()
    if n_bytes > limit:
        raise ModelLoadError(
            f"{name} is {mib(n_bytes)} ({n_bytes:,} bytes); the upload limit is {mib(limit)} ({limit:,} bytes, "
            f"set by {UPLOAD_LIMIT_ENV})"
        )
