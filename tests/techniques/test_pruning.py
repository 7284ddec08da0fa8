"""Magnitude pruning: exact zero counts, global vs per-layer ranking, the classifier rule, fine-tuning."""
from __future__ import annotations

import copy

import pytest
import torch
from _tech_helpers import accuracy
from torch import nn

from lwdash.data import Dataset
from lwdash.techniques import RunContext, config_from_dict
from lwdash.techniques.pruning import (
    DENSE_KERNEL_NOTE,
    MagnitudePruningConfig,
    apply_magnitude_pruning,
    prunable_layers,
)


def _weights(model: nn.Module, *, prune_classifier: bool) -> dict[str, torch.Tensor]:
    return {n: m.weight.detach() for n, m in prunable_layers(model, prune_classifier=prune_classifier)}


@pytest.mark.parametrize("amount", [0.3, 0.5, 0.9])
def test_global_pruning_zeroes_exactly_the_smallest_weights(amount: float, trained_cnn: nn.Module, ctx: RunContext) -> None:
    out = apply_magnitude_pruning(trained_cnn, MagnitudePruningConfig(amount=amount), ctx).module
    before = _weights(trained_cnn, prune_classifier=False)
    after = _weights(out, prune_classifier=False)
    assert list(after) == ["features.0", "features.3", "classifier.1"]  # the last Linear is the classifier
    total = sum(w.numel() for w in before.values())
    zeros = sum(int((w == 0).sum()) for w in after.values())
    assert abs(zeros - round(amount * total)) <= 1
    pruned_mag = torch.cat([b[a == 0].abs() for b, a in zip(before.values(), after.values(), strict=True)])
    kept_mag = torch.cat([b[a != 0].abs() for b, a in zip(before.values(), after.values(), strict=True)])
    assert pruned_mag.max() <= kept_mag.min()  # one global threshold
    for name, b in before.items():  # surviving weights are untouched
        a = after[name]
        assert torch.equal(a[a != 0], b[a != 0])
    # The final classifier and every bias stay as they were.
    assert torch.equal(out.classifier[3].weight, trained_cnn.classifier[3].weight)
    assert torch.equal(out.features[0].bias, trained_cnn.features[0].bias)


def test_global_and_per_layer_rank_differently(trained_cnn: nn.Module, ctx: RunContext) -> None:
    amount = 0.6
    per_layer = apply_magnitude_pruning(trained_cnn, MagnitudePruningConfig(amount=amount, scope="per_layer"), ctx).module
    for name, w in _weights(per_layer, prune_classifier=False).items():
        zeros = int((w == 0).sum())
        assert abs(zeros - round(amount * w.numel())) <= 1, name
        b = dict(_weights(trained_cnn, prune_classifier=False))[name]
        assert b[w == 0].abs().max() <= b[w != 0].abs().min()  # a threshold per layer
    glob = apply_magnitude_pruning(trained_cnn, MagnitudePruningConfig(amount=amount, scope="global"), ctx).module
    fractions = [float((w == 0).float().mean()) for w in _weights(glob, prune_classifier=False).values()]
    assert max(fractions) - min(fractions) > 0.05, f"global ranking should spread unevenly, got {fractions}"


def test_prune_classifier_includes_the_last_layer(trained_cnn: nn.Module, ctx: RunContext) -> None:
    res = apply_magnitude_pruning(trained_cnn, MagnitudePruningConfig(amount=0.5, prune_classifier=True), ctx)
    w = _weights(res.module, prune_classifier=True)
    assert "classifier.3" in w and int((w["classifier.3"] == 0).sum()) > 0
    total = sum(t.numel() for t in w.values())
    assert abs(sum(int((t == 0).sum()) for t in w.values()) - round(0.5 * total)) <= 1
    assert DENSE_KERNEL_NOTE in res.notes
    assert not any("left dense" in n for n in res.notes)


def test_fine_tuning_keeps_the_zeros_recovers_accuracy_and_is_seeded(
    trained_cnn: nn.Module, digits: Dataset
) -> None:
    before_state = copy.deepcopy(trained_cnn.state_dict())
    seen: list[tuple[float, str]] = []
    ctx = RunContext(data=digits, seed=3)
    one_shot = apply_magnitude_pruning(trained_cnn, MagnitudePruningConfig(amount=0.95), ctx).module
    cfg = MagnitudePruningConfig(amount=0.95, fine_tune_epochs=2, lr=1e-3)
    tracked = RunContext(data=digits, seed=3, progress=lambda f, m: seen.append((f, m)))
    tuned = apply_magnitude_pruning(trained_cnn, cfg, tracked).module
    again = apply_magnitude_pruning(trained_cnn, cfg, ctx).module

    for (name, w1), w2 in zip(_weights(one_shot, prune_classifier=False).items(), _weights(tuned, prune_classifier=False).values(), strict=True):
        assert torch.equal(w1 == 0, w2 == 0), f"{name}: fine-tuning moved the zeros"
    assert not torch.equal(one_shot.classifier[1].weight, tuned.classifier[1].weight), "fine-tuning changed nothing"
    for k, v in tuned.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), f"same seed, different {k}"
    with torch.no_grad():
        acc_one_shot = accuracy(one_shot(digits.test.x), digits.test.y)
        acc_tuned = accuracy(tuned(digits.test.x), digits.test.y)
    # Measured: 0.82 one-shot at 95 % -> 0.96 after two epochs with the zeros held.
    assert acc_tuned > acc_one_shot + 0.05, (acc_one_shot, acc_tuned)
    assert not tuned.training and all(not p.requires_grad or p.grad is None for p in tuned.parameters())
    for k, v in trained_cnn.state_dict().items():
        assert torch.equal(v, before_state[k]), f"fine-tuning touched the input model's {k}"
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("epoch 2/2" in m for _, m in seen)


def test_models_with_nothing_to_prune_are_rejected_with_a_clear_message(ctx: RunContext) -> None:
    only_classifier = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with pytest.raises(ValueError, match="prune_classifier=True"):
        MagnitudePruningConfig().validate_for(only_classifier, (1, 8, 8))
    with pytest.raises(ValueError, match="prune_classifier=True"):
        apply_magnitude_pruning(only_classifier, MagnitudePruningConfig(), ctx)
    out = apply_magnitude_pruning(only_classifier, MagnitudePruningConfig(prune_classifier=True), ctx).module
    assert int((out[1].weight == 0).sum()) == round(0.5 * 640)
    with pytest.raises(ValueError, match="Conv or Linear"):
        MagnitudePruningConfig().validate_for(nn.Sequential(nn.Flatten()), (1, 8, 8))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"amount": 1.2}, "amount"),
        ({"amount": 1.0}, "amount"),
        ({"amount": -0.1}, "amount"),
        ({"scope": "random"}, "scope"),
        ({"fine_tune_epochs": 21}, "fine_tune_epochs"),
        ({"fine_tune_epochs": -1}, "fine_tune_epochs"),
        ({"lr": 0.0}, "lr"),
    ],
)
def test_bad_configs_raise_before_any_work(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        MagnitudePruningConfig(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=field):
        config_from_dict({"type": "magnitude_pruning", "version": 1, "data": kwargs})


# ---------------------------------------------------------------------------------- schedules
def _zero_fraction(model: nn.Module, names: list[str]) -> float:
    ws = [dict(model.named_modules())[n].weight for n in names]
    return sum(int((w == 0).sum()) for w in ws) / sum(w.numel() for w in ws)


@pytest.mark.parametrize("schedule", ["iterative", "lottery_ticket"])
def test_schedules_reach_the_amount_and_keep_accuracy(schedule: str, trained_cnn: nn.Module, ctx: RunContext) -> None:
    from lwdash.techniques.pruning import apply_magnitude_pruning, prunable_layers

    cfg = MagnitudePruningConfig(amount=0.9, schedule=schedule, iterations=2, fine_tune_epochs=1, rewind_steps=5)  # type: ignore[arg-type]
    seen: list[str] = []
    out = apply_magnitude_pruning(trained_cnn, cfg, RunContext(data=ctx.data, progress=lambda f, m: seen.append(m)))
    names = [n for n, _ in prunable_layers(trained_cnn, prune_classifier=False)]
    assert abs(_zero_fraction(out.module, names) - 0.9) < 0.002
    assert accuracy(out.module(ctx.data.test.x).detach(), ctx.data.test.y) >= 0.9
    rounds = [m for m in seen if "round 2/2 (90% pruned)" in m]
    assert rounds, "the second round prunes to the full amount"
    assert any("68% pruned" in m for m in seen), "round 1 removes the same fraction of survivors: 1 - 0.1 ** 0.5"
    if schedule == "lottery_ticket":
        assert any("after 5 of its" in n and "rewind point" in n for n in out.notes)


def test_lottery_ticket_rewinds_survivors_to_their_early_values(trained_cnn: nn.Module, ctx: RunContext) -> None:
    # With rewind_steps=0 and a learning rate of ~0, retraining cannot move the weights: every
    # survivor must be exactly its original value (rewound), every pruned weight exactly zero.
    from lwdash.techniques.pruning import apply_magnitude_pruning

    cfg = MagnitudePruningConfig(amount=0.5, schedule="lottery_ticket", iterations=1, fine_tune_epochs=1,
                                 rewind_steps=0, lr=1e-12)  # type: ignore[arg-type]
    out = apply_magnitude_pruning(trained_cnn, cfg, ctx)
    w0 = dict(trained_cnn.named_parameters())["features.0.weight"].detach()
    w1 = dict(out.module.named_parameters())["features.0.weight"].detach()
    kept = w1 != 0
    assert 0 < int(kept.sum()) < w1.numel()
    assert torch.allclose(w1[kept], w0[kept], atol=1e-6)


def test_magnitude_masks_rank_globally_or_per_tensor() -> None:
    from lwdash.techniques.pruning import magnitude_masks

    a, b = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([10.0, 20.0, 30.0, 40.0])
    g = magnitude_masks([a, b], 0.5, "global")
    assert g[0].tolist() == [False] * 4 and g[1].tolist() == [True] * 4
    p = magnitude_masks([a, b], 0.5, "per_layer")
    assert p[0].tolist() == [False, False, True, True] == p[1].tolist()


def test_iterative_schedules_need_training() -> None:
    with pytest.raises(ValueError, match="fine_tune_epochs must be >= 1 for the iterative schedule"):
        MagnitudePruningConfig(schedule="iterative")
