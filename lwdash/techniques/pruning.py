"""Unstructured pruning: zero the smallest-magnitude weights of Conv/Linear layers.

The zeros are permanent (masks are folded into the weights and re-applied after every
fine-tuning step), so the model keeps its dense shapes: dense kernels run it exactly as fast as
before, and the gain shows only in the sparse (index + value) and compressed encodings of the
weights, which ``lwdash.measure`` reports beside the dense bytes.

Three schedules:

- ``one_shot``: prune to ``amount`` at once, then optionally fine-tune with the zeros held.
- ``iterative``: ``iterations`` rounds; round ``r`` prunes to ``1 - (1 - amount) ** (r / N)``
  (the same fraction of the survivors each round) and fine-tunes ``fine_tune_epochs`` on the
  training split with the zeros held before the next round (Han et al. 2015).
- ``lottery_ticket``: iterative magnitude pruning with weight rewinding (Frankle et al. 2019,
  "Stabilizing the Lottery Ticket Hypothesis"): a training run on the training split starts from
  the model's weights; the weights after ``rewind_steps`` optimizer steps are recorded; after
  training, each round prunes by the trained magnitudes, resets the survivors (and the other
  parameters and buffers) to the recorded early values, and retrains with the mask fixed. The run
  that originally produced the uploaded weights is not available, so "early" means early in this
  run, which starts from the uploaded weights rather than from a random initialization.

The final classifier (the last Conv/Linear layer) is left dense unless ``prune_classifier`` is
set: it holds a tiny share of the weights but every logit depends on each of them, so pruning
it costs accuracy out of proportion to the bytes saved (the lottery-ticket papers prune it at a
lower rate for the same reason). ``amount`` is then the fraction of the *prunable* weights.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from lwdash.techniques._common import classifier_name, no_layers_message, train_classifier_, weight_layers
from lwdash.techniques.base import CompressedModel, RunContext, TechniqueConfig, knob, register

__all__ = ["DENSE_KERNEL_NOTE", "MagnitudePruningConfig", "apply_magnitude_pruning", "magnitude_masks", "prunable_layers"]

DENSE_KERNEL_NOTE = (
    "Unstructured zeros do not speed up dense kernels: latency is measured as-is; "
    "size gains show under the sparse and compressed encodings."
)

Schedule = Literal["one_shot", "iterative", "lottery_ticket"]


@dataclass(frozen=True)
class MagnitudePruningConfig(TechniqueConfig):
    """Zero the smallest-magnitude weights of Conv/Linear layers (unstructured L1 pruning).

    ``scope="global"`` ranks every prunable weight together (layers with many small weights lose
    more); ``"per_layer"`` removes the same fraction from each layer. Biases are never pruned.
    ``schedule`` prunes at once, in fine-tuned rounds, or lottery-ticket style with rewinding.
    """

    amount: float = knob(
        0.5, ge=0.0, lt=1.0, step=0.05, sweepable=True, help="Fraction of the prunable weights set to zero"
    )
    scope: Literal["global", "per_layer"] = knob(
        "global",
        help="Rank weights across all layers at once, or remove the same fraction from each layer",
    )
    schedule: Literal["one_shot", "iterative", "lottery_ticket"] = knob(
        "one_shot",
        help=(
            "one_shot: prune once; iterative: reach the amount in rounds with fine-tuning between them; "
            "lottery_ticket: iterative pruning that rewinds the survivors to their early-training values "
            "and retrains with the mask fixed"
        ),
    )
    iterations: int = knob(
        3, ge=1, le=10, help="Pruning rounds for the iterative and lottery_ticket schedules (ignored by one_shot)"
    )
    rewind_steps: int = knob(
        10,
        ge=0,
        le=100_000,
        help="lottery_ticket: optimizer steps into the training run whose weights the survivors are rewound to",
    )
    fine_tune_epochs: int = knob(
        0,
        ge=0,
        le=20,
        help=(
            "Epochs of fine-tuning on the training split with the zeros held: after pruning (one_shot), "
            "after each round (iterative), or per (re)training run (lottery_ticket; needs >= 1)"
        ),
    )
    lr: float = knob(1e-3, gt=0.0, le=1.0, label="Learning rate", help="Adam learning rate for the fine-tuning")
    prune_classifier: bool = knob(
        False, help="Also prune the final classifier layer (left dense by default: few weights, large accuracy cost)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.schedule != "one_shot" and self.fine_tune_epochs < 1:
            raise ValueError(
                f"fine_tune_epochs must be >= 1 for the {self.schedule} schedule (it trains between pruning rounds), "
                "got 0; use schedule='one_shot' to prune without training"
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


def _smallest_mask(magnitudes: torch.Tensor, amount: float) -> torch.Tensor:
    """Keep-mask (bool) of a flat tensor with the ``round(amount * n)`` smallest entries dropped."""
    n = magnitudes.numel()
    drop = round(amount * n)
    keep = torch.ones(n, dtype=torch.bool)
    if drop > 0:
        # A stable sort breaks ties by position, so equal magnitudes are dropped deterministically;
        # exact zeros (earlier rounds) sort first and stay dropped.
        order = torch.sort(magnitudes, stable=True).indices
        keep[order[:drop]] = False
    return keep


def magnitude_masks(weights: list[torch.Tensor], amount: float, scope: Literal["global", "per_layer"]) -> list[torch.Tensor]:
    """Keep-masks dropping the smallest-|w| ``amount`` of the weights, ranked globally or per tensor.

    Args:
        weights: the prunable weight tensors.
        amount: fraction in ``[0, 1)`` to drop.
        scope: rank across all tensors at once, or within each tensor.

    Returns:
        One bool mask per tensor, shaped like it.
    """
    if scope == "per_layer":
        return [_smallest_mask(w.detach().abs().flatten(), amount).reshape(w.shape) for w in weights]
    flat = torch.cat([w.detach().abs().flatten() for w in weights])
    keep = _smallest_mask(flat, amount)
    out, start = [], 0
    for w in weights:
        out.append(keep[start : start + w.numel()].reshape(w.shape))
        start += w.numel()
    return out


def _round_amounts(amount: float, rounds: int) -> list[float]:
    """Cumulative sparsity after each round, removing the same fraction of the survivors each time."""
    return [1.0 - (1.0 - amount) ** (r / rounds) for r in range(1, rounds + 1)]


_WHEN_MAGNITUDE_PRUNING = (
    "To see how much of a model is redundant, or for a runtime that exploits sparsity: zeros keep every "
    "tensor's shape, so dense CPU runtimes run it no faster; use structured pruning for speed."
)


@register(
    "magnitude_pruning", MagnitudePruningConfig, family="pruning", title="Magnitude pruning (unstructured)",
    when=_WHEN_MAGNITUDE_PRUNING,
)
def apply_magnitude_pruning(model: nn.Module, cfg: MagnitudePruningConfig, ctx: RunContext) -> CompressedModel:
    """Zero the smallest-|w| weights on the chosen schedule, fine-tuning with the zeros held.

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
    weights = [_tensor(m, "weight") for _, m in layers]
    masks: list[torch.Tensor] = [torch.ones_like(w, dtype=torch.bool) for w in weights]

    def apply_masks() -> None:
        with torch.no_grad():
            for w, mask in zip(weights, masks, strict=True):
                w.mul_(mask)

    def prune_to(target: float) -> None:
        masks[:] = magnitude_masks(weights, target, cfg.scope)
        apply_masks()

    def fine_tune(lo: float, hi: float, label: str, epochs: int | None = None,
                  after_step: Callable[[], None] | None = None) -> None:
        def report(fraction: float, message: str) -> None:
            ctx.progress(lo + (hi - lo) * fraction, message)

        train_classifier_(
            pruned,
            ctx.data.train,
            epochs=cfg.fine_tune_epochs if epochs is None else epochs,
            lr=cfg.lr,
            seed=ctx.seed,
            progress=report,
            after_step=after_step or apply_masks,
            label=label,
        )
        apply_masks()

    notes = [DENSE_KERNEL_NOTE]
    if cfg.schedule == "one_shot":
        prune_to(cfg.amount)
        if cfg.fine_tune_epochs > 0:
            ctx.progress(0.05, "magnitude pruning: fine-tuning with the zeros held")
            fine_tune(0.05, 0.95, "magnitude pruning fine-tune")
    elif cfg.schedule == "iterative":
        targets = _round_amounts(cfg.amount, cfg.iterations)
        for r, target in enumerate(targets, 1):
            prune_to(target)
            lo = 0.02 + 0.93 * (r - 1) / len(targets)
            fine_tune(lo, lo + 0.93 / len(targets), f"round {r}/{len(targets)} ({target:.0%} pruned) fine-tune")
        notes.append(
            f"Iterative schedule: {cfg.iterations} rounds to "
            + ", ".join(f"{t:.0%}" for t in targets)
            + f" sparsity, {cfg.fine_tune_epochs} fine-tuning epoch(s) after each ({cfg.iterations * cfg.fine_tune_epochs} in all)."
        )
    else:
        notes.append(_lottery_ticket_(pruned, weights, masks, apply_masks, fine_tune, cfg, ctx))

    last = classifier_name(pruned)
    if not cfg.prune_classifier and last is not None:
        notes.append(f"The final classifier {last!r} was left dense (prune_classifier is off).")
    zeros = sum(int((w == 0).sum()) for w in weights)
    total = sum(w.numel() for w in weights)
    ctx.progress(1.0, f"magnitude pruning: {zeros}/{total} prunable weights are zero ({zeros / max(total, 1):.1%})")
    return CompressedModel(module=pruned, notes=tuple(notes))


def _lottery_ticket_(
    pruned: nn.Module,
    weights: list[torch.Tensor],
    masks: list[torch.Tensor],
    apply_masks: Callable[[], None],
    fine_tune: Callable[..., None],
    cfg: MagnitudePruningConfig,
    ctx: RunContext,
) -> str:
    """Train (recording the rewind point), then prune-rewind-retrain for each round, in place; returns a note."""
    steps = [0]
    rewind: dict[str, torch.Tensor] = {}

    def record() -> None:
        steps[0] += 1
        if steps[0] == cfg.rewind_steps:
            rewind.update({k: v.detach().clone() for k, v in pruned.state_dict().items()})

    if cfg.rewind_steps == 0:
        rewind.update({k: v.detach().clone() for k, v in pruned.state_dict().items()})
    targets = _round_amounts(cfg.amount, cfg.iterations)
    share = 0.93 / (len(targets) + 1)
    fine_tune(0.02, 0.02 + share, "lottery ticket: dense training run", after_step=record)
    taken = steps[0]
    if not rewind:  # fewer optimizer steps than rewind_steps: rewind to the end of the run
        rewind.update({k: v.detach().clone() for k, v in pruned.state_dict().items()})
    for r, target in enumerate(targets, 1):
        masks[:] = magnitude_masks(weights, target, cfg.scope)  # ranked by the trained magnitudes
        with torch.no_grad():
            pruned.load_state_dict(rewind)
        apply_masks()
        lo = 0.02 + share * r
        fine_tune(lo, lo + share, f"lottery ticket round {r}/{len(targets)} ({target:.0%} pruned): retraining")
    point = min(cfg.rewind_steps, taken)
    rewound = f"after {point} of its {taken} optimizer steps" if point < taken else "at its end (it had fewer steps)"
    return (
        f"Lottery-ticket schedule: a {cfg.fine_tune_epochs}-epoch training run from the model's weights; the weights "
        f"{rewound} are the rewind point; {cfg.iterations} round(s) to "
        + ", ".join(f"{t:.0%}" for t in targets)
        + " sparsity, each pruning by the trained magnitudes, rewinding the survivors and retraining "
        f"{cfg.fine_tune_epochs} epoch(s) with the mask fixed. The run starts from the uploaded weights, "
        "not from the random initialization they were trained from (that run is not available)."
    )
