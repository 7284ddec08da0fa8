"""The architecture registry: every architecture a state-dict upload (or a sample) can name.

An explicit allow-list (a dict written out below, never ``globals()``): the Fashion-MNIST samples
from :mod:`lwdash.models.fashion_samples`, the digits samples from :mod:`lwdash.models.digits_samples`
and every torchvision classification model (by its torchvision name, e.g. ``resnet34``), always
built with ``weights=None`` (no download). A state dict's class count is read from its weights;
its input size, which weights do not record, is the architecture's usual one unless given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torchvision
from torch import nn

from lwdash.models.base import ModelLoadError
from lwdash.models.digits_samples import (
    DIGITS_INPUT_SHAPE,
    DigitsCNN,
    DigitsMLP,
    DigitsStudent,
    DigitsTeacher,
    digits_mobilenet_v2,
)
from lwdash.models.fashion_samples import (
    FASHION_INPUT_SHAPE,
    FashionCNN,
    FashionStudent,
    FashionViT,
    ResNet20,
    fashion_mobilenet_v2,
)

__all__ = [
    "ArchitectureSpec",
    "architecture_input_shape",
    "build_architecture",
    "describe_architectures",
    "get_architecture",
    "list_architectures",
]

_IMAGENET_INPUT_SHAPE: tuple[int, int, int] = (3, 224, 224)


@dataclass(frozen=True)
class ArchitectureSpec:
    """One known architecture.

    Attributes:
        name: registry key (stable, persisted in model records).
        build: ``build(num_classes) -> nn.Module`` with random weights.
        input_shape: per-sample input shape, no batch dim.
        family: ``"fashion_mnist"`` or ``"digits"`` (bundled samples) or ``"torchvision"``.
    """

    name: str
    build: Callable[[int], nn.Module]
    input_shape: tuple[int, ...]
    family: str


#: Every torchvision classification architecture (``list_models(module=torchvision.models)``), common ones first.
_TORCHVISION_FIRST = ("resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0")
_TORCHVISION_NAMES = (*_TORCHVISION_FIRST, *sorted(
    n for n in torchvision.models.list_models(module=torchvision.models) if n not in _TORCHVISION_FIRST))
#: Architectures whose weights assume another input size than 224x224 (a state dict does not record it).
_TORCHVISION_INPUT_SHAPES = {"inception_v3": (3, 299, 299)}


def _torchvision(name: str) -> Callable[[int], nn.Module]:
    def build(num_classes: int) -> nn.Module:
        return torchvision.models.get_model(name, weights=None, num_classes=num_classes)

    return build


_REGISTRY: dict[str, ArchitectureSpec] = {
    spec.name: spec
    for spec in (
        ArchitectureSpec("fashion_resnet20", ResNet20, FASHION_INPUT_SHAPE, "fashion_mnist"),
        ArchitectureSpec("fashion_mobilenet_v2", fashion_mobilenet_v2, FASHION_INPUT_SHAPE, "fashion_mnist"),
        ArchitectureSpec("fashion_cnn", FashionCNN, FASHION_INPUT_SHAPE, "fashion_mnist"),
        ArchitectureSpec("fashion_vit", FashionViT, FASHION_INPUT_SHAPE, "fashion_mnist"),
        ArchitectureSpec("fashion_student", FashionStudent, FASHION_INPUT_SHAPE, "fashion_mnist"),
        ArchitectureSpec("digits_mlp", DigitsMLP, DIGITS_INPUT_SHAPE, "digits"),
        ArchitectureSpec("digits_cnn", DigitsCNN, DIGITS_INPUT_SHAPE, "digits"),
        ArchitectureSpec("digits_mobilenet_v2", digits_mobilenet_v2, DIGITS_INPUT_SHAPE, "digits"),
        ArchitectureSpec("digits_teacher", DigitsTeacher, DIGITS_INPUT_SHAPE, "digits"),
        ArchitectureSpec("digits_student", DigitsStudent, DIGITS_INPUT_SHAPE, "digits"),
        *(ArchitectureSpec(name, _torchvision(name), _TORCHVISION_INPUT_SHAPES.get(name, _IMAGENET_INPUT_SHAPE),
                           "torchvision") for name in _TORCHVISION_NAMES),
    )
}


def list_architectures() -> list[str]:
    """Names of every known architecture: Fashion-MNIST samples, digits samples, then torchvision models."""
    return list(_REGISTRY)


def get_architecture(name: str) -> ArchitectureSpec:
    """Look up an architecture.

    Raises:
        ModelLoadError: unknown name; the message lists the known ones.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise ModelLoadError(f"unknown architecture {name!r}{hint}; known: {describe_architectures()}") from None


def describe_architectures() -> str:
    """The names a state dict can be loaded as, in one line for messages."""
    samples = [s.name for s in _REGISTRY.values() if s.family != "torchvision"]
    tv = [s.name for s in _REGISTRY.values() if s.family == "torchvision"]
    return (f"the samples' architectures ({', '.join(samples)}) or any of torchvision's {len(tv)} classification "
            f"models by name ({', '.join(tv[:len(_TORCHVISION_FIRST)])}, ...: "
            "torchvision.models.list_models(module=torchvision.models))")


def build_architecture(name: str, num_classes: int = 10) -> nn.Module:
    """Build a known architecture with random weights (never downloads).

    Args:
        name: a key from :func:`list_architectures`.
        num_classes: number of output logits.

    Returns:
        A fresh fp32 module in eval mode.

    Raises:
        ModelLoadError: unknown name (lists the known ones) or ``num_classes < 1``.
    """
    spec = get_architecture(name)
    if int(num_classes) < 1:
        raise ModelLoadError(f"num_classes must be >= 1, got {num_classes}")
    return spec.build(int(num_classes)).float().eval()


def architecture_input_shape(name: str) -> tuple[int, ...]:
    """Per-sample input shape (no batch dim) an architecture expects, e.g. ``(1, 8, 8)``.

    Raises:
        ModelLoadError: unknown name (lists the known ones).
    """
    return get_architecture(name).input_shape
