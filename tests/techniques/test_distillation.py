"""Knowledge distillation on real digits: students, the no-KD baseline, feature losses, rejections."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from lwdash.data import Dataset
from lwdash.data.digits import load_digits
from lwdash.techniques import RunContext, get_technique
from lwdash.techniques.distillation import (
    DistillationConfig,
    apply_distillation,
    attention_map,
    build_student,
    kd_loss,
    params_count,
)

INPUT_SHAPE = (1, 8, 8)


class _TeacherCNN(nn.Module):
    """A small digits CNN (~85K params) with BatchNorm and a hidden Linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 64, 4, 4)
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64 * 16, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _train(model: nn.Module, data: Dataset, epochs: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(data.train), generator=gen)
        for i in range(0, len(perm), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            F.cross_entropy(model(data.train.x[idx]), data.train.y[idx]).backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits(seed=0)


@pytest.fixture(scope="module")
def teacher(digits: Dataset) -> nn.Module:
    torch.manual_seed(0)
    model = _train(_TeacherCNN(), digits, epochs=6)
    acc = (model(digits.test.x).argmax(1) == digits.test.y).float().mean().item()
    assert acc > 0.95, f"the test teacher itself is not trained ({acc:.3f})"
    return model


@pytest.fixture(scope="module")
def default_result(teacher: nn.Module, digits: Dataset) -> tuple[dict[str, torch.Tensor], object]:
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    out = apply_distillation(teacher, DistillationConfig(), RunContext(data=digits, seed=0))
    return before, out


def _step(out: object, name: str) -> dict[str, object]:
    matches = [s for s in out.steps if s["step"] == name]  # type: ignore[attr-defined]
    assert len(matches) == 1, [s["step"] for s in out.steps]  # type: ignore[attr-defined]
    return matches[0]


def test_registered_under_distillation_family() -> None:
    tech = get_technique("distillation")
    assert tech.family == "distillation"
    assert tech.config_type is DistillationConfig
    assert "student" in tech.description.lower()


def test_narrow_half_student_is_a_smaller_fresh_network(teacher: nn.Module) -> None:
    student = build_student(teacher, "narrow_0.5", INPUT_SHAPE, 10, seed=0)
    assert isinstance(student.features[0], nn.Conv2d) and student.features[0].out_channels == 16
    assert student.features[3].out_channels == 32
    assert student.head[1].out_features == 32 and student.head[3].out_features == 10
    n_s, n_t = params_count(student), params_count(teacher)
    assert n_s < n_t / 3, (n_s, n_t)  # halving every width keeps about a quarter of the weights
    x = torch.rand(5, *INPUT_SHAPE)
    assert student(x).shape == (5, 10)
    # re-initialised, not copied: the surviving first-layer filters differ from the teacher's
    assert not any(
        torch.allclose(student.features[0].weight[i], teacher.features[0].weight[j]) for i in range(16) for j in range(32)
    )
    # same seed, same student
    again = build_student(teacher, "narrow_0.5", INPUT_SHAPE, 10, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(student.state_dict().values(), again.state_dict().values(), strict=True))


def test_default_job_reports_kd_and_no_kd_students(
    default_result: tuple[dict[str, torch.Tensor], object], teacher: nn.Module, digits: Dataset
) -> None:
    before, out = default_result
    cfg = DistillationConfig()
    baseline = _step(out, "student without teacher (CE only)")
    kd = _step(out, "student with KD")
    assert baseline["epochs"] == kd["epochs"] == cfg.epochs == 15
    assert baseline["top1_acc"] > 0.5 and kd["top1_acc"] > 0.5, (baseline, kd)
    assert math.isfinite(kd["final_train_loss"])  # type: ignore[arg-type]
    # the returned module is the KD student and its accuracy is what the step says
    module = out.module  # type: ignore[attr-defined]
    with torch.no_grad():
        acc = (module(digits.test.x).argmax(1) == digits.test.y).float().mean().item()
    assert acc == pytest.approx(kd["top1_acc"], abs=1e-6)
    assert params_count(module) == kd["params_count"] < params_count(teacher)
    # the gain note matches the measured numbers
    diff = (kd["top1_acc"] - baseline["top1_acc"]) * 100  # type: ignore[operator]
    note = out.notes[0]  # type: ignore[attr-defined]
    if round(diff, 1) > 0:
        assert note.startswith(f"KD gain: +{diff:.1f} points over the same student trained without the teacher")
    else:
        assert note.startswith("no gain")
    # the teacher was not touched
    after = teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not teacher.training


def test_alpha_zero_reproduces_the_baseline_exactly(teacher: nn.Module, digits: Dataset) -> None:
    """With alpha=0 the KD loss is pure CE: same init + same batches must give the same student."""
    out = apply_distillation(teacher, DistillationConfig(alpha=0.0, epochs=2), RunContext(data=digits, seed=3))
    assert _step(out, "student without teacher (CE only)")["top1_acc"] == _step(out, "student with KD")["top1_acc"]
    assert out.notes[0].startswith("no gain: KD and the same student trained without the teacher tie")


@pytest.mark.parametrize("feature_loss", ["attention", "hint"])
def test_feature_losses_train_with_finite_losses(teacher: nn.Module, digits: Dataset, feature_loss: str) -> None:
    cfg = DistillationConfig(feature_loss=feature_loss, beta=1.0, epochs=2)  # type: ignore[arg-type]
    cfg.validate_for(teacher, INPUT_SHAPE)
    out = apply_distillation(teacher, cfg, RunContext(data=digits, seed=0))
    kd = _step(out, "student with KD")
    assert kd["feature_loss"] == feature_loss
    assert math.isfinite(kd["final_feature_loss"]) and kd["final_feature_loss"] > 0  # type: ignore[arg-type]
    assert math.isfinite(kd["final_train_loss"])  # type: ignore[arg-type]
    assert kd["feature_layers"] == "teacher features.3 -> student features.3"
    assert kd["top1_acc"] > 0.3  # learning, after only two epochs


def test_hint_on_an_mlp_uses_the_last_hidden_linear(digits: Dataset) -> None:
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    out = apply_distillation(mlp.eval(), DistillationConfig(feature_loss="hint", epochs=1), RunContext(data=digits))
    kd = _step(out, "student with KD")
    assert kd["feature_layers"] == "teacher 3 -> student 3"
    assert math.isfinite(kd["final_feature_loss"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="attention transfer needs convolutional feature maps"):
        DistillationConfig(feature_loss="attention").validate_for(mlp, INPUT_SHAPE)


def test_student_larger_than_teacher_is_rejected() -> None:
    tiny = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))  # 650 params; digits_student has ~1.9K
    n_student = params_count(build_student(tiny, "digits_student", INPUT_SHAPE, 10, seed=0))
    with pytest.raises(ValueError, match=rf"student has {n_student} params, teacher 650: a student must be smaller"):
        DistillationConfig(student="digits_student").validate_for(tiny, INPUT_SHAPE)


def test_digits_student_needs_digits_input() -> None:
    model = nn.Sequential(nn.Conv2d(3, 64, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    with pytest.raises(ValueError, match=r"digits_student architecture takes input \(1, 8, 8\); this model takes \(3, 16, 16\)"):
        DistillationConfig(student="digits_student").validate_for(model, (3, 16, 16))


def test_shallow_drops_repeated_residual_blocks() -> None:
    resnet = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    student = build_student(resnet, "shallow", (3, 32, 32), 10, seed=0)
    assert isinstance(student.layer1, nn.Identity)  # the whole stage keeps its shape: dropped as one block
    for stage in (student.layer2, student.layer3, student.layer4):
        assert isinstance(stage[0], torchvision.models.resnet.BasicBlock)  # the downsampling block stays
        assert isinstance(stage[1], nn.Identity)
    assert student(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert params_count(student) < params_count(resnet) / 2


def test_shallow_rejected_without_shape_preserving_blocks(teacher: nn.Module) -> None:
    with pytest.raises(ValueError, match="shallow student needs shape-preserving blocks"):
        DistillationConfig(student="shallow").validate_for(teacher, INPUT_SHAPE)


def test_kd_loss_and_attention_map_properties() -> None:
    torch.manual_seed(0)
    s, t = torch.randn(8, 10), torch.randn(8, 10)
    assert kd_loss(t, t, 4.0).item() == pytest.approx(0.0, abs=1e-6)
    assert kd_loss(s, t, 4.0).item() > 0
    manual = (F.softmax(t / 2, 1) * (F.log_softmax(t / 2, 1) - F.log_softmax(s / 2, 1))).sum(1).mean() * 4
    assert kd_loss(s, t, 2.0).item() == pytest.approx(manual.item(), rel=1e-5)
    maps = attention_map(torch.randn(3, 5, 4, 4))
    assert maps.shape == (3, 16)
    assert torch.allclose(maps.norm(dim=1), torch.ones(3), atol=1e-6)


def test_gain_note_states_the_measured_difference_honestly() -> None:
    from lwdash.techniques.distillation import _gain_note

    assert _gain_note(0.960, 0.972, 0.99) == (
        "KD gain: +1.2 points over the same student trained without the teacher (same epochs, seed)"
    )
    worse = _gain_note(0.978, 0.944, 0.997)
    assert worse.startswith("no gain: KD is 3.4 points below") and "try more epochs" in worse
    weak_teacher = _gain_note(0.978, 0.969, 0.972)
    assert weak_teacher.startswith("no gain") and "the teacher (97.2%) is no more accurate" in weak_teacher
