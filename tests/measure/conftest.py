"""Session fixtures for the measurement tests: a small CNN, synthetic data, its export, a PT2E-int8 form."""
from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest
import torch
from _measure_models import INPUT_SHAPE, SmallCNN, make_cnn, make_dataset

from lwdash.data import Dataset
from lwdash.measure.export import export_onnx


@pytest.fixture(scope="session")
def data() -> Dataset:
    return make_dataset()


@pytest.fixture(scope="session")
def cnn() -> SmallCNN:
    return make_cnn(0)


@pytest.fixture(scope="session")
def cnn_onnx(cnn: SmallCNN, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small CNN exported once for the session, in its own folder."""
    folder = tmp_path_factory.mktemp("cnn_onnx")
    return export_onnx(cnn, INPUT_SHAPE, folder / "model.onnx")


@pytest.fixture(scope="session")
def pt2e_int8(cnn: SmallCNN, data: Dataset) -> torch.fx.GraphModule:
    """The small CNN quantized with PT2E (X86InductorQuantizer), calibrated on the calib split.

    Exported at a fixed batch of 4, as a technique would, so it carries a batch guard.
    """
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )

    quantizer = X86InductorQuantizer()
    quantizer.set_global(get_default_x86_inductor_quantization_config())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = torch.export.export(copy.deepcopy(cnn), (data.calib.x[:4],)).module()
        prepared = prepare_pt2e(graph, quantizer)
        for start in range(0, len(data.calib), 4):
            prepared(data.calib.x[start : start + 4])
        return convert_pt2e(prepared)


@pytest.fixture(scope="session")
def pt2e_onnx(pt2e_int8: torch.fx.GraphModule, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The PT2E-int8 model exported once for the session, in its own folder."""
    folder = tmp_path_factory.mktemp("pt2e_onnx")
    return export_onnx(pt2e_int8, INPUT_SHAPE, folder / "q.onnx")
