"""Recovery after a structural change: BatchNorm recalibration, the schedule, early stop, the original as teacher."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from lwdash.data import Dataset, Split
from lwdash.techniques import config_from_dict, form_spec, get_technique
from lwdash.techniques.recovery import RecoveryPlan, _loss, recalibrate_batchnorm_, recover_


def _bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8 * 8 * 8, 10)).eval()


def test_batchnorm_statistics_are_re_estimated_from_the_data(digits: Dataset) -> None:
    net = _bn_net()
    bn = net[1]
    with torch.no_grad():
        bn.running_mean.fill_(5.0)
        bn.running_var.fill_(100.0)  # what a structural change leaves: statistics of another network
        feats = net[0](digits.train.x)
    weight = bn.weight.detach().clone()
    assert recalibrate_batchnorm_(net, digits.train, batches=100, batch_size=64) == 1
    true_mean = feats.mean(dim=(0, 2, 3))
    assert torch.allclose(bn.running_mean, true_mean, atol=1e-3)
    assert torch.allclose(bn.running_var, feats.var(dim=(0, 2, 3)), rtol=0.05)
    assert torch.equal(bn.weight, weight) and not net.training and bn.momentum == 0.1


def test_a_network_without_batchnorm_is_left_alone(digits: Dataset) -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    assert recalibrate_batchnorm_(net, digits.train) == 0


def _acc(net: nn.Module, split: Split) -> float:
    with torch.no_grad():
        return float((net(split.x).argmax(1) == split.y).float().mean())


def test_early_stop_keeps_the_best_weights_when_training_diverges(trained_cnn: nn.Module, digits: Dataset) -> None:
    net = copy.deepcopy(trained_cnn)
    start = _acc(net, digits.calib)
    report = recover_(net, digits.train, digits.calib, RecoveryPlan(epochs=3, lr=50.0, teacher_weight=0.0,
                                                                   evals_per_epoch=4, patience=2))
    assert report.stopped_early and report.epochs_run < 3
    assert report.calib_after == pytest.approx(_acc(net, digits.calib), abs=1e-6) and report.calib_after >= start - 1e-6
    assert "stopped early" in report.note("Recovery")


def test_recovery_with_the_original_as_teacher_restores_a_pruned_cnn(trained_cnn: nn.Module, digits: Dataset) -> None:
    tech = get_technique("structured_pruning")
    from lwdash.techniques import RunContext

    ctx = RunContext(data=digits)
    raw = tech.apply(trained_cnn, tech.config_type(ratio=0.5, fine_tune_epochs=0), ctx).module
    out = tech.apply(trained_cnn, tech.config_type(ratio=0.5, teacher_weight=0.5), ctx)  # recover, SGD, a teacher
    note = next(n for n in out.notes if n.startswith("Recovery after structured pruning"))
    assert "BatchNorm statistics of" in note and "the original model as teacher" in note
    assert _acc(out.module, digits.test) >= max(_acc(raw, digits.test), _acc(trained_cnn, digits.test) - 0.03)


def test_the_distillation_loss_mixes_labels_and_the_teacher() -> None:
    torch.manual_seed(0)
    logits, teacher, y = torch.randn(6, 10), torch.randn(6, 10), torch.randint(0, 10, (6,))
    ce = nn.functional.cross_entropy(logits, y)
    assert torch.equal(_loss(logits, y, teacher, 0.0), ce) and torch.equal(_loss(logits, y, None, 0.7), ce)
    assert float(_loss(teacher, y, teacher, 1.0)) == pytest.approx(0.0, abs=1e-6)  # the teacher's own answer
    mixed = float(_loss(logits, y, teacher, 0.5))
    assert math.isfinite(mixed) and mixed != pytest.approx(float(ce))


def test_configs_stored_before_the_recovery_knobs_read_back_as_plain_adam() -> None:
    _, old = config_from_dict({"type": "structured_pruning", "version": 3, "data": {"ratio": 0.3, "lr": 0.001}})
    assert (old.recipe, old.optimizer, old.teacher_weight, old.lr) == ("plain", "adam", 0.0, 0.001)  # type: ignore[attr-defined]
    _, new = config_from_dict({"type": "structured_pruning", "version": 4, "data": {"ratio": 0.3}})
    assert (new.recipe, new.optimizer, new.teacher_weight) == ("recover", "sgd", 0.0)  # type: ignore[attr-defined]


@pytest.mark.parametrize("key", ["structured_pruning", "low_rank", "nm_sparsity", "fine_tune"])
def test_forms_show_the_recovery_knobs_after_the_techniques_own(key: str) -> None:
    names = [f.name for f in form_spec(get_technique(key).config_type)]
    recipe = ["recipe", "optimizer", "teacher_weight"]
    if key == "fine_tune":
        assert names == ["epochs", "lr", *recipe]
    else:
        assert names[-5:] == [*recipe, "fine_tune_epochs", "lr"]


def test_a_pipeline_step_distils_from_the_jobs_input_not_from_the_previous_step(
    trained_cnn: nn.Module, digits: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lwdash.techniques.recovery as recovery
    from lwdash.techniques import RunContext, build_config

    teachers: list[nn.Module | None] = []
    real = recovery.recover_

    def spy(*args: object, **kw: object) -> object:
        teachers.append(kw.get("teacher"))  # type: ignore[arg-type]
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(recovery, "recover_", spy)
    cfg = build_config(get_technique("pipeline").config_type, {"steps": [
        {"technique": "structured_pruning", "ratio": 0.3, "fine_tune_epochs": 1, "teacher_weight": 0.5},
        {"technique": "fine_tune", "epochs": 1, "teacher_weight": 0.5}]})
    get_technique("pipeline").apply(trained_cnn, cfg, RunContext(data=digits, teacher=trained_cnn))
    assert len(teachers) == 2 and all(t is trained_cnn for t in teachers)
