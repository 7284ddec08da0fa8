"""Fixtures of the runtime tests: the digits CNN sample, its fp32 and int8 artifacts, a fast timing policy.

Artifacts are made once per session: the fp32 ONNX file and ``.pt2`` program, a QDQ int8 ONNX
file (ONNX Runtime ``quantize_static``, calibrated on the calibration split) and a PT2E int8
``.pt2`` (``X86InductorQuantizer``), each in its own folder.
"""
from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from lwdash.data import Dataset, load_digits
from lwdash.measure.export import export_onnx, save_pt2
from lwdash.measure.latency import TimingPolicy
from lwdash.models import load_sample

#: Every scalar field of a Metrics record, for tests that build one around latency records.
SCALARS = {"top1_acc": 1.0, "torch_top1_acc": 1.0, "loss": 0.0, "agreement": 1.0, "onnx_bytes": 1, "pt2_bytes": 0,
           "params_count": 1, "nonzero_params_count": 1, "sparse_bytes": 1, "compressed_bytes": 1, "macs": 1,
           "threads": 1, "test_samples": 1}
FAST = TimingPolicy(warmup_runs=1, min_runs=8, min_time_s=0.02, max_runs=30, max_time_s=0.3, floor_runs=5)


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_digits()


@pytest.fixture(scope="session")
def cnn() -> torch.nn.Module:
    return load_sample("digits_cnn").module.eval()


@pytest.fixture(scope="session")
def fp32_onnx(cnn: torch.nn.Module, digits: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(cnn, digits.input_shape, tmp_path_factory.mktemp("fp32") / "model.onnx")


@pytest.fixture(scope="session")
def fp32_pt2(cnn: torch.nn.Module, digits: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fp32_pt2") / "model.pt2"
    assert save_pt2(cnn, digits.input_shape, path)
    return path


@pytest.fixture(scope="session")
def qdq_onnx(fp32_onnx: Path, digits: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits CNN as a QDQ int8 ONNX file (S8S8, per-channel weights), calibrated on 64 samples."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    name = onnx.load(str(fp32_onnx)).graph.input[0].name
    calib = digits.calib.x[:64].numpy().astype(np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{name: calib[i : i + 16]} for i in range(0, len(calib), 16)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    out = tmp_path_factory.mktemp("qdq") / "model.onnx"
    quantize_static(str(fp32_onnx), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    return out


@pytest.fixture(scope="session")
def pt2e_pt2(cnn: torch.nn.Module, digits: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits CNN quantized with PT2E (X86InductorQuantizer), calibrated at the exported shape, saved as .pt2."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )

    quantizer = X86InductorQuantizer()
    quantizer.set_global(get_default_x86_inductor_quantization_config())
    x = digits.calib.x[:32]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = torch.export.export(copy.deepcopy(cnn), (x,)).module()
        prepared = prepare_pt2e(graph, quantizer)
        prepared(x)
        converted = convert_pt2e(prepared)
    path = tmp_path_factory.mktemp("pt2e") / "model.pt2"
    assert save_pt2(converted, digits.input_shape, path)
    return path
