"""Inference runtimes: one registered entry per runtime (load an artifact, run a batch, time it).

Every module of this package (other than ``registry`` and private ``_*`` ones) is imported here,
in name order, and registers its runtime(s) with :func:`register_runtime` when imported: today
ONNX Runtime on the ONNX artifact (:mod:`lwdash.runtimes.onnx_runtime`) and PyTorch eager on
the PyTorch form (:mod:`lwdash.runtimes.torch_eager`). So a new runtime is one new module here;
its latency metrics then appear in the metric catalogue and every view that reads it.

A runtime module must import its engine inside ``load`` (and say in ``available`` when the
engine is missing), so that importing this package stays cheap and never fails.
"""
from __future__ import annotations

import importlib
import pkgutil

from lwdash.runtimes.registry import (
    ARTIFACTS,
    LATENCY_BATCHES,
    ArtifactKind,
    Runner,
    Runtime,
    UnsupportedArtifact,
    get_runtime,
    list_runtimes,
    register_runtime,
    registry_revision,
    unregister_runtime,
)

__all__ = [
    "ARTIFACTS",
    "LATENCY_BATCHES",
    "ArtifactKind",
    "Runner",
    "Runtime",
    "UnsupportedArtifact",
    "get_runtime",
    "list_runtimes",
    "register_runtime",
    "registry_revision",
    "unregister_runtime",
]


def _import_runtime_modules() -> None:
    """Import each runtime module once, in name order (that order is the display order)."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name != "registry" and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_import_runtime_modules()
