"""The ``python -m lwdash`` command that reproduces a measurement headless (shown beside numbers in the app).

Both the app (:mod:`lwdash.ui`) and the command line (:mod:`lwdash.cli`) use it; it imports
neither, nor streamlit, nor torch.
"""
from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["cli_data_arg", "cli_model_arg", "reproduce_command"]


def _default_data() -> str:
    from lwdash.data.bundled import DEFAULT_DATA

    return DEFAULT_DATA


def _cli_value(v: Any) -> str:
    """A knob value as ``--set`` reads it back (lists and dicts as JSON)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, separators=(",", ":"))
    if isinstance(v, float):
        return repr(v)
    return str(v)


def cli_model_arg(model_id: str, path: Path | str | None) -> str:
    """``--model`` for a stored model: a sample's name, or the stored file of an upload."""
    return model_id.removeprefix("sample/") if model_id.startswith("sample/") or path is None else str(path)


def cli_data_arg(data_ref: str, path: Path | str | None) -> str:
    """``--data`` for a stored data set: a bundled set's name (it has no file), or the stored file of an upload."""
    return data_ref if path is None else str(path)


def reproduce_command(
    command: str,
    *,
    model: str,
    arch: str | None = None,
    data: str | None = None,
    technique: dict[str, Any] | None = None,
    seed: int = 0,
    threads: int = 1,
    extra: Sequence[str] = (),
) -> str:
    """The shell command that measures the same thing headless (shown beside numbers in the app).

    Args:
        command: ``run``, ``measure`` or ``scan``.
        model: ``--model`` (see :func:`cli_model_arg`).
        arch: ``--arch`` of a state dict.
        data: ``--data`` (see :func:`cli_data_arg`); left out when it is the default data set.
        technique: for ``run``: the config's dict form; every knob is written with ``--set``.
        seed, threads: written when not the defaults.
        extra: further arguments, appended as they are.
    """
    parts = ["python", "-m", "lwdash", command, "--model", model]
    if arch:
        parts += ["--arch", arch]
    if data is not None and data != _default_data():
        parts += ["--data", data]
    if technique is not None:
        parts += ["--technique", str(technique["type"])]
        for k, v in (technique.get("data") or {}).items():
            parts += ["--set", f"{k}={_cli_value(v)}"]
    if seed:
        parts += ["--seed", str(seed)]
    if threads != 1:
        parts += ["--threads", str(threads)]
    parts += list(extra)
    return " ".join(shlex.quote(p) for p in parts)
