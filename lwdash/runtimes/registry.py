"""The runtime registry: each inference runtime is one registered :class:`Runtime` entry.

An entry says which artifact it takes (the ONNX file, the PyTorch form or the ``.pt2`` program),
how to load it at a thread count into a :class:`Runner` (prepare a batch, run it once, and the
scope to time it in), whether it can run here at all, whether its engine is measured in a child
process (``isolated``: a native crash or hang then fails that measurement only), whether a job
measures it unless told otherwise (``default``), which layer fusion it runs with, and how it
writes its own downloadable artifact (``export``) with a one-line ``how_to_run``. :func:`lwdash.measure.measure_model` times every registered
runtime at every batch of :data:`LATENCY_BATCHES`, and the metric catalogue
(:mod:`lwdash.measure.catalogue`) derives each runtime's latency metrics from its entry, so a new
runtime is one module that calls :func:`register_runtime`, and its figures appear on every view.

Standard library only at import time: engines are imported inside ``load``.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

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

ArtifactKind = Literal["onnx", "pytorch", "pt2"]
#: Artifact kind -> what a runtime's ``load`` is given.
ARTIFACTS: dict[str, str] = {
    "onnx": "the path of the self-contained ONNX file (model.onnx)",
    "pytorch": "the PyTorch form, an nn.Module taking float32 (B, *input_shape)",
    "pt2": "the path of the torch.export program (model.pt2), dynamic batch",
}
#: Fusion value -> what it means in the latency matrix.
FUSION: dict[str, str] = {
    "on": "the runtime fuses layers (e.g. Conv+ReLU, real int8 kernels for QDQ pairs)",
    "off": "graph optimisation off: each operator runs on its own",
    "": "not a setting of this runtime",
}
#: The pseudo-runtime key of "the fastest runtime of this result" (metric keys ``best_b32_median_ms``).
BEST = "best"
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
        engine: the engine's name; runtimes of one engine with different settings (ONNX Runtime
            with fusion on and off) share it and sit side by side in the latency matrix
            (default: ``title``).
        fusion: ``"on"``, ``"off"`` or ``""`` (not a setting of this runtime), see :data:`FUSION`.
        caveat: one line shown under the latency matrix when this runtime was measured (``""``: none).
        isolated: measure it in a child process with a time limit, so that a crash (segfault) or
            a hang of its native engine fails that measurement only, not the job.
        default: measured by a job when neither the job nor ``LWDASH_RUNTIMES`` names the runtimes;
            compile-heavy runtimes (tens of seconds per model and batch) say ``False``.
        export: ``export(artifact, out_dir) -> {file name: path}`` writes this runtime's own
            downloadable artifact (``None``: it runs the ONNX / ``.pt2`` download as it is);
            raises :class:`UnsupportedArtifact` (one line) when it cannot.
        export_files: the file names ``export`` writes (the first is the one a user opens), so
            downloads can be offered before they are looked for.
        how_to_run: one line for the model card: how to run the artifact in this runtime.
        imports: the engine's modules, imported before a measurement's clock starts, so that
            ``compile_s`` counts loading and compiling the model, not importing the engine.
    """

    key: str
    title: str
    artifact: ArtifactKind
    load: Callable[[Any, int], Runner]
    available: Callable[[], str | None] = _always_available
    short: str = ""
    row_title: str = ""
    description: str = ""
    engine: str = ""
    fusion: Literal["on", "off", ""] = ""
    caveat: str = ""
    isolated: bool = False
    default: bool = True
    export: Callable[[Any, Path], dict[str, Path]] | None = None
    export_files: tuple[str, ...] = ()
    how_to_run: str = ""
    imports: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.key == BEST:
            raise ValueError(f"runtime key {BEST!r} is reserved for the fastest runtime of a result")
        if not _KEY.match(self.key) or _BATCH_PART.search(self.key):
            raise ValueError(
                f"runtime key {self.key!r} must be snake_case ([a-z0-9_], starting with a letter) without a "
                "'_b<digits>' part (it prefixes metric keys such as ort_b32_median_ms)"
            )
        if self.artifact not in ARTIFACTS:
            raise ValueError(f"runtime {self.key!r}: artifact must be one of {sorted(ARTIFACTS)}, got {self.artifact!r}")
        if not self.title.strip():
            raise ValueError(f"runtime {self.key!r} needs a title")
        if (self.export is None) != (not self.export_files):
            raise ValueError(f"runtime {self.key!r}: give export and export_files together")
        if self.fusion not in FUSION:
            raise ValueError(f"runtime {self.key!r}: fusion must be one of {sorted(FUSION)}, got {self.fusion!r}")
        object.__setattr__(self, "short", self.short or self.title)
        object.__setattr__(self, "row_title", self.row_title or self.title)
        object.__setattr__(self, "engine", self.engine or self.title)

    @property
    def download(self) -> str:
        """The file a user downloads to run in this runtime: its first export file, else model.onnx / model.pt2."""
        if self.export_files:
            return self.export_files[0]
        return "model.onnx" if self.artifact == "onnx" else "model.pt2"

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


def default_runtime_keys() -> tuple[str, ...]:
    """The runtimes a job measures when nothing names them: every registered one with ``default=True``."""
    return tuple(rt.key for rt in list_runtimes() if rt.default)


def resolve_runtimes(keys: Sequence[str] | str | None) -> tuple[str, ...]:
    """The runtime keys a measurement times, in registry (display) order.

    Args:
        keys: ``None`` or ``"default"``: :func:`default_runtime_keys`; ``"all"``: every
            registered runtime; else runtime keys (a sequence, or one comma-separated string
            that may hold ``default`` / ``all`` too).

    Raises:
        ValueError: a key that is not registered (the message lists the registered ones).
    """
    if keys is None:
        return default_runtime_keys()
    if isinstance(keys, str):
        keys = [k for k in (part.strip() for part in keys.split(",")) if k]
    wanted: set[str] = set()
    for k in keys:
        k = str(k).strip()
        if k == "default":
            wanted.update(default_runtime_keys())
        elif k == "all":
            wanted.update(rt.key for rt in list_runtimes())
        elif k in _RUNTIMES:
            wanted.add(k)
        else:
            raise ValueError(f"unknown runtime {k!r}; registered: {', '.join(_RUNTIMES)} (or 'default', 'all')")
    return tuple(rt.key for rt in list_runtimes() if rt.key in wanted)
