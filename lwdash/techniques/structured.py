"""Structured and semi-structured sparsity: remove whole channels, or keep N of every M weights.

``structured_pruning`` removes whole output channels/filters with torch-pruning's dependency
graph, so coupled layers (residual adds, depthwise convs, batch norms, the Linear after a
flatten) shrink together: the tensors physically get smaller, MACs fall and dense kernels run
faster. The final classifier keeps its outputs (the class count), only its inputs shrink.

``nm_sparsity`` zeroes weights in a fixed N:M pattern (default 2:4) along the reduction
dimension. Shapes stay dense: only GPUs with sparse tensor cores run that pattern faster.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from lwdash.techniques._common import classifier_name, no_layers_message, weight_layers
from lwdash.techniques.base import CompressedModel, RunContext, knob, register
from lwdash.techniques.recovery import RecoveryKnobs, recover_after, recovery_default

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

NM_SPEED_NOTE = (
    "2:4 sparsity only speeds up on GPUs with sparse tensor cores (NVIDIA Ampere+) via "
    "torch.sparse.to_sparse_semi_structured; PyTorch and ONNX Runtime on this CPU run it as dense, "
    "so latency is unchanged"
)


# --------------------------------------------------------------------------------------------
# Shared helpers
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


def _layers(count: int) -> str:
    return f"{count} layer" + ("" if count == 1 else "s")


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


# --------------------------------------------------------------------------------------------
# Semi-structured N:M sparsity
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NMSparsityConfig(RecoveryKnobs):
    """Keep the N largest of every M consecutive weights along the input dimension (2:4 semi-structured sparsity).

    Groups run along the input channels (Linear ``in_features``; Conv input channels at each
    kernel position, the channels-last layout sparse tensor cores use). Layers whose input count
    is not a multiple of M, and depthwise convs, stay dense. The zeros are held during fine-tuning.
    """

    n: int = knob(2, ge=1, le=7, help="Weights kept in each group of M")
    m: Literal[4, 8] = knob(4, help="Group size along the input dimension (4 or 8)")
    fine_tune_epochs: int = knob(1, ge=0, le=20, group="recovery",
                                 help="Epochs of recovery training on the training split, zeros held (0: none)")
    # Plain Adam at 1e-3 by measurement (bench/techniques.py, digits MobileNetV2): the recover recipe cost N:M
    # far more accuracy than plain Adam here (docs/recovery.md); structured pruning gains from it.
    recipe: Literal["recover", "plain"] = recovery_default("recipe", "plain")
    optimizer: Literal["sgd", "adam"] = recovery_default("optimizer", "adam")
    lr: float = recovery_default("lr", 1e-3)
    prune_classifier: bool = knob(
        False, help="Also sparsify the final classifier layer (left dense by default: few weights, large accuracy cost)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n >= self.m:
            raise ValueError(f"n must be smaller than m (n:m keeps n of every m weights), got {self.n}:{self.m}")

    def validate_for(self, model: nn.Module, input_shape: tuple[int, ...]) -> None:
        """Reject models with no layer that can take the N:M pattern.

        Raises:
            ValueError: no Conv/Linear layer modules, or none whose input count is a multiple of ``m``.
        """
        del input_shape
        layers = weight_layers(model)
        if not layers:
            raise ValueError(no_layers_message("nm_sparsity", model))
        if not nm_eligible_layers(model, self.m, prune_classifier=self.prune_classifier):
            dims = ", ".join(f"{name} ({_reduction_channels(mod)} inputs)" for name, mod in layers[:6])
            raise ValueError(
                f"nm_sparsity {self.n}:{self.m}: no layer can take the pattern; a Linear or groups=1 Conv2d/Conv1d "
                f"needs an input count divisible by {self.m} (the final classifier counts only with "
                f"prune_classifier=True). Layers: {dims}"
            )


def _weight(mod: nn.Module) -> torch.Tensor:
    w = mod.weight
    assert isinstance(w, torch.Tensor)
    return w


def _reduction_channels(mod: nn.Module) -> int:
    """Input features of a Linear, input channels per group of a conv."""
    return int(_weight(mod).shape[1])


def nm_eligible_layers(model: nn.Module, m: int, *, prune_classifier: bool) -> list[tuple[str, nn.Module]]:
    """Linear and non-transposed, non-depthwise conv layers whose input count is a multiple of ``m``."""
    last = None if prune_classifier else classifier_name(model)
    out: list[tuple[str, nn.Module]] = []
    for name, mod in weight_layers(model):
        if name == last or isinstance(mod, nn.modules.conv._ConvTransposeNd):
            continue
        if isinstance(mod, nn.modules.conv._ConvNd) and mod.groups != 1:
            continue
        if _reduction_channels(mod) % m == 0:
            out.append((name, mod))
    return out


def nm_mask(weight: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Boolean keep-mask with the ``n`` largest-|w| of every ``m`` consecutive input channels.

    Args:
        weight: a Linear ``(out, in)`` or conv ``(out, in, *kernel)`` weight; ``in`` divisible by ``m``.
        n: weights kept per group.
        m: group size.

    Returns:
        A bool tensor shaped like ``weight``.

    Raises:
        ValueError: ``in`` is not a multiple of ``m`` or ``n`` is not in ``[1, m)``.
    """
    if not 1 <= n < m:
        raise ValueError(f"need 1 <= n < m, got {n}:{m}")
    c_in = weight.shape[1]
    if c_in % m:
        raise ValueError(f"the input dimension ({c_in}) is not divisible by m={m}")
    # Channels-last view: (out, *kernel, in) so that groups run along the input channels.
    w = weight.detach().abs().movedim(1, -1)  # (O, *k, I)
    groups = w.reshape(*w.shape[:-1], c_in // m, m)  # (O, *k, I/m, m)
    keep_idx = groups.topk(n, dim=-1).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, keep_idx, True)
    return mask.reshape(w.shape).movedim(-1, 1).contiguous()


_WHEN_NM_SPARSITY = (
    "For a GPU with sparse tensor cores (NVIDIA Ampere or later, 2:4): half the weights are zero in a "
    "pattern those kernels skip. The CPU runtimes measured here run it as dense, so expect no CPU speed- "
    "up."
)


@register(
    "nm_sparsity", NMSparsityConfig, family="pruning", title="N:M semi-structured sparsity",
    when=_WHEN_NM_SPARSITY,
)
def apply_nm_sparsity(model: nn.Module, cfg: NMSparsityConfig, ctx: RunContext) -> CompressedModel:
    """Apply the N:M magnitude pattern to every eligible layer, optionally fine-tune with it held.

    Args:
        model: fp32 classifier (not mutated).
        cfg: the N:M config.
        ctx: data (training split for fine-tuning), seed and progress.

    Returns:
        The sparsified copy (dense shapes, exact zeros in the N:M pattern) and its honest notes.

    Raises:
        ValueError: no layer can take the pattern (see :meth:`NMSparsityConfig.validate_for`).
    """
    cfg.validate_for(model, ctx.input_shape)
    ctx.progress(0.0, f"{cfg.n}:{cfg.m} sparsity: masking weights")
    sparse = copy.deepcopy(model).eval()
    layers = nm_eligible_layers(sparse, cfg.m, prune_classifier=cfg.prune_classifier)
    with torch.no_grad():
        masks = [nm_mask(_weight(mod), cfg.n, cfg.m) for _, mod in layers]

    def reapply_masks() -> None:
        with torch.no_grad():
            for (_, mod), mask in zip(layers, masks, strict=True):
                _weight(mod).mul_(mask)

    reapply_masks()
    recovered = recover_after(sparse, model, cfg, ctx, epochs=cfg.fine_tune_epochs, lr=cfg.lr, start=0.05, label=f"Recovery after {cfg.n}:{cfg.m} sparsity",
                              after_step=reapply_masks)
    reapply_masks()

    eligible_ids = {id(mod) for _, mod in layers}
    dense = [name for name, mod in weight_layers(sparse) if id(mod) not in eligible_ids]
    zeros = sum(int((_weight(mod) == 0).sum()) for _, mod in layers)
    total_all = sum(int(_weight(mod).numel()) for _, mod in weight_layers(sparse))
    notes = [
        NM_SPEED_NOTE
        if (cfg.n, cfg.m) == (2, 4)
        else NM_SPEED_NOTE.replace("2:4 sparsity", f"{cfg.n}:{cfg.m} sparsity")
        + " (and sparse tensor cores support only 2:4)",
        f"{cfg.n}:{cfg.m} pattern on {_layers(len(layers))}: {zeros} of {total_all} Conv/Linear weights are zero "
        f"({zeros / max(total_all, 1):.1%}).",
    ]
    if dense:
        notes.append(
            f"{_layers(len(dense))} left dense (final classifier, depthwise/grouped convs, or input count not "
            f"divisible by {cfg.m}): {', '.join(dense[:8])}" + (f" and {len(dense) - 8} more" if len(dense) > 8 else "")
        )
    if recovered is not None:
        notes.append(recovered)
    ctx.progress(1.0, f"{cfg.n}:{cfg.m} sparsity: done")
    return CompressedModel(module=sparse, notes=tuple(notes))
