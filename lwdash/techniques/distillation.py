"""Knowledge distillation: train a smaller student to mimic the input model (the teacher).

The loss is Hinton et al.'s ``alpha * KD + (1 - alpha) * CE`` with
``KD = T^2 * KL(softmax(teacher / T) || softmax(student / T))``, optionally plus ``beta`` times a
feature loss: attention transfer (Zagoruyko & Komodakis, 2017) or a FitNets hint (Romero et
al., 2015) with a 1x1-conv regressor. Every job also trains the same student architecture from
the same initialisation with cross-entropy only (same seed, epochs and batch order), so the
gain from the teacher is measured, not assumed: both accuracies are reported side by side.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from lwdash.data import Dataset
from lwdash.techniques.base import CompressedModel, RunContext, TechniqueConfig, knob, register
from lwdash.techniques.distillation_losses import _plan_features, attention_map, kd_loss
from lwdash.techniques.distillation_students import (
    StudentChoice,
    _check_smaller,
    _num_classes,
    build_student,
    params_count,
)
from lwdash.techniques.distillation_training import _accuracy, _TeacherTargets, _train

__all__ = [
    "DistillationConfig",
    "StudentChoice",
    "apply_distillation",
    "attention_map",
    "build_student",
    "kd_loss",
    "params_count",
]


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DistillationConfig(TechniqueConfig):
    """Train a smaller student to mimic the model (Hinton KD), beside a no-teacher baseline with the same seed and epochs."""

    student: Literal["narrow_0.5", "narrow_0.25", "narrow_0.125", "shallow", "digits_student", "fashion_student"] = knob(
        "narrow_0.5",
        help=(
            "narrow_x: the model with every hidden layer's width scaled by x, freshly initialised; "
            "shallow: the model without its shape-preserving blocks (e.g. repeated residual blocks); "
            "digits_student: the catalogue's tiny CNN for 8x8 digits; "
            "fashion_student: the catalogue's narrow CNN for 28x28 Fashion-MNIST"
        ),
    )
    temperature: float = knob(
        4.0, ge=1.0, le=20.0, step=0.5, sweepable=True, help="Softmax temperature T of the KD term"
    )
    alpha: float = knob(
        0.9, ge=0.0, le=1.0, step=0.05, sweepable=True, help="Weight of the KD term; 1 - alpha weighs cross-entropy"
    )
    feature_loss: Literal["none", "attention", "hint"] = knob(
        "none",
        help=(
            "Extra feature-matching loss on the last conv (or hidden Linear) layer: attention transfer "
            "(Zagoruyko & Komodakis) or a FitNets hint through a learned 1x1 regressor"
        ),
    )
    beta: float = knob(1.0, ge=0.0, le=1000.0, step=0.1, help="Weight of the feature loss (unused when none)")
    epochs: int = knob(15, ge=1, le=200, sweepable=True, help="Training epochs, for both the KD and the no-KD student")
    lr: float = knob(3e-3, gt=0.0, le=1.0, help="Adam learning rate (cosine-annealed); under-trained students gain nothing from KD")
    batch_size: int = knob(64, ge=2, le=4096, help="Training batch size")

    def validate_for(self, model: nn.Module, input_shape: tuple[int, ...]) -> None:
        """Check that the student can be built, is smaller than ``model`` and has the features asked for.

        Raises:
            ValueError: the student cannot be built for this model, is not smaller than it, or
                the feature loss has no layer to work on.
        """
        num_classes = _num_classes(model, input_shape)
        student = build_student(model, self.student, input_shape, num_classes, seed=0)
        _check_smaller(student, model)
        if self.feature_loss != "none":
            _plan_features(model, student, input_shape, self.feature_loss)


def _gain_note(acc_ce: float, acc_kd: float, acc_teacher: float) -> str:
    """The headline note: the measured KD gain over the no-teacher baseline, or why there is none."""
    diff = (acc_kd - acc_ce) * 100.0
    if round(diff, 1) > 0:
        return f"KD gain: +{diff:.1f} points over the same student trained without the teacher (same epochs, seed)"
    if round(diff, 1) == 0:
        text = (
            f"no gain: KD and the same student trained without the teacher tie at {acc_kd * 100:.1f}% "
            "(same epochs, seed)"
        )
    else:
        text = (
            f"no gain: KD is {-diff:.1f} points below the same student trained without the teacher "
            "(same epochs, seed)"
        )
    if acc_teacher <= acc_ce:
        return text + (
            f"; the teacher ({acc_teacher * 100:.1f}%) is no more accurate than the student trained alone, "
            "so it has little to teach"
        )
    return text + "; under-trained students often do worse with KD: try more epochs or a higher lr"


# --------------------------------------------------------------------------------------------
# The registered technique
# --------------------------------------------------------------------------------------------
_WHEN_DISTILLATION = (
    "When you can pick a smaller architecture and afford training time: the student is trained from "
    "scratch against the model's outputs, so it is the slowest technique, and the only one that changes "
    "the architecture freely. Compare it with the student trained alone, which the job also measures."
)


@register(
    "distillation", DistillationConfig, family="distillation", title="Knowledge distillation",
    when=_WHEN_DISTILLATION,
)
def apply_distillation(model: nn.Module, cfg: DistillationConfig, ctx: RunContext) -> CompressedModel:
    """Distil ``model`` into the chosen student and train a no-teacher baseline beside it.

    Returns:
        The KD-trained student (eval mode); ``steps`` hold the teacher's, the baseline's and the
        KD student's test accuracies, and a note states the measured gain (or its absence).

    Raises:
        ValueError: the student cannot be built, is not smaller, or the feature loss has no layer.
    """
    data: Dataset = ctx.data
    input_shape = tuple(data.input_shape)
    teacher = copy.deepcopy(model).eval()
    teacher.requires_grad_(False)
    num_classes = _num_classes(teacher, input_shape)
    ctx.progress(0.01, f"building the {cfg.student} student")
    student_init = build_student(teacher, cfg.student, input_shape, num_classes, seed=ctx.seed)
    _check_smaller(student_init, teacher)
    plan = _plan_features(teacher, student_init, input_shape, cfg.feature_loss) if cfg.feature_loss != "none" else None

    baseline = copy.deepcopy(student_init)
    _train(
        baseline,
        data.train,
        cfg,
        ctx.seed,
        teacher=None,
        plan=None,
        progress=lambda f, m: ctx.progress(0.02 + 0.43 * f, f"student without teacher: {m}"),
    )
    acc_ce = _accuracy(baseline, data.test)

    ctx.progress(0.46, "computing the teacher's outputs")
    targets = _TeacherTargets.build(
        teacher,
        data.train.x,
        plan.teacher_layer if plan is not None else None,
        plan.teacher_shape if plan is not None else None,
    )
    student = copy.deepcopy(student_init)
    result = _train(
        student,
        data.train,
        cfg,
        ctx.seed,
        teacher=targets,
        plan=plan,
        progress=lambda f, m: ctx.progress(0.5 + 0.45 * f, f"student with KD: {m}"),
    )
    acc_kd = _accuracy(student, data.test)
    acc_teacher = _accuracy(teacher, data.test)
    ctx.progress(0.98, "distillation done")

    n_s, n_t = params_count(student), params_count(teacher)
    kd_step: dict[str, Any] = {
        "step": "student with KD",
        "top1_acc": acc_kd,
        "epochs": cfg.epochs,
        "params_count": n_s,
        "temperature": cfg.temperature,
        "alpha": cfg.alpha,
        "feature_loss": cfg.feature_loss,
        "final_train_loss": result.final_loss,
    }
    if result.final_feature_loss is not None:
        kd_step["final_feature_loss"] = result.final_feature_loss
    if plan is not None:
        kd_step["feature_layers"] = f"teacher {plan.teacher_layer} -> student {plan.student_layer}"
    steps = (
        {"step": "teacher (input model)", "top1_acc": acc_teacher, "params_count": n_t},
        {"step": "student without teacher (CE only)", "top1_acc": acc_ce, "epochs": cfg.epochs, "params_count": n_s},
        kd_step,
    )
    notes = (
        _gain_note(acc_ce, acc_kd, acc_teacher),
        f"student {cfg.student}: {n_s:,} params vs the teacher's {n_t:,} ({n_s / n_t:.1%}); "
        f"test accuracy: teacher {acc_teacher:.1%}, student without teacher {acc_ce:.1%}, with KD {acc_kd:.1%} "
        "(PyTorch, test split)",
    )
    return CompressedModel(module=student, notes=notes, steps=steps)
