"""Inference runtimes: one registered entry per runtime (load an artifact, run a batch, time it).

Every module of this package (other than ``registry`` and private ``_*`` ones) is imported here,
in name order, and registers its runtime(s) with :func:`register_runtime` when imported:

- ONNX Runtime on the ONNX artifact, graph optimisation on and off (:mod:`~lwdash.runtimes.onnx_runtime`);
- OpenVINO on the ONNX artifact (:mod:`~lwdash.runtimes.openvino_runtime`);
- PyTorch eager on the PyTorch form (:mod:`~lwdash.runtimes.torch_eager`);
- torch.compile (Inductor) on the ``.pt2`` program (:mod:`~lwdash.runtimes.torch_inductor`);
- Apache TVM (Relax, untuned) on the ONNX artifact (:mod:`~lwdash.runtimes.tvm_runtime`).

So a new runtime is one new module here; its latency metrics then appear in the metric
catalogue and every view that reads it. docs/runtimes.md describes each one.

A runtime module must import its engine inside ``load`` (and say in ``available`` when the
engine is missing), so that importing this package stays cheap and never fails.
"""
from __future__ import annotations

import importlib
import pkgutil

from lwdash.runtimes.registry import (
    ARTIFACTS,
    BEST,
    FUSION,
    LATENCY_BATCHES,
    ArtifactKind,
    Runner,
    Runtime,
    UnsupportedArtifact,
    default_runtime_keys,
    get_runtime,
    list_runtimes,
    register_runtime,
    registry_revision,
    resolve_runtimes,
    unregister_runtime,
)

__all__ = [
    "ARTIFACTS",
    "BEST",
    "FUSION",
    "LATENCY_BATCHES",
    "ArtifactKind",
    "Runner",
    "Runtime",
    "UnsupportedArtifact",
    "default_runtime_keys",
    "get_runtime",
    "list_runtimes",
    "register_runtime",
    "registry_revision",
    "resolve_runtimes",
    "unregister_runtime",
]


def _import_runtime_modules() -> None:
    """Import each runtime module once, in name order (that order is the display order)."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name != "registry" and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_import_runtime_modules()
