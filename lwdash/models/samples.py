"""The bundled sample models: the manifest and the trained weights in ``sample_models/``.

The Fashion-MNIST samples (``(B, 1, 28, 28)`` input, the default gallery entries) have their
architectures in :mod:`lwdash.models.fashion_samples`; the digits samples, which take the
scikit-learn digits images, ``(B, 1, 8, 8)`` float32 in ``[0, 1]``, for quick runs, have theirs in
:mod:`lwdash.models.digits_samples` (re-exported here). All return ``(B, 10)`` logits. The weights
were trained by ``python sample_models/train.py``, which also wrote ``sample_models/manifest.json``
(measured test accuracy, parameter count, sha256), in gallery order.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lwdash.models.base import LoadedModel, ModelLoadError
from lwdash.models.digits_samples import (
    DIGITS_INPUT_SHAPE,
    DigitsCNN,
    DigitsMLP,
    DigitsStudent,
    DigitsTeacher,
    digits_mobilenet_v2,
)
from lwdash.models.registry import build_architecture

__all__ = [
    "DIGITS_INPUT_SHAPE",
    "REBUILD_COMMAND",
    "DigitsCNN",
    "DigitsMLP",
    "DigitsStudent",
    "DigitsTeacher",
    "SampleInfo",
    "digits_mobilenet_v2",
    "list_samples",
    "load_sample",
    "samples_dir",
]

REBUILD_COMMAND = "python sample_models/train.py"
_MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class SampleInfo:
    """One bundled, trained sample model as described by ``sample_models/manifest.json``.

    Attributes:
        name: stable key, e.g. ``digits_cnn``.
        title: short human-readable name.
        description: one or two sentences for the model picker.
        arch: architecture registry key (``lwdash.models.registry``).
        input_shape: per-sample input shape, no batch dim, e.g. ``(1, 8, 8)``.
        num_classes: number of output logits.
        params_count: number of parameters (measured by the training script).
        test_acc: top-1 accuracy on the test split of ``dataset`` (for Fashion-MNIST the official
            10,000 test images), fraction in ``[0, 1]``, measured in PyTorch by the training script.
        path: absolute path of the ``.safetensors`` weight file.
        role: ``""``, ``"teacher"`` or ``"student"`` (the distillation pair).
        dataset: the bundled data set it was trained and measured on (``"fashion_mnist"`` or ``"digits"``).
        test_acc_quick: top-1 accuracy on the quick subset (``fashion_mnist_quick``), where recorded.
        macs: multiply-accumulates per image (counted on the exported ONNX graph), where recorded.
    """

    name: str
    title: str
    description: str
    arch: str
    input_shape: tuple[int, ...]
    num_classes: int
    params_count: int
    test_acc: float
    path: Path
    role: str = ""
    dataset: str = "digits"
    test_acc_quick: float | None = None
    macs: int | None = None


def samples_dir() -> Path:
    """Folder of the bundled samples: ``LWDASH_SAMPLES_DIR`` if set, else ``<repo>/sample_models``."""
    env = os.environ.get("LWDASH_SAMPLES_DIR")
    if env:
        return Path(env).expanduser().resolve()
    return Path(__file__).resolve().parents[2] / "sample_models"


def _read_manifest(folder: Path) -> list[dict[str, Any]]:
    manifest = folder / _MANIFEST_NAME
    if not manifest.is_file():
        raise ModelLoadError(
            f"the sample-model manifest {manifest} is missing; rebuild the samples with `{REBUILD_COMMAND}`"
        )
    try:
        data = json.loads(manifest.read_text())
        entries = data["models"]
        if not isinstance(entries, list):
            raise TypeError("'models' is not a list")
        return entries
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(
            f"the sample-model manifest {manifest} is unreadable ({exc}); rebuild the samples with `{REBUILD_COMMAND}`"
        ) from exc


def _info_from_entry(entry: dict[str, Any], folder: Path) -> SampleInfo:
    return SampleInfo(
        name=str(entry["name"]),
        title=str(entry["title"]),
        description=str(entry["description"]),
        arch=str(entry["arch"]),
        input_shape=tuple(int(d) for d in entry["input_shape"]),
        num_classes=int(entry["num_classes"]),
        params_count=int(entry["params_count"]),
        test_acc=float(entry["test_acc"]),
        path=folder / str(entry["file"]),
        role=str(entry.get("role", "")),
        dataset=str(entry.get("trained_with", {}).get("dataset", "digits")),
        test_acc_quick=None if entry.get("test_acc_quick") is None else float(entry["test_acc_quick"]),
        macs=None if entry.get("macs") is None else int(entry["macs"]),
    )


def list_samples() -> list[SampleInfo]:
    """The bundled trained samples, in manifest order: the Fashion-MNIST ones first, then the digits ones.

    Returns:
        One :class:`SampleInfo` per sample.

    Raises:
        ModelLoadError: the manifest is missing or unreadable (the message names the rebuild command).
    """
    folder = samples_dir()
    return [_info_from_entry(e, folder) for e in _read_manifest(folder)]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_sample(name: str) -> LoadedModel:
    """Build a sample's architecture and load its trained weights (sha256 verified).

    Args:
        name: a sample name from :func:`list_samples`, e.g. ``"fashion_resnet20"`` or ``"digits_cnn"``.

    Returns:
        A fp32 module in eval mode with ``source_format="sample"`` and ``arch`` set.

    Raises:
        ModelLoadError: unknown name (lists the known ones), or a missing, corrupt or mismatching
            weight file (names the rebuild command).
    """
    folder = samples_dir()
    entries = {str(e.get("name")): e for e in _read_manifest(folder)}
    if name not in entries:
        known = ", ".join(sorted(entries)) or "(none)"
        raise ModelLoadError(f"unknown sample model {name!r}; known samples: {known}")
    entry = entries[name]
    info = _info_from_entry(entry, folder)
    if not info.path.is_file():
        raise ModelLoadError(
            f"the weights of sample {name!r} ({info.path}) are missing; rebuild the samples with `{REBUILD_COMMAND}`"
        )
    expected = str(entry.get("sha256", ""))
    actual = _sha256(info.path)
    if expected != actual:
        raise ModelLoadError(
            f"the weights of sample {name!r} ({info.path}) are corrupt: sha256 {actual[:12]}... does not match "
            f"the manifest's {expected[:12]}...; rebuild the samples with `{REBUILD_COMMAND}`"
        )
    from safetensors.torch import load_file

    try:
        state = load_file(str(info.path))
    except Exception as exc:  # safetensors raises its own error types
        raise ModelLoadError(
            f"could not read the weights of sample {name!r} ({info.path}): {exc}; "
            f"rebuild the samples with `{REBUILD_COMMAND}`"
        ) from exc
    module = build_architecture(info.arch, num_classes=info.num_classes)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(
            f"the weights of sample {name!r} do not fit architecture {info.arch!r}: {exc}; "
            f"rebuild the samples with `{REBUILD_COMMAND}`"
        ) from exc
    module = module.float().eval()
    return LoadedModel(
        module=module,
        input_shape=info.input_shape,
        num_classes=info.num_classes,
        source_format="sample",
        arch=info.arch,
    )
