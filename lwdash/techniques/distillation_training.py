"""Distillation training: the seeded student training loop (with or without the teacher) and test accuracy.

The KD student and its no-teacher baseline go through the same :func:`_train`, so they see
identical batches from identical initial weights.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from lwdash.data import Split
from lwdash.techniques.distillation_losses import _attention_loss, _Capture, _FeaturePlan, _HintRegressor, kd_loss
from lwdash.techniques.distillation_students import _forward_eval

if TYPE_CHECKING:
    from lwdash.techniques.distillation import DistillationConfig

# Teacher features for the whole training split are cached when they fit in this budget;
# otherwise the teacher runs on every batch.
_FEATURE_CACHE_BYTES = 256 * 2**20
_EVAL_BATCH = 512


@dataclass(frozen=True)
class _TeacherTargets:
    """The frozen teacher's logits (and feature) for every training sample, or the teacher itself.

    The teacher is in eval mode and the data are not augmented, so its outputs are constant:
    they are computed once unless the feature tensors would exceed the cache budget.
    """

    logits: torch.Tensor | None
    features: torch.Tensor | None
    teacher: nn.Module
    feature_layer: str | None

    @staticmethod
    @torch.no_grad()
    def build(teacher: nn.Module, x: torch.Tensor, feature_layer: str | None, feature_shape: tuple[int, ...] | None) -> _TeacherTargets:
        n = int(x.shape[0])
        feat_bytes = n * math.prod(feature_shape) * 4 if feature_shape is not None else 0
        if feat_bytes > _FEATURE_CACHE_BYTES:
            return _TeacherTargets(None, None, teacher, feature_layer)
        cap = _Capture(teacher, feature_layer) if feature_layer else None
        logits, feats = [], []
        try:
            for i in range(0, n, _EVAL_BATCH):
                logits.append(teacher(x[i : i + _EVAL_BATCH]))
                if cap is not None:
                    assert cap.value is not None
                    feats.append(cap.value.detach())
        finally:
            if cap is not None:
                cap.remove()
        return _TeacherTargets(torch.cat(logits), torch.cat(feats) if feats else None, teacher, feature_layer)

    @torch.no_grad()
    def get(self, idx: torch.Tensor, xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.logits is not None:
            return self.logits[idx], (self.features[idx] if self.features is not None else None)
        cap = _Capture(self.teacher, self.feature_layer) if self.feature_layer else None
        try:
            logits = self.teacher(xb)
            feat = cap.value.detach() if cap is not None and cap.value is not None else None
        finally:
            if cap is not None:
                cap.remove()
        return logits, feat


@dataclass(frozen=True)
class _TrainResult:
    final_loss: float
    final_feature_loss: float | None


def _train(
    student: nn.Module,
    train: Split,
    cfg: DistillationConfig,
    seed: int,
    *,
    teacher: _TeacherTargets | None,
    plan: _FeaturePlan | None,
    progress: Callable[[float, str], None],
) -> _TrainResult:
    """Train ``student`` in place; with ``teacher=None`` on cross-entropy only (the baseline).

    The batch order and every random draw come from ``seed``, so the baseline and the KD
    student see identical batches from identical initial weights.
    """
    use_features = teacher is not None and plan is not None and cfg.feature_loss != "none" and cfg.beta > 0
    regressor: _HintRegressor | None = None
    if use_features and cfg.feature_loss == "hint":
        assert plan is not None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            regressor = _HintRegressor(plan.student_shape, plan.teacher_shape)
    params = list(student.parameters()) + (list(regressor.parameters()) if regressor is not None else [])
    opt = torch.optim.Adam(params, lr=cfg.lr)
    n = len(train)
    batches_per_epoch = max(1, math.ceil(n / cfg.batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * batches_per_epoch)
    order_gen = torch.Generator().manual_seed(seed)
    capture = _Capture(student, plan.student_layer) if use_features and plan is not None else None
    last_loss, last_feat = float("nan"), None
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # dropout and any other random layer
            student.train()
            for epoch in range(cfg.epochs):
                perm = torch.randperm(n, generator=order_gen)
                loss_sum, feat_sum, seen = 0.0, 0.0, 0
                for i in range(0, n, cfg.batch_size):
                    idx = perm[i : i + cfg.batch_size]
                    if idx.numel() < 2:  # BatchNorm cannot train on a single sample
                        continue
                    xb, yb = train.x[idx], train.y[idx]
                    logits = student(xb)
                    ce = F.cross_entropy(logits, yb)
                    if teacher is None:
                        loss = ce
                    else:
                        t_logits, t_feat = teacher.get(idx, xb)
                        loss = cfg.alpha * kd_loss(logits, t_logits, cfg.temperature) + (1.0 - cfg.alpha) * ce
                        if use_features:
                            assert capture is not None and capture.value is not None and t_feat is not None
                            s_feat = capture.value
                            if cfg.feature_loss == "attention":
                                f_loss = _attention_loss(s_feat, t_feat)
                            else:
                                assert regressor is not None
                                f_loss = F.mse_loss(regressor(s_feat), regressor.target(t_feat))
                            loss = loss + cfg.beta * f_loss
                            feat_sum += float(f_loss.detach()) * idx.numel()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()  # type: ignore[no-untyped-call]
                    opt.step()
                    sched.step()
                    loss_sum += float(loss.detach()) * idx.numel()
                    seen += idx.numel()
                last_loss = loss_sum / max(seen, 1)
                last_feat = feat_sum / max(seen, 1) if use_features else None
                if not math.isfinite(last_loss):
                    raise ValueError(
                        f"training diverged (loss {last_loss}) at epoch {epoch + 1}: lower lr (now {cfg.lr:g}) or beta"
                    )
                progress((epoch + 1) / cfg.epochs, f"epoch {epoch + 1}/{cfg.epochs}, loss {last_loss:.4f}")
    finally:
        if capture is not None:
            capture.remove()
        student.eval()
    return _TrainResult(last_loss, last_feat)


@torch.no_grad()
def _accuracy(model: nn.Module, split: Split) -> float:
    correct = 0
    for i in range(0, len(split), _EVAL_BATCH):
        correct += int((_forward_eval(model, split.x[i : i + _EVAL_BATCH]).argmax(1) == split.y[i : i + _EVAL_BATCH]).sum())
    return correct / max(len(split), 1)
