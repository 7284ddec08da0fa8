"""Distillation losses: Hinton's KD term, attention transfer and the FitNets hint, and where features are read.

:func:`_plan_features` picks the teacher and student layers the feature loss matches;
:class:`_Capture` keeps a layer's output during a forward pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lwdash.techniques.distillation_students import _weighted_layers_in_call_order

__all__ = ["attention_map", "kd_loss"]


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton's distillation term ``T^2 * KL(p_teacher || p_student)`` on temperature-softened softmaxes.

    The ``T^2`` factor keeps its gradient scale comparable to cross-entropy's as T changes.
    """
    t = float(temperature)
    log_p_s = F.log_softmax(student_logits / t, dim=1)
    p_t = F.softmax(teacher_logits / t, dim=1)
    return F.kl_div(log_p_s, p_t, reduction="batchmean") * (t * t)


def attention_map(features: torch.Tensor) -> torch.Tensor:
    """Zagoruyko & Komodakis's spatial attention: channel-mean of squared activations, L2-normalised.

    Args:
        features: ``(B, C, H, W)``.

    Returns:
        ``(B, H * W)`` unit-norm rows.
    """
    return F.normalize(features.pow(2).mean(dim=1).flatten(1), dim=1)


@dataclass(frozen=True)
class _FeaturePlan:
    """Which layer of teacher and student the feature loss reads, and the output shapes there."""

    teacher_layer: str
    student_layer: str
    teacher_shape: tuple[int, ...]  # per sample
    student_shape: tuple[int, ...]


def _feature_layer(layers: list[tuple[str, nn.Module, torch.Size]]) -> tuple[str, torch.Size] | None:
    """The last Conv2d called; for MLPs the last hidden (not final) Linear."""
    convs = [(n, s) for n, m, s in layers if isinstance(m, nn.Conv2d)]
    if convs:
        return convs[-1]
    hidden = [(n, s) for n, m, s in layers[:-1] if isinstance(m, nn.Linear)]
    return hidden[-1] if hidden else None


def _plan_features(teacher: nn.Module, student: nn.Module, input_shape: tuple[int, ...], kind: str) -> _FeaturePlan:
    """Pick the layers the feature loss matches.

    Raises:
        ValueError: no suitable layer (attention needs Conv2d maps in both; hint needs a conv or
            hidden Linear layer in both).
    """
    t_layers = _weighted_layers_in_call_order(teacher, input_shape)
    s_layers = _weighted_layers_in_call_order(student, input_shape)
    if kind == "attention":
        t_convs = [(n, s) for n, m, s in t_layers if isinstance(m, nn.Conv2d)]
        s_convs = [(n, s) for n, m, s in s_layers if isinstance(m, nn.Conv2d)]
        if not t_convs or not s_convs:
            who = "teacher" if not t_convs else "student"
            raise ValueError(
                f"attention transfer needs convolutional feature maps and the {who} has no Conv2d layer; "
                "use feature_loss='hint' or 'none'"
            )
        t_name, t_shape = t_convs[-1]
        # The student's last conv whose map has the teacher's spatial size; else its last conv, resized.
        same = [(n, s) for n, s in s_convs if tuple(s[2:]) == tuple(t_shape[2:])]
        s_name, s_shape = same[-1] if same else s_convs[-1]
        return _FeaturePlan(t_name, s_name, tuple(t_shape[1:]), tuple(s_shape[1:]))
    t = _feature_layer(t_layers)
    s = _feature_layer(s_layers)
    if t is None or s is None:
        who = "teacher" if t is None else "student"
        raise ValueError(
            f"a hint loss needs a conv or hidden Linear layer and the {who} has none; use feature_loss='none'"
        )
    return _FeaturePlan(t[0], s[0], tuple(t[1][1:]), tuple(s[1][1:]))


class _HintRegressor(nn.Module):
    """FitNets regressor: maps the student's feature to the teacher's (1x1 conv for maps, Linear for vectors).

    When only one side is a map, that map is global-average-pooled to a vector first.
    """

    def __init__(self, student_shape: tuple[int, ...], teacher_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.maps = len(student_shape) == 3 and len(teacher_shape) == 3
        self.teacher_shape = teacher_shape
        c_s, c_t = student_shape[0], teacher_shape[0]
        self.proj: nn.Module = nn.Conv2d(c_s, c_t, kernel_size=1) if self.maps else nn.Linear(c_s, c_t)

    def forward(self, s_feat: torch.Tensor) -> torch.Tensor:
        if self.maps:
            y: torch.Tensor = self.proj(s_feat)  # (B, C_t, H_s, W_s)
            if tuple(y.shape[2:]) != tuple(self.teacher_shape[1:]):
                y = F.adaptive_avg_pool2d(y, (self.teacher_shape[1], self.teacher_shape[2]))
            return y
        if s_feat.ndim == 4:
            s_feat = s_feat.mean(dim=(2, 3))
        out: torch.Tensor = self.proj(s_feat.flatten(1))
        return out

    def target(self, t_feat: torch.Tensor) -> torch.Tensor:
        if not self.maps and t_feat.ndim == 4:
            return t_feat.mean(dim=(2, 3))
        return t_feat.flatten(1) if not self.maps else t_feat


def _attention_loss(s_feat: torch.Tensor, t_feat: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``|| Q_s/||Q_s|| - Q_t/||Q_t|| ||_2`` (the paper's p = 2 form)."""
    if tuple(s_feat.shape[2:]) != tuple(t_feat.shape[2:]):
        s_feat = F.interpolate(s_feat, size=tuple(t_feat.shape[2:]), mode="bilinear", align_corners=False)
    diff: torch.Tensor = attention_map(s_feat) - attention_map(t_feat)  # (B, H * W)
    per_sample: torch.Tensor = diff.norm(p=2, dim=1)  # (B,)
    return per_sample.mean()


class _Capture:
    """Keeps the output of one submodule from the latest forward pass (a forward hook)."""

    def __init__(self, model: nn.Module, layer: str) -> None:
        self.value: torch.Tensor | None = None
        self._handle = model.get_submodule(layer).register_forward_hook(self._hook)

    def _hook(self, mod: nn.Module, args: Any, out: Any) -> None:
        self.value = out

    def remove(self) -> None:
        self._handle.remove()
