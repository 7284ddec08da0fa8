"""The environment a measurement was taken in, and a fixed thread count for PyTorch.

Standard library only at import time (torch is imported inside :func:`torch_threads`), because
``lwdash.measure`` binds :func:`environment` eagerly and the store imports that package.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["cpu_model", "environment", "torch_threads"]

# CPU features that decide whether int8 / bf16 / fp16 kernels can be fast here.
_CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16", "f16c")
_PACKAGES = ("torch", "torchvision", "onnx", "onnxruntime", "onnxscript", "torchao", "torch-pruning", "numpy")


def _cpuinfo() -> dict[str, str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # first processor block is enough
        key, _, value = line.partition(":")
        out[key.strip()] = value.strip()
    return out


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else ``platform.processor()``, else ``"unknown"``."""
    info = _cpuinfo()
    return info.get("model name") or platform.processor() or platform.machine() or "unknown"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment(threads: int) -> dict[str, Any]:
    """Describe where measurements are taken (JSON-safe), for model cards and result records.

    Args:
        threads: the thread count used for PyTorch and ONNX Runtime.

    Returns:
        ``{"cpu_model", "cpu_flags", "logical_cores", "threads", "platform", "python", "versions":
        {package: version or None}, "torch", "onnxruntime", "onnx", "torchao", "torch_pruning",
        "timestamp"}`` (timestamp: ISO 8601 UTC).
    """
    flags = set(_cpuinfo().get("flags", "").split())
    versions = {name: _version(name) for name in _PACKAGES}
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    return {
        "cpu_model": cpu_model(),
        "cpu_flags": [f for f in _CPU_FLAGS if f in flags],
        "logical_cores": os.cpu_count(),
        "usable_cores": affinity,
        "threads": int(threads),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": versions["torch"],
        "onnxruntime": versions["onnxruntime"],
        "onnx": versions["onnx"],
        "torchao": versions["torchao"],
        "torch_pruning": versions["torch-pruning"],
        "versions": versions,
        "timestamp": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)``, restoring the previous count after.

    Raises:
        ValueError: ``threads`` < 1.
    """
    import torch

    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    previous = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
