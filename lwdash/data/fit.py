"""Check that a model can run on a data set before any job is queued."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Protocol

import torch

from lwdash.data.base import DataError, Dataset

if TYPE_CHECKING:
    from lwdash.models.base import LoadedModel

__all__ = ["check_model_fits", "declared_mismatch", "records_mismatch"]

_PROBE_SAMPLES = 2


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return text if len(text) <= 300 else text[:297] + "..."


def declared_mismatch(
    model_shape: tuple[int, ...], model_classes: int, data_name: str, data_shape: tuple[int, ...], data_classes: int
) -> str | None:
    """Why a model's declared input shape or class count does not fit a data set's, or ``None``.

    Cheap (records only, nothing loaded): pages check this before they queue a job, and
    :func:`check_model_fits` before its forward pass.
    """
    model_shape, data_shape = tuple(model_shape), tuple(data_shape)
    if model_shape != data_shape:
        return (
            f"model expects input {_shape(model_shape)} but the data set {data_name!r} has {_shape(data_shape)}; "
            "pick a data set with the model's input shape, or a model made for this data"
        )
    if model_classes != data_classes:
        hint = ""
        if data_classes < model_classes:
            hint = (
                f"; if the data set covers only some of the model's classes, save num_classes={model_classes} "
                "in the .npz"
            )
        return (
            f"model outputs {model_classes} classes but the data set {data_name!r} has {data_classes} "
            f"classes (labels 0..{data_classes - 1}){hint}"
        )
    return None


class _Shaped(Protocol):
    @property
    def input_shape(self) -> tuple[int, ...]: ...

    @property
    def num_classes(self) -> int: ...


class _DataRecord(_Shaped, Protocol):
    @property
    def name(self) -> str: ...

    @property
    def unavailable(self) -> str: ...


def records_mismatch(model: _Shaped, data: _DataRecord) -> str | None:
    """Why a stored model cannot run on a stored data set, or ``None`` (their records: nothing is loaded).

    A bundled data set not installed here is refused with its install hint; otherwise this is
    :func:`declared_mismatch`.
    """
    if data.unavailable:
        return data.unavailable
    return declared_mismatch(tuple(model.input_shape), model.num_classes, data.name, tuple(data.input_shape),
                             data.num_classes)


def check_model_fits(model: LoadedModel, data: Dataset) -> None:
    """Raise :class:`DataError` unless ``model`` takes ``data``'s samples and predicts its classes.

    Compares the declared input shapes and class counts, then runs one real forward pass on
    two test samples (the declared shapes can be right while the model still fails).

    Args:
        model: the loaded model.
        data: the data set it is to be evaluated on.

    Raises:
        DataError: naming both shapes (``model expects input (3, 224, 224) but the data set
            'digits' has (1, 8, 8)``), both class counts, or the forward pass's failure.
    """
    model_shape = tuple(model.input_shape)
    mismatch = declared_mismatch(model_shape, model.num_classes, data.name, tuple(data.input_shape), data.num_classes)
    if mismatch:
        raise DataError(mismatch)
    split = data.test if len(data.test) >= _PROBE_SAMPLES else data.train
    x = split.x[:_PROBE_SAMPLES]
    try:
        with torch.no_grad():
            out = model.module(x)
    except Exception as exc:  # the engine's error (RuntimeError, AssertionError from export guards, ...)
        raise DataError(
            f"model declares input {_shape(model_shape)}, but it failed on {len(x)} samples of the data set "
            f"{data.name!r} with shape {_shape(tuple(x.shape))}: {_reason(exc)}"
        ) from exc
    expected = (len(x), model.num_classes)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
        got = _shape(tuple(out.shape)) if isinstance(out, torch.Tensor) else type(out).__name__
        raise DataError(
            f"model returned {got} for {len(x)} samples of the data set {data.name!r}; expected {_shape(expected)} logits"
        )
