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
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from lwdash.data import Dataset, Split
from lwdash.techniques.base import CompressedModel, RunContext, TechniqueConfig, knob, register

__all__ = [
    "DistillationConfig",
    "StudentChoice",
    "apply_distillation",
    "attention_map",
    "build_student",
    "kd_loss",
    "params_count",
]

StudentChoice = Literal["narrow_0.5", "narrow_0.25", "narrow_0.125", "shallow", "digits_student", "fashion_student"]

# The catalogue students: sample architectures (lwdash.models.registry) for one input shape each.
_CATALOGUE_STUDENTS = ("digits_student", "fashion_student")
# Teacher features for the whole training split are cached when they fit in this budget;
# otherwise the teacher runs on every batch.
_FEATURE_CACHE_BYTES = 256 * 2**20
_EVAL_BATCH = 512


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


# --------------------------------------------------------------------------------------------
# Students
# --------------------------------------------------------------------------------------------
def params_count(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    return int(sum(p.numel() for p in model.parameters()))


def _check_smaller(student: nn.Module, teacher: nn.Module) -> None:
    n, m = params_count(student), params_count(teacher)
    if n >= m:
        raise ValueError(f"student has {n} params, teacher {m}: a student must be smaller")


@torch.no_grad()
def _num_classes(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    out = _forward_eval(model, torch.zeros((2, *input_shape)))
    if out.ndim != 2:
        raise ValueError(f"distillation needs a classifier with (batch, classes) output; this model returns {tuple(out.shape)}")
    return int(out.shape[1])


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Run in eval mode and restore each submodule's training flag afterwards (never mutate the caller's model)."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.train(flag)


def _forward_eval(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with _eval_mode(model), torch.no_grad():
        out = model(x)
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"distillation needs a model returning one logits tensor, got {type(out).__name__}")
    return out


def _weighted_layers_in_call_order(model: nn.Module, input_shape: tuple[int, ...]) -> list[tuple[str, nn.Module, torch.Size]]:
    """Conv and Linear layers in the order one forward pass calls them, with their output shapes."""
    order: list[tuple[str, nn.Module, torch.Size]] = []
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd)):

            def hook(mod: nn.Module, args: Any, out: Any, name: str = name) -> None:
                if isinstance(out, torch.Tensor):
                    order.append((name, mod, out.shape))

            hooks.append(m.register_forward_hook(hook))
    try:
        _forward_eval(model, torch.zeros((2, *input_shape)))
    finally:
        for h in hooks:
            h.remove()
    return order


def _reinitialize(model: nn.Module) -> None:
    """Fresh random weights (and running statistics) for every module that can reset itself."""
    for m in model.modules():
        reset = getattr(m, "reset_parameters", None)
        if callable(reset):
            reset()


def _narrow(teacher: nn.Module, width: float, input_shape: tuple[int, ...]) -> nn.Module:
    """The teacher's architecture with every hidden Conv/Linear width scaled by ``width``.

    torch-pruning's group-aware MetaPruner removes ``1 - width`` of the channels of every
    prunable layer group (coupled layers shrink together), leaving the output layer alone.
    """
    import torch_pruning as tp

    student = copy.deepcopy(teacher).eval()
    student.requires_grad_(True)  # torch-pruning traces the autograd graph
    layers = _weighted_layers_in_call_order(student, input_shape)
    if not layers:
        raise ValueError("a narrow student needs Conv or Linear layers; this model has none")
    output_layer = layers[-1][1]
    example = torch.zeros((1, *input_shape))
    try:
        pruner = tp.pruner.MetaPruner(
            student,
            example,
            importance=tp.importance.GroupMagnitudeImportance(p=2),
            pruning_ratio=1.0 - width,
            ignored_layers=[output_layer],
        )
        pruner.step()
    except Exception as e:  # torch-pruning cannot trace some graphs (e.g. converted ONNX models)
        raise ValueError(
            f"could not build a narrow_{width:g} student from this model (torch-pruning: {type(e).__name__}: {e}); "
            "try the digits_student catalogue student or shallow"
        ) from e
    return student


def _shallow(teacher: nn.Module, input_shape: tuple[int, ...]) -> tuple[nn.Module, list[str]]:
    """The teacher without its shape-preserving blocks.

    A block qualifies when it holds a Conv or Linear layer, is called once with one tensor and
    returns a tensor of the same shape (a repeated residual block, a width-preserving hidden
    layer): such a block can be replaced by the identity without changing any other layer.
    The outermost qualifying blocks are removed; each stage keeps its shape-changing block.

    Returns:
        The student and the names of the removed blocks.

    Raises:
        ValueError: the model has no such block.
    """
    student = copy.deepcopy(teacher).eval()
    layers = _weighted_layers_in_call_order(student, input_shape)
    output_name = layers[-1][0] if layers else ""
    calls: dict[str, int] = {}
    same_shape: dict[str, bool] = {}
    hooks = []
    for name, m in student.named_modules():
        if not name or not any(isinstance(x, (nn.Linear, nn.modules.conv._ConvNd)) for x in m.modules()):
            continue

        def hook(mod: nn.Module, args: Any, kwargs: Any, out: Any, name: str = name) -> None:
            calls[name] = calls.get(name, 0) + 1
            ok = (
                len(args) == 1
                and not kwargs
                and isinstance(args[0], torch.Tensor)
                and isinstance(out, torch.Tensor)
                and args[0].shape == out.shape
            )
            same_shape[name] = same_shape.get(name, True) and ok

        hooks.append(m.register_forward_hook(hook, with_kwargs=True))
    try:
        _forward_eval(student, torch.zeros((2, *input_shape)))
    finally:
        for h in hooks:
            h.remove()
    qualifying = [
        n
        for n in calls
        if calls[n] == 1
        and same_shape.get(n, False)
        and not (output_name == n or output_name.startswith(n + "."))
    ]
    outermost = [n for n in qualifying if not any(n.startswith(p + ".") for p in qualifying)]
    if not outermost:
        raise ValueError(
            "a shallow student needs shape-preserving blocks to drop (e.g. repeated residual blocks or "
            "equal-width hidden layers) and this model has none; pick narrow_0.5, narrow_0.25 or narrow_0.125"
        )
    for name in outermost:
        parent_name, _, child = name.rpartition(".")
        parent = student.get_submodule(parent_name) if parent_name else student
        setattr(parent, child, nn.Identity())
    return student, outermost


def build_student(
    teacher: nn.Module, choice: StudentChoice, input_shape: tuple[int, ...], num_classes: int, *, seed: int
) -> nn.Module:
    """Build a freshly initialised student for ``teacher`` (the teacher is not modified).

    Args:
        teacher: the model to distil.
        choice: ``narrow_<x>`` (hidden widths scaled by x), ``shallow`` (shape-preserving blocks
            removed), ``digits_student`` or ``fashion_student`` (the catalogue architectures for
            ``(1, 8, 8)`` and ``(1, 28, 28)`` input).
        input_shape: per-sample input shape, no batch dim.
        num_classes: number of output logits.
        seed: seed of the student's initialisation.

    Returns:
        The student in eval mode, producing ``(B, num_classes)`` logits.

    Raises:
        ValueError: the student cannot be built for this teacher or input shape.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if choice.startswith("narrow_"):
            student = _narrow(teacher, float(choice.removeprefix("narrow_")), input_shape)
        elif choice == "shallow":
            student, _ = _shallow(teacher, input_shape)
        elif choice in _CATALOGUE_STUDENTS:
            from lwdash.models.registry import architecture_input_shape, build_architecture

            expected = tuple(architecture_input_shape(choice))
            if tuple(input_shape) != expected:
                raise ValueError(
                    f"the {choice} architecture takes input {expected}; this model takes {tuple(input_shape)}: "
                    "pick a narrow_* or shallow student"
                )
            student = build_architecture(choice, num_classes)
        else:
            raise ValueError(
                f"unknown student {choice!r}; accepted: narrow_0.5, narrow_0.25, narrow_0.125, shallow, "
                + ", ".join(_CATALOGUE_STUDENTS)
            )
        _reinitialize(student)
    student.requires_grad_(True)
    student.eval()
    out = _forward_eval(student, torch.zeros((2, *input_shape)))
    if tuple(out.shape) != (2, num_classes):
        raise ValueError(f"the {choice} student returns {tuple(out.shape[1:])}, the teacher ({num_classes},)")
    return student


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------
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
