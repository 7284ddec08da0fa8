"""Unstructured pruning: zero the smallest-magnitude weights of Conv/Linear layers.

The zeros are permanent (``torch.nn.utils.prune`` masks are folded into the weights), so the
model keeps its dense shapes: dense kernels run it exactly as fast as before, and the gain
shows only in the sparse (index + value) and compressed encodings of the weights.

The final classifier (the last Conv/Linear layer) is left dense unless ``prune_classifier`` is
set: it holds a tiny share of the weights but every logit depends on each of them, so pruning
it costs accuracy out of proportion to the bytes saved (the lottery-ticket papers prune it at a
lower rate for the same reason). ``amount`` is then the fraction of the *prunable* weights.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn.utils import prune

from lwdash.techniques._common import classifier_name, no_layers_message, train_classifier_, weight_layers
from lwdash.techniques.base import CompressedModel, RunContext, TechniqueConfig, knob, register

__all__ = ["MagnitudePruningConfig", "apply_magnitude_pruning", "prunable_layers"]

DENSE_KERNEL_NOTE = (
    "Unstructured zeros do not speed up dense kernels: latency is measured as-is; "
    "size gains show under the sparse and compressed encodings."
)


@dataclass(frozen=True)
class MagnitudePruningConfig(TechniqueConfig):
    """Zero the smallest-magnitude weights of Conv/Linear layers (unstructured L1 pruning).

    ``scope="global"`` ranks every prunable weight together (layers with many small weights lose
    more); ``"per_layer"`` removes the same fraction from each layer. Biases are never pruned.
    """

    amount: float = knob(
        0.5, ge=0.0, lt=1.0, step=0.05, sweepable=True, help="Fraction of the prunable weights set to zero"
    )
    scope: Literal["global", "per_layer"] = knob(
        "global", help="Rank weights across all layers at once, or remove the same fraction from each layer"
    )
    fine_tune_epochs: int = knob(
        0, ge=0, le=20, help="Epochs of fine-tuning on the training split afterwards, with the zeros kept fixed"
    )
    lr: float = knob(1e-3, gt=0.0, le=1.0, label="Learning rate", help="Adam learning rate for the fine-tuning")
    prune_classifier: bool = knob(
        False, help="Also prune the final classifier layer (left dense by default: few weights, large accuracy cost)"
    )

    def validate_for(self, model: nn.Module, input_shape: tuple[int, ...]) -> None:
        """Reject models with nothing to prune.

        Raises:
            ValueError: the model has no Conv/Linear layer modules, or its only one is the
                final classifier and ``prune_classifier`` is off.
        """
        del input_shape
        layers = weight_layers(model)
        if not layers:
            raise ValueError(no_layers_message("magnitude_pruning", model))
        if not prunable_layers(model, prune_classifier=self.prune_classifier):
            raise ValueError(
                f"magnitude_pruning: the only Conv/Linear layer, {layers[0][0]!r}, is the final classifier, "
                "which is left dense by default; set prune_classifier=True to prune it"
            )


def _tensor(module: nn.Module, name: str) -> torch.Tensor:
    t = getattr(module, name)
    assert isinstance(t, torch.Tensor), f"{type(module).__name__}.{name} is not a tensor"
    return t


def prunable_layers(model: nn.Module, *, prune_classifier: bool) -> list[tuple[str, nn.Module]]:
    """The Conv/Linear layers whose weights magnitude pruning may zero, in registration order."""
    layers = weight_layers(model)
    if prune_classifier:
        return layers
    last = classifier_name(model)
    return [(n, m) for n, m in layers if n != last]


@register("magnitude_pruning", MagnitudePruningConfig, family="pruning", title="Magnitude pruning (unstructured)")
def apply_magnitude_pruning(model: nn.Module, cfg: MagnitudePruningConfig, ctx: RunContext) -> CompressedModel:
    """Zero the smallest-|w| weights, optionally fine-tune with the zeros held, and make them permanent.

    Args:
        model: fp32 classifier (not mutated).
        cfg: the pruning config.
        ctx: data (training split for fine-tuning), seed and progress.

    Returns:
        The pruned copy (dense shapes, exact zeros) and its honest notes.

    Raises:
        ValueError: the model has nothing to prune (see :meth:`MagnitudePruningConfig.validate_for`).
    """
    cfg.validate_for(model, ctx.input_shape)
    ctx.progress(0.0, "magnitude pruning: ranking weights")
    pruned = copy.deepcopy(model).eval()
    layers = prunable_layers(pruned, prune_classifier=cfg.prune_classifier)

    with torch.no_grad():
        if cfg.scope == "global":
            prune.global_unstructured(
                [(m, "weight") for _, m in layers], pruning_method=prune.L1Unstructured, amount=cfg.amount
            )
        else:
            for _, m in layers:
                prune.l1_unstructured(m, "weight", amount=cfg.amount)
        # Fold the masks into plain weights now and keep the masks: re-applying them after every
        # optimizer step works for any module, even ones whose weight is read without calling forward().
        masks = [_tensor(m, "weight_mask").detach().clone() for _, m in layers]
        for _, m in layers:
            prune.remove(m, "weight")

    def reapply_masks() -> None:
        with torch.no_grad():
            for (_, m), mask in zip(layers, masks, strict=True):
                _tensor(m, "weight").mul_(mask)

    if cfg.fine_tune_epochs > 0:
        ctx.progress(0.05, "magnitude pruning: fine-tuning with the zeros held")

        def report(fraction: float, message: str) -> None:
            ctx.progress(0.05 + 0.9 * fraction, message)

        train_classifier_(
            pruned,
            ctx.data.train,
            epochs=cfg.fine_tune_epochs,
            lr=cfg.lr,
            seed=ctx.seed,
            progress=report,
            after_step=reapply_masks,
            label="magnitude pruning fine-tune",
        )
        reapply_masks()

    notes = [DENSE_KERNEL_NOTE]
    last = classifier_name(pruned)
    if not cfg.prune_classifier and last is not None:
        notes.append(f"The final classifier {last!r} was left dense (prune_classifier is off).")
    zeros = sum(int((_tensor(m, "weight") == 0).sum()) for _, m in layers)
    total = sum(_tensor(m, "weight").numel() for _, m in layers)
    ctx.progress(1.0, f"magnitude pruning: {zeros}/{total} prunable weights are zero ({zeros / max(total, 1):.1%})")
    return CompressedModel(module=pruned, notes=tuple(notes))
