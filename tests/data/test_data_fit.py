"""check_model_fits: shapes and class counts are compared, then checked by a real forward pass."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lwdash.data import DataError, check_model_fits, load_digits
from lwdash.models.base import LoadedModel


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return load_digits()


def _mlp(in_features: int, num_classes: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, num_classes)).eval()


def test_fitting_model_passes(digits) -> None:  # type: ignore[no-untyped-def]
    model = LoadedModel(_mlp(64, 10), (1, 8, 8), 10, "state_dict")
    check_model_fits(model, digits)  # no exception


def test_input_shape_mismatch_names_both_shapes(digits) -> None:  # type: ignore[no-untyped-def]
    model = LoadedModel(_mlp(3 * 224 * 224, 10), (3, 224, 224), 10, "onnx")
    with pytest.raises(DataError) as info:
        check_model_fits(model, digits)
    msg = str(info.value)
    assert "model expects input (3, 224, 224) but the data set 'digits' has (1, 8, 8)" in msg


def test_class_count_mismatch_names_both_counts(digits) -> None:  # type: ignore[no-untyped-def]
    model = LoadedModel(_mlp(64, 1000), (1, 8, 8), 1000, "onnx")
    with pytest.raises(DataError) as info:
        check_model_fits(model, digits)
    msg = str(info.value)
    assert "1000 classes" in msg and "10 classes" in msg and "num_classes=1000" in msg


def test_declared_shape_right_but_forward_fails_is_rephrased(digits) -> None:  # type: ignore[no-untyped-def]
    # declares (1, 8, 8) but really wants 128 features: only a forward pass can tell
    model = LoadedModel(_mlp(128, 10), (1, 8, 8), 10, "torchscript")
    with pytest.raises(DataError) as info:
        check_model_fits(model, digits)
    msg = str(info.value)
    assert "failed on 2 samples" in msg and "'digits'" in msg and "(2, 1, 8, 8)" in msg
    assert isinstance(info.value.__cause__, RuntimeError)


def test_wrong_output_width_is_caught(digits) -> None:  # type: ignore[no-untyped-def]
    model = LoadedModel(_mlp(64, 7), (1, 8, 8), 10, "pt2")
    with pytest.raises(DataError, match=r"returned \(2, 7\).*expected \(2, 10\)"):
        check_model_fits(model, digits)
