"""A result's notes: costs and misses are warnings, descriptions of what was done are not."""
from __future__ import annotations

from lwdash.analysis.notes import is_warning, split_notes
from lwdash.techniques.pruning import DENSE_KERNEL_NOTE
from lwdash.techniques.quantization import EAGER_REFERENCE_NOTE
from lwdash.techniques.structured import NM_SPEED_NOTE


def test_costs_and_misses_warn() -> None:
    for note in (
        "measured: slower than the baseline in ONNX Runtime at batch 32 (1.34x the time)",
        "measured: no real speed-up in ONNX Runtime at batch 32 (1.01x, within noise)",
        "measured: the ONNX file is larger than the baseline's (1.02x)",
        DENSE_KERNEL_NOTE, NM_SPEED_NOTE, EAGER_REFERENCE_NOTE,
        "The PyTorch form is NOT quantized (fp32 copy): no PyTorch int8 form could be built (x). The ONNX artifact is int8.",
        "Calibrated on 64 samples: the calibration split has only 64 (asked for 128).",
        "half the bytes; this CPU has no dependable fp16 speed-up (latency is measured, not assumed)",
        "Activation type chosen by measurement on ONNX Runtime, batch 32, this machine: U8S8 3 ms, S8S8 4 ms, fp32 2 ms; "
        "shipped U8S8 (0.67x fp32's speed). Every int8 format ran slower than fp32 on ONNX Runtime here",
    ):
        assert is_warning(note), note


def test_descriptions_do_not_warn() -> None:
    notes = [
        "Removed 50% of the channels per prunable layer (L2 group importance): parameters 94.2K -> 24.1K (25.5%).",
        "Output channels shrunk in 3 layers: features.0.0 32->16.",
        "The final classifier 'classifier' keeps its 10 outputs.",
        "Recovery after structured pruning: 1720 steps (2.00 epochs); calibration top-1 17.48 % -> 90.58 %.",
        "Activation type chosen by measurement on ONNX Runtime, batch 32, this machine: U8S8 6.66 ms, S8S8 23.35 ms, "
        "fp32 13.78 ms; shipped U8S8 (2.07x fp32's speed).",
    ]
    assert split_notes(notes) == ([], notes)
    assert split_notes([*notes[:1], DENSE_KERNEL_NOTE]) == ([DENSE_KERNEL_NOTE], notes[:1])
