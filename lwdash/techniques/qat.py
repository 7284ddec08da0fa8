"""Quantization-aware training (int8, PT2E): fake-quant fine-tuning on the training split, then convert.

The config and its registered technique ``int8_qat`` (family ``quantization``); also importable
from :mod:`lwdash.techniques.quantization`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from lwdash.techniques._common import _seeded, batch_for_export, export_onnx_proto, no_layers_message, weight_layers
from lwdash.techniques.base import CompressedModel, RunContext, TechniqueConfig, knob, register
from lwdash.techniques.quantization_ort import _CALIB_BATCH, _quantized_node_count
from lwdash.techniques.quantization_torch import EAGER_REFERENCE_NOTE, _check_runs, _drop_unused_attributes_

__all__ = ["Int8QatConfig", "apply_int8_qat"]


@dataclass(frozen=True)
class Int8QatConfig(TechniqueConfig):
    """Quantization-aware training: int8 fake-quant fine-tuning on the training split, then convert (PT2E).

    The model is exported, fake-quantize nodes are inserted with PT2E's ``prepare_qat_pt2e`` and
    the x86 quantizer (per-channel int8 weights, uint8 activations with moving-average ranges),
    the weights and ranges are trained together, and ``convert_pt2e`` turns the result into an
    int8 graph. The ONNX artifact is that converted graph (QuantizeLinear/DequantizeLinear with
    the learned scales), which ONNX Runtime fuses into int8 kernels.
    """

    epochs: int = knob(2, ge=1, le=50, sweepable=True, help="Epochs of fake-quant training on the training split")
    lr: float = knob(
        1e-4, gt=0.0, le=1.0, label="Learning rate", help="Adam learning rate (small: the model is already trained)"
    )
    batch_size: int = knob(64, ge=2, le=4096, help="Training batch size")

    def validate_for(self, model: nn.Module, input_shape: tuple[int, ...]) -> None:
        """Reject models with no Conv/Linear layers (nothing for int8 kernels to run).

        Raises:
            ValueError: the model exposes no Conv/Linear layer modules.
        """
        del input_shape
        if not weight_layers(model):
            raise ValueError(no_layers_message("int8_qat", model))


def _qat_train_(prepared: nn.Module, ctx: RunContext, cfg: Int8QatConfig) -> float:
    """Train the fake-quant graph in place (train/eval switched with PT2E's helpers); returns the last loss."""
    from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train

    split = ctx.data.train
    if len(split) < 2:
        raise ValueError("int8_qat needs training samples, and the training split has fewer than 2")
    params = [p for p in prepared.parameters() if p.is_floating_point() and p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    gen = torch.Generator().manual_seed(ctx.seed)
    last = float("nan")
    with _seeded(ctx.seed), torch.enable_grad():
        move_exported_model_to_train(prepared)
        try:
            for epoch in range(cfg.epochs):
                order = torch.randperm(len(split), generator=gen)
                total, count = 0.0, 0
                for i in range(0, len(order), cfg.batch_size):
                    idx = order[i : i + cfg.batch_size]
                    if len(idx) < 2:  # the exported graph is specialized for batches of 2 or more
                        continue
                    opt.zero_grad(set_to_none=True)
                    loss = nn.functional.cross_entropy(prepared(split.x[idx]), split.y[idx])
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * len(idx)
                    count += len(idx)
                last = total / max(count, 1)
                ctx.progress(0.1 + 0.6 * (epoch + 1) / cfg.epochs, f"int8 QAT: epoch {epoch + 1}/{cfg.epochs}, loss {last:.4f}")
        finally:
            move_exported_model_to_eval(prepared)
    return last


_WHEN_INT8_QAT = (
    "When static int8 loses too much accuracy: the int8 rounding is simulated during fine-tuning, so the "
    "weights learn to tolerate it. Costs training time; the deployed model is the same kind of int8 graph "
    "as static int8."
)


@register(
    "int8_qat", Int8QatConfig, family="quantization", title="Quantization-aware training (int8)",
    when=_WHEN_INT8_QAT,
)
def apply_int8_qat(model: nn.Module, cfg: Int8QatConfig, ctx: RunContext) -> CompressedModel:
    """PT2E QAT: export, insert fake-quant, train on the training split, convert to int8, export to ONNX.

    Args:
        model: fp32 classifier (not mutated).
        cfg: epochs, learning rate and batch size of the fake-quant training.
        ctx: data (training split; a calibration batch traces the graph), seed, progress.

    Returns:
        The converted PT2E int8 module and its ONNX (QDQ) export.

    Raises:
        ValueError: no Conv/Linear layers, or the model cannot be exported/prepared for QAT
            (the message gives PT2E's reason).
    """
    from torchao.quantization.pt2e import allow_exported_model_train_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )

    cfg.validate_for(model, ctx.input_shape)
    if len(ctx.data.calib) == 0 and len(ctx.data.train) == 0:
        raise ValueError("int8_qat needs training samples, and the data set has none")
    source = ctx.data.calib.x if len(ctx.data.calib) else ctx.data.train.x
    example = (batch_for_export(source, _CALIB_BATCH),)
    quantizer = X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config(is_qat=True))
    ctx.progress(0.0, "int8 QAT: exporting and inserting fake-quant")
    reasons: list[str] = []
    prepared = None
    for strict in (False, True):
        try:
            exported = torch.export.export(
                copy.deepcopy(model).eval(), example, dynamic_shapes=({0: torch.export.Dim("batch")},), strict=strict
            )
            prepared = prepare_qat_pt2e(exported.module(), quantizer)
            break
        except Exception as e:
            reasons.append(f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}")
    if prepared is None:
        raise ValueError(f"int8_qat could not export or prepare this model for QAT ({'; '.join(reasons)})")

    loss = _qat_train_(prepared, ctx, cfg)
    ctx.progress(0.75, "int8 QAT: converting to int8")
    converted = convert_pt2e(prepared)
    _drop_unused_attributes_(converted)
    allow_exported_model_train_eval(converted)
    converted.eval()
    _check_runs(converted, ctx.input_shape, model)

    ctx.progress(0.85, "int8 QAT: exporting the converted graph to ONNX")
    try:
        onnx_model = export_onnx_proto(converted, ctx.input_shape)
    except Exception as e:
        raise ValueError(f"int8_qat: the converted int8 model did not export to ONNX ({type(e).__name__}: {e})") from e
    notes = [
        f"Trained {cfg.epochs} epoch(s) with int8 fake-quant on the training split (last loss {loss:.4f}), "
        "then converted with PT2E; the ONNX artifact is the converted graph with the learned scales.",
        EAGER_REFERENCE_NOTE,
    ]
    if _quantized_node_count(onnx_model) == 0:
        notes.append("The exported ONNX graph has no QuantizeLinear nodes: the artifact is NOT int8")
    ctx.progress(1.0, "int8 QAT: done")
    return CompressedModel(module=converted, onnx_model=onnx_model, notes=tuple(notes))
