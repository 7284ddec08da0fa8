"""The record every result (and its baseline) is measured into."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["Metrics"]


@dataclass(frozen=True)
class Metrics:
    """Measured figures of one model; units are in the field names.

    Accuracy is measured on the downloadable ONNX artifact in ONNX Runtime (``top1_acc``) and on
    the PyTorch form (``torch_top1_acc``), both on the test split. Latency is wall-clock, after
    warm-up, at a fixed thread count (``threads``).
    """

    top1_acc: float  # ONNX Runtime, test split, fraction in [0, 1]
    torch_top1_acc: float  # PyTorch form, test split
    loss: float  # mean cross-entropy of the ONNX artifact on the test split
    agreement: float  # fraction of test samples where the prediction equals the baseline's
    onnx_bytes: int  # serialized model.onnx
    pt2_bytes: int  # serialized model.pt2 (0 when the PyTorch form could not be exported)
    params_count: int
    nonzero_params_count: int
    sparse_bytes: int  # weights under a sparse (index + value) encoding
    compressed_bytes: int  # model.onnx after zlib compression
    macs: int  # multiply-accumulates for one sample
    torch_b1_median_ms: float
    torch_b1_p90_ms: float
    torch_b32_median_ms: float
    torch_b32_p90_ms: float
    ort_b1_median_ms: float
    ort_b1_p90_ms: float
    ort_b32_median_ms: float
    ort_b32_p90_ms: float
    threads: int
    test_samples: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Metrics:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
