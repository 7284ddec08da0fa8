"""Accuracy recovery after a structural change: BatchNorm recalibration, a real schedule, the original as teacher.

What pruning, low-rank factorization and quantization-aware training run after they change a
network (:func:`recover_`), in place on the changed copy:

1. **BatchNorm recalibration** (:func:`recalibrate_batchnorm_`): removing channels or
   factorising a layer shifts every activation distribution after it, and the running statistics
   stored in the BatchNorm layers no longer match; they are re-estimated from training batches
   (a cumulative average, no gradient step) before training starts.
2. **Training** on the training split with a warm-up (the first 5 % of the steps, linear) and a
   cosine decay to zero, SGD with Nesterov momentum 0.9 and weight decay 5e-4 on weights (none on
   biases and norms), or Adam.
3. **Distillation from the original model** (``teacher_weight`` > 0): the loss is
   ``(1 - w) * cross-entropy + w * T^2 * KL(student_T || teacher_T)`` at temperature T = 4
   (Hinton et al.), with the unchanged model as the frozen teacher.
4. **Early stop on the calibration split**: top-1 is measured there a few times per epoch; the
   best weights are kept, and training stops when ``patience`` evaluations in a row did not improve.

``recipe="plain"`` is what lwdash ran before this module: Adam at a constant learning rate,
cross-entropy only, no recalibration, no early stop (kept so that stored results re-run as
they ran).
"""
from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from lwdash.data import Split
from lwdash.techniques._common import _seeded
from lwdash.techniques.base import RunContext, TechniqueConfig, knob

__all__ = ["RecoveryKnobs", "RecoveryPlan", "RecoveryRecipe", "RecoveryReport", "recalibrate_batchnorm_", "recover_", "recover_after", "recovery_default"]

ProgressFn = Callable[[float, str], None]

_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
#: Knowledge-distillation temperature (Hinton et al. use 2-20; 4 is the common choice for 10 classes).
TEMPERATURE = 4.0


@dataclass(frozen=True)
class RecoveryPlan:
    """How a changed network is trained back.

    Attributes:
        epochs: passes over the training split (an upper bound when ``early_stop``).
        lr: the peak learning rate (after warm-up) of the cosine schedule, or Adam's constant one for ``plain``.
        recipe: ``"recover"`` (recalibration, warm-up + cosine, early stop) or ``"plain"`` (constant lr, none of those).
        optimizer: ``"sgd"`` (Nesterov momentum 0.9, weight decay 5e-4) or ``"adam"``.
        teacher_weight: weight of the distillation loss from the original model (0: cross-entropy only).
        batch_size: samples per step.
        evals_per_epoch: calibration-split evaluations per epoch (``recover`` only).
        patience: evaluations without improvement before stopping (``recover`` only).
    """

    epochs: int
    lr: float
    recipe: Literal["recover", "plain"] = "recover"
    optimizer: Literal["sgd", "adam"] = "sgd"
    teacher_weight: float = 0.0
    batch_size: int = 64
    evals_per_epoch: int = 2
    patience: int = 3


@dataclass(frozen=True)
class RecoveryReport:
    """What a recovery did, for the result's notes.

    Attributes:
        steps: optimizer steps taken.
        epochs_run: epochs started (fractional when it stopped early).
        calib_before / calib_after: top-1 on the calibration split before training (after the
            first recalibration) and of the weights kept; NaN for ``plain``.
        stopped_early: whether early stopping ended it before ``epochs``.
        batchnorm_layers: BatchNorm layers recalibrated.
        distilled: whether the original model was the teacher.
    """

    steps: int
    epochs_run: float
    calib_before: float
    calib_after: float
    stopped_early: bool
    batchnorm_layers: int
    distilled: bool

    def note(self, label: str) -> str:
        """One line for the result's notes."""
        if math.isnan(self.calib_after):
            return f"{label}: {self.steps} steps, constant learning rate (recipe=plain)."
        parts = [f"{label}: {self.steps} steps ({self.epochs_run:.2f} epochs"
                 + (", stopped early: no gain on the calibration split" if self.stopped_early else "") + ")"]
        if self.batchnorm_layers:
            parts.append(f"BatchNorm statistics of {self.batchnorm_layers} layers recalibrated")
        if self.distilled:
            parts.append("the original model as teacher")
        parts.append(f"calibration top-1 {100 * self.calib_before:.2f} % -> {100 * self.calib_after:.2f} %")
        return "; ".join(parts) + "."


def recalibrate_batchnorm_(model: nn.Module, split: Split, *, batches: int = 50, batch_size: int = 128,
                           seed: int = 0) -> int:
    """Re-estimate every BatchNorm layer's running mean and variance from ``split``; returns how many there are.

    A cumulative average over up to ``batches`` batches in train mode, without gradients; the
    model ends in eval mode, its weights untouched.
    """
    norms = [m for m in model.modules() if isinstance(m, _BN_TYPES) and m.track_running_stats]
    if not norms or len(split) == 0:
        return 0
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs the same
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(split), generator=gen)[: batches * batch_size]
    model.train()
    try:
        with torch.no_grad():
            for i in range(0, len(order), batch_size):
                idx = order[i : i + batch_size]
                if len(idx) >= 2:  # a batch of one has no variance
                    model(split.x[idx])
    finally:
        for m, momentum in zip(norms, saved, strict=True):
            m.momentum = momentum
        model.eval()
    return len(norms)


def _accuracy(model: nn.Module, split: Split) -> float:
    """Top-1 on ``split`` as every measurement computes it (eval mode, this process's thread count); NaN when empty."""
    from lwdash.measure.accuracy import evaluate_torch

    if len(split) == 0:
        return math.nan
    return evaluate_torch(model, split, threads=torch.get_num_threads()).top1_acc


def _optimizer(model: nn.Module, plan: RecoveryPlan) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if plan.optimizer == "adam":
        return torch.optim.Adam(params, lr=plan.lr)
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    return torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}],
                           lr=plan.lr, momentum=0.9, nesterov=True)


def _lr_factor(step: int, total: int) -> float:
    warmup = max(1, int(0.05 * total))
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def _loss(logits: torch.Tensor, y: torch.Tensor, teacher_logits: torch.Tensor | None, weight: float) -> torch.Tensor:
    ce = nn.functional.cross_entropy(logits, y)
    if teacher_logits is None or weight <= 0:
        return ce
    t = TEMPERATURE
    kd = nn.functional.kl_div(nn.functional.log_softmax(logits / t, dim=1),
                              nn.functional.log_softmax(teacher_logits / t, dim=1),
                              reduction="batchmean", log_target=True) * (t * t)
    return (1.0 - weight) * ce + weight * kd


def recover_(
    model: nn.Module,
    train: Split,
    calib: Split,
    plan: RecoveryPlan,
    *,
    teacher: nn.Module | None = None,
    seed: int = 0,
    progress: ProgressFn | None = None,
    after_step: Callable[[], None] | None = None,
    label: str = "recovery",
) -> RecoveryReport:
    """Train ``model`` back in place after a structural change (see the module docstring); leaves it in eval mode.

    Args:
        model: the changed network (mutated).
        train: the training split.
        calib: the calibration split, for early stopping (held out from training).
        plan: epochs, learning rate, recipe, optimizer, distillation weight.
        teacher: the original network (frozen, eval mode), used when ``plan.teacher_weight`` > 0.
        seed: seeds the shuffling.
        progress: called with (fraction 0..1, message).
        after_step: called after every optimizer step (for example to re-apply pruning masks).
        label: what messages call this training.

    Raises:
        ValueError: ``plan.epochs`` > 0 and the training split is empty.
    """
    plain = plan.recipe == "plain"
    if plan.epochs <= 0:
        return RecoveryReport(0, 0.0, math.nan, math.nan, False, 0, False)
    if len(train) == 0:
        raise ValueError(f"{label} needs training samples, and the training split is empty")
    bn = 0 if plain else recalibrate_batchnorm_(model, train, seed=seed)
    distill = teacher is not None and plan.teacher_weight > 0
    if teacher is not None:
        teacher.eval()
    params = [p for p in model.parameters() if p.is_floating_point()]
    was_trainable = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(True)
    opt = _optimizer(model, plan)
    steps_per_epoch = math.ceil(len(train) / plan.batch_size)
    total = steps_per_epoch * plan.epochs
    eval_every = max(1, steps_per_epoch // max(1, plan.evals_per_epoch))
    before = math.nan if plain else _accuracy(model, calib)
    best, best_state, bad = before, None if plain else copy.deepcopy(model.state_dict()), 0
    gen = torch.Generator().manual_seed(seed)
    step, stopped = 0, False
    with _seeded(seed), torch.enable_grad():
        try:
            for epoch in range(plan.epochs):
                order = torch.randperm(len(train), generator=gen)
                model.train()
                for i in range(0, len(order), plan.batch_size):
                    idx = order[i : i + plan.batch_size]
                    if len(idx) < 2:
                        continue
                    if not plain:
                        for group in opt.param_groups:
                            group["lr"] = plan.lr * _lr_factor(step, total)
                    xb, yb = train.x[idx], train.y[idx]
                    with torch.no_grad():
                        t_logits = teacher(xb) if distill and teacher is not None else None
                    opt.zero_grad(set_to_none=True)
                    loss = _loss(model(xb), yb, t_logits, plan.teacher_weight)
                    loss.backward()
                    opt.step()
                    if after_step is not None:
                        after_step()
                    step += 1
                    if not plain and step % eval_every == 0:
                        acc = _accuracy(model, calib)
                        model.train()
                        if acc > best or math.isnan(best):
                            best, best_state, bad = acc, copy.deepcopy(model.state_dict()), 0
                        else:
                            bad += 1
                        if bad >= plan.patience:
                            stopped = True
                            break
                if progress is not None:
                    progress((epoch + 1) / plan.epochs, f"{label}: epoch {epoch + 1}/{plan.epochs}, loss "
                             f"{float(loss.detach()):.4f}" + ("" if plain else f", calibration top-1 {100 * best:.2f} %"))
                if stopped:
                    break
        finally:
            model.eval()
    for p, flag in zip(params, was_trainable, strict=True):
        p.requires_grad_(flag)
        p.grad = None
    if not plain:
        last = _accuracy(model, calib)
        if best_state is not None and not last >= best:
            model.load_state_dict(best_state)
        else:
            best = last
    return RecoveryReport(steps=step, epochs_run=step / steps_per_epoch, calib_before=before,
                          calib_after=math.nan if plain else best, stopped_early=stopped, batchnorm_layers=bn,
                          distilled=distill)


@dataclass(frozen=True)
class RecoveryRecipe(TechniqueConfig):
    """How a technique trains a network back: the recipe, the optimizer, the weight of the original as teacher.

    A config that already names its epochs and learning rate (the ``fine_tune`` step) inherits
    these; techniques that change a network inherit :class:`RecoveryKnobs`. Forms show them after
    the technique's own knobs.
    """

    recipe: Literal["recover", "plain"] = knob(
        "recover", group="recovery", stored_default="plain", since=4,
        help="recover: recalibrate BatchNorm, warm up then cosine-decay the learning rate, keep the weights that "
             "score best on the calibration split and stop when they stop improving; plain: constant learning rate, "
             "none of that (what lwdash ran before)")
    optimizer: Literal["sgd", "adam"] = knob(
        "sgd", group="recovery", stored_default="adam", since=4,
        help="SGD with Nesterov momentum 0.9 and weight decay 5e-4, or Adam")
    # 0 by default: on the Fashion MobileNetV2 sample pruned 50 %, 2 epochs, 0.5 gave 89.24 % against 89.43 %
    # without (10,000 test images, standard error 0.3 points): no measured gain (docs/recovery.md).
    teacher_weight: float = knob(
        0.0, ge=0.0, le=1.0, step=0.05, group="recovery",
        help="Weight of the distillation loss from the original model (the job's input) during recovery "
             "(0: labels only; measured no gain at 0.5 on the Fashion MobileNetV2 sample, see docs/recovery.md)")

    def recovery_plan(self, epochs: int, lr: float) -> RecoveryPlan:
        return RecoveryPlan(epochs=epochs, lr=lr, recipe=self.recipe, optimizer=self.optimizer,
                            teacher_weight=self.teacher_weight, batch_size=64)


@dataclass(frozen=True)
class RecoveryKnobs(RecoveryRecipe):
    """:class:`RecoveryRecipe` plus its epochs and peak learning rate, for techniques that change a network.

    A subclass may re-declare ``fine_tune_epochs`` for its own default.
    """

    fine_tune_epochs: int = knob(2, ge=0, le=20, group="recovery",
                                 help="Epochs of recovery training on the training split after the change (0: none)")
    lr: float = knob(0.01, gt=0.0, le=1.0, label="Learning rate", group="recovery",
                     help="Peak learning rate of the recovery (after warm-up, then cosine decay); with "
                          "recipe=plain, Adam's constant rate")


def recovery_default(name: str, default: object) -> Any:
    """A recovery knob re-declared in a config class with another default (same bounds, help and stored default)."""
    f = next(f for f in dataclasses.fields(RecoveryKnobs) if f.name == name)
    return dataclasses.field(default=default, metadata=f.metadata)


def recover_after(
    changed: nn.Module,
    original: nn.Module,
    cfg: RecoveryRecipe,
    ctx: RunContext,
    *,
    epochs: int,
    lr: float,
    start: float,
    label: str,
    after_step: Callable[[], None] | None = None,
) -> str | None:
    """:func:`recover_` ``changed`` with ``cfg``'s recipe; the note, or ``None`` (no epochs).

    The teacher is the job's own input model (``ctx.teacher``, the same for every pipeline step),
    else ``original`` (the technique's input). Progress is reported in ``[start, 0.95]``.
    """
    if epochs <= 0:
        return None

    def report(fraction: float, message: str) -> None:
        ctx.progress(start + (0.95 - start) * fraction, message)

    teacher = (ctx.teacher if ctx.teacher is not None else original) if cfg.teacher_weight > 0 else None
    return recover_(changed, ctx.data.train, ctx.data.calib, cfg.recovery_plan(epochs, lr), teacher=teacher,
                    seed=ctx.seed, progress=report, after_step=after_step, label=label).note(label)
