"""The runtime registry: each inference runtime is one registered :class:`Runtime` entry.

An entry says which artifact it takes (the ONNX file or the PyTorch form), how to load it at a
thread count into a :class:`Runner` (prepare a batch, run it once, and the scope to time it in),
and whether it can run here at all. :func:`lwdash.measure.measure_model` times every registered
runtime at every batch of :data:`LATENCY_BATCHES`, and the metric catalogue
(:mod:`lwdash.measure.catalogue`) derives each runtime's latency metrics from its entry, so a new
runtime is one module that calls :func:`register_runtime`, and its figures appear on every view.

Standard library only at import time: engines are imported inside ``load``.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

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

ArtifactKind = Literal["onnx", "pytorch"]
#: Artifact kind -> what a runtime's ``load`` is given.
ARTIFACTS: dict[str, str] = {
    "onnx": "the path of the self-contained ONNX file (model.onnx)",
    "pytorch": "the PyTorch form, an nn.Module taking float32 (B, *input_shape)",
}
#: The batch sizes every runtime is timed at: one sample, and a larger batch.
LATENCY_BATCHES: tuple[int, ...] = (1, 32)

_KEY = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
_BATCH_PART = re.compile(r"_b[0-9]+(?:_|$)")


class UnsupportedArtifact(Exception):
    """Raised by a runtime's ``load`` when it cannot take this artifact; the message is one line saying why."""


def _identity(x: Any) -> Any:
    return x


def _always_available() -> str | None:
    return None


@dataclass(frozen=True)
class Runner:
    """A loaded artifact, ready to be timed.

    Attributes:
        run: one forward pass on a prepared input (its result is discarded when timed).
        prepare: turns a batch of test samples (float32 ``torch.Tensor``) into ``run``'s input;
            called once per batch, outside the timed region. It may raise ``ValueError`` for a
            batch the artifact cannot take (e.g. a fixed batch size).
        scope: a context entered around the warm-up and the timed runs (thread counts,
            inference mode, eval mode); it must restore whatever it changes.
    """

    run: Callable[[Any], Any]
    prepare: Callable[[torch.Tensor], Any] = _identity
    scope: Callable[[], AbstractContextManager[Any]] = nullcontext


@dataclass(frozen=True)
class Runtime:
    """One inference runtime.

    Attributes:
        key: stable snake_case id, persisted in every measurement and the prefix of its metric
            keys (``<key>_b<batch>_<median|p90>_ms``).
        title: the name shown on axes and in search objectives (``"ONNX Runtime"``).
        artifact: what ``load`` takes: ``"onnx"`` or ``"pytorch"`` (see :data:`ARTIFACTS`).
        load: ``load(artifact, threads) -> Runner``; raises :class:`UnsupportedArtifact` (one
            line) when it cannot take this artifact.
        available: ``None`` when the runtime can run here, else the one-line reason (a missing
            package, no device); checked before ``load``.
        short: a compact name for narrow tables and 3-D axes (default: ``title``).
        row_title: the name in metric tables and the model card (default: ``title``).
        description: one sentence on what is timed.
    """

    key: str
    title: str
    artifact: ArtifactKind
    load: Callable[[Any, int], Runner]
    available: Callable[[], str | None] = _always_available
    short: str = ""
    row_title: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if not _KEY.match(self.key) or _BATCH_PART.search(self.key):
            raise ValueError(
                f"runtime key {self.key!r} must be snake_case ([a-z0-9_], starting with a letter) without a "
                "'_b<digits>' part (it prefixes metric keys such as ort_b32_median_ms)"
            )
        if self.artifact not in ARTIFACTS:
            raise ValueError(f"runtime {self.key!r}: artifact must be one of {sorted(ARTIFACTS)}, got {self.artifact!r}")
        if not self.title.strip():
            raise ValueError(f"runtime {self.key!r} needs a title")
        object.__setattr__(self, "short", self.short or self.title)
        object.__setattr__(self, "row_title", self.row_title or self.title)

    def unavailable_reason(self) -> str | None:
        """``None`` when the runtime can run here, else one line saying why not (a failing check is a reason too)."""
        try:
            reason = self.available()
        except Exception as e:  # a broken check must not stop the other runtimes' measurements
            return f"{self.title}: its availability check failed ({type(e).__name__}: {e})"
        return None if reason is None else str(reason).strip().splitlines()[0]


_RUNTIMES: dict[str, Runtime] = {}
_LOCK = threading.Lock()
_REVISION = [0]


def register_runtime(runtime: Runtime) -> Runtime:
    """Add ``runtime`` to the registry (after the ones already there: that is the display order).

    Raises:
        ValueError: a runtime with the same key is registered already.
    """
    with _LOCK:
        if runtime.key in _RUNTIMES:
            raise ValueError(f"a runtime with key {runtime.key!r} is registered already")
        _RUNTIMES[runtime.key] = runtime
        _REVISION[0] += 1
    return runtime


def unregister_runtime(key: str) -> Runtime:
    """Remove the runtime ``key`` and return it.

    Raises:
        KeyError: no such runtime.
    """
    with _LOCK:
        if key not in _RUNTIMES:
            raise KeyError(f"no runtime {key!r} is registered; registered: {', '.join(_RUNTIMES)}")
        _REVISION[0] += 1
        return _RUNTIMES.pop(key)


def get_runtime(key: str) -> Runtime:
    """The registered runtime ``key``.

    Raises:
        ValueError: no such runtime (the message lists the registered ones).
    """
    try:
        return _RUNTIMES[key]
    except KeyError:
        raise ValueError(f"unknown runtime {key!r}; registered: {', '.join(_RUNTIMES)}") from None


def list_runtimes() -> tuple[Runtime, ...]:
    """Every registered runtime, in registration order."""
    return tuple(_RUNTIMES.values())


def registry_revision() -> int:
    """A number that changes whenever a runtime is registered or removed (for caches built from the registry)."""
    return _REVISION[0]
