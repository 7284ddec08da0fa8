"""Structured and semi-structured sparsity: remove whole channels, or keep N of every M weights.

``structured_pruning`` removes whole output channels/filters with torch-pruning's dependency
graph, so coupled layers (residual adds, depthwise convs, batch norms, the Linear after a
flatten) shrink together: the tensors physically get smaller, MACs fall and dense kernels run
faster. The final classifier keeps its outputs (the class count), only its inputs shrink.

``nm_sparsity`` zeroes weights in a fixed N:M pattern (default 2:4) along the reduction
dimension. Shapes stay dense: only GPUs with sparse tensor cores run that pattern faster. It lives
in :mod:`lwdash.techniques.nm_sparsity` and is re-exported here.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from lwdash.techniques._common import _layers, _weight, classifier_name, no_layers_message, weight_layers
from lwdash.techniques.base import CompressedModel, RunContext, knob, register
from lwdash.techniques.nm_sparsity import (
    NM_SPEED_NOTE,
    NMSparsityConfig,
    apply_nm_sparsity,
    nm_eligible_layers,
    nm_mask,
)
from lwdash.techniques.recovery import RecoveryKnobs, recover_after

__all__ = [
    "NM_SPEED_NOTE",
    "NMSparsityConfig",
    "StructuredPruningConfig",
    "apply_nm_sparsity",
    "apply_structured_pruning",
    "count_macs_params",
    "nm_eligible_layers",
    "nm_mask",
]


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
def count_macs_params(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """Multiply-accumulates for one sample and the parameter count.

    MACs are counted on the model's ONNX export by :func:`lwdash.measure.macs.count_macs`, the
    counter of every metrics table, so a note and the table agree (torch-pruning's own counter
    differs: 5.91M against 5.49M for the digits MobileNetV2); parameters by torch-pruning.

    Args:
        model: the module (run once in eval mode on a zero sample; its train/eval mode is restored).
        input_shape: per-sample input shape, no batch dim.

    Returns:
        ``(macs, params_count)``.
    """
    import torch_pruning as tp

    from lwdash.measure.macs import count_macs
    from lwdash.techniques._common import export_onnx_proto

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            _, params = tp.utils.count_ops_and_params(model, torch.zeros((1, *input_shape)))
        macs = count_macs(export_onnx_proto(copy.deepcopy(model).eval(), tuple(input_shape)))
    finally:
        model.train(was_training)
    return int(macs), int(params)


def _execution_order(model: nn.Module, example: torch.Tensor) -> list[nn.Module]:
    """Conv/Linear modules in the order a forward pass runs them."""
    order: list[nn.Module] = []
    handles = [mod.register_forward_hook(lambda m, _i, _o: order.append(m)) for _, mod in weight_layers(model)]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()
    return order


def _fmt_count(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M"
    if n >= 10_000:
        return f"{n / 1e3:.1f}K"
    return str(n)


# --------------------------------------------------------------------------------------------
# Structured (channel) pruning
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StructuredPruningConfig(RecoveryKnobs):
    """Remove whole channels/filters by L1/L2 norm (group-aware): smaller tensors, fewer MACs, real speed-up.

    Channels are ranked per coupled group (torch-pruning's dependency graph), so a residual add,
    a depthwise conv and the batch norms around a channel lose it together. ``ratio`` is the
    fraction of channels removed from each prunable layer: removing 30 % of channels removes
    roughly half the MACs of a conv that loses both inputs and outputs. The final classifier keeps
    its outputs.
    """

    ratio: float = knob(
        0.5,
        gt=0.0,
        le=0.9,
        step=0.05,
        sweepable=True,
        help="Fraction of the channels removed from each prunable layer (per channel, not per weight)",
    )
    norm: Literal["l1", "l2"] = knob("l2", help="Channel importance: L1 or L2 norm of each coupled channel group")
    round_to: int = knob(
        8,
        ge=1,
        le=64,
        label="Round channels to",
        help="Keep every pruned layer's channel count a multiple of this (1: no rounding). Odd counts defeat "
        "the CPU's vector kernels (measured here: torchvision MobileNetV2 pruned 30 % ran 0.53x, slower, in ONNX "
        "Runtime at batch 32 unrounded, 1.64x rounded to 8)",
        stored_default=1,
    )

    def validate_for(self, model: nn.Module, input_shape: tuple[int, ...]) -> None:
        """Reject models with no channel to remove.

        Raises:
            ValueError: the model has no Conv/Linear layer modules, or its only one is the final
                classifier (whose outputs are the classes and are never removed).
        """
        del input_shape
        layers = weight_layers(model)
        if not layers:
            raise ValueError(no_layers_message("structured_pruning", model))
        if len(layers) == 1:
            raise ValueError(
                f"structured_pruning: the only Conv/Linear layer, {layers[0][0]!r}, is the final classifier, "
                "whose outputs are the classes; there is no hidden channel to remove"
            )


_WHEN_STRUCTURED_PRUNING = (
    "When latency matters: whole channels go, so the model has fewer MACs and runs faster on dense "
    "runtimes (the result's latency matrix shows by how much). It costs accuracy, which the recovery training after it wins back in part; channel counts "
    "are rounded to a multiple (round_to) that fast kernels like."
)


@register(
    "structured_pruning", StructuredPruningConfig, family="structured_pruning", title="Structured pruning (channels)",
    when=_WHEN_STRUCTURED_PRUNING,
)
def apply_structured_pruning(model: nn.Module, cfg: StructuredPruningConfig, ctx: RunContext) -> CompressedModel:
    """Remove the least important channels of every coupled group, then optionally fine-tune.

    Args:
        model: fp32 classifier (not mutated).
        cfg: the pruning config.
        ctx: data (a calibration sample traces the graph; the training split fine-tunes), seed, progress.

    Returns:
        The physically smaller copy and notes with the measured parameter and MAC counts.

    Raises:
        ValueError: the model has nothing to prune, or torch-pruning cannot trace it.
    """
    import torch_pruning as tp

    cfg.validate_for(model, ctx.input_shape)
    ctx.progress(0.0, "structured pruning: tracing the channel dependencies")
    pruned = copy.deepcopy(model).eval()
    input_shape = tuple(ctx.input_shape)
    example = ctx.example_inputs(batch=1)[0]
    with torch.no_grad():
        out_shape = tuple(pruned(example).shape)
    macs_before, params_before = count_macs_params(pruned, input_shape)

    # Never remove outputs of the layer(s) producing the logits: the registration-order classifier
    # and the last Conv/Linear the forward pass actually runs (they differ only in unusual models).
    ignored: list[nn.Module] = []
    last_name = classifier_name(pruned)
    if last_name is not None:
        ignored.append(pruned.get_submodule(last_name))
    executed = _execution_order(pruned, example)
    if executed and all(executed[-1] is not m for m in ignored):
        ignored.append(executed[-1])

    importance = tp.importance.GroupMagnitudeImportance(p=1 if cfg.norm == "l1" else 2)
    try:
        # The dependency graph is traced through autograd: grads must be on even if the caller
        # runs under torch.no_grad().
        with warnings.catch_warnings(), torch.enable_grad():
            warnings.simplefilter("ignore")
            pruner = tp.pruner.MetaPruner(
                pruned,
                example,
                importance=importance,
                pruning_ratio=cfg.ratio,
                ignored_layers=ignored,
                round_to=cfg.round_to if cfg.round_to > 1 else None,
            )
            with torch.no_grad():
                pruner.step()
    except Exception as e:  # torch-pruning raises many kinds on graphs it cannot follow
        raise ValueError(
            f"structured_pruning could not trace or prune this model ({type(e).__name__}: {e}); "
            "it needs a model with Conv/Linear layer modules whose channels torch-pruning can follow"
        ) from e
    pruned.eval()
    with torch.no_grad():
        new_shape = tuple(pruned(example).shape)
    if new_shape != out_shape:  # pragma: no cover - guarded by ignored_layers
        raise ValueError(
            f"structured_pruning changed the output shape from {out_shape} to {new_shape}; "
            "the model's output layer could not be identified"
        )
    macs_pruned, params_pruned = count_macs_params(pruned, input_shape)
    ctx.progress(0.1, f"structured pruning: MACs {_fmt_count(macs_before)} -> {_fmt_count(macs_pruned)}")

    recovered = recover_after(pruned, model, cfg, ctx, epochs=cfg.fine_tune_epochs, lr=cfg.lr, start=0.1, label="Recovery after structured pruning")

    shrunk = [
        f"{name} {_weight(old).shape[0]}->{_weight(new).shape[0]}"
        for (name, old), (_, new) in zip(weight_layers(model), weight_layers(pruned), strict=False)
        if _weight(old).shape[0] != _weight(new).shape[0]
    ]
    notes = [
        f"Removed {cfg.ratio:.0%} of the channels per prunable layer ({cfg.norm.upper()} group importance"
        + (f", counts rounded to multiples of {cfg.round_to}" if cfg.round_to > 1 else "")
        + "): "
        f"parameters {_fmt_count(params_before)} -> {_fmt_count(params_pruned)} "
        f"({params_pruned / max(params_before, 1):.1%}), MACs {_fmt_count(macs_before)} -> "
        f"{_fmt_count(macs_pruned)} ({macs_pruned / max(macs_before, 1):.1%}) per sample.",
        f"Output channels shrunk in {_layers(len(shrunk))}"
        + (f": {', '.join(shrunk[:8])}" + (f" and {len(shrunk) - 8} more" if len(shrunk) > 8 else "") if shrunk else "")
        + ".",
    ]
    if last_name is not None:
        notes.append(f"The final classifier {last_name!r} keeps its {out_shape[-1]} outputs.")
    if recovered is None:
        notes.append("No fine-tuning (fine_tune_epochs=0): accuracy is that of the pruned weights as they are.")
    else:
        notes.append(recovered)
    ctx.progress(1.0, "structured pruning: done")
    return CompressedModel(module=pruned, notes=tuple(notes))
