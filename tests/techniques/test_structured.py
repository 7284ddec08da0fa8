"""Structured (channel) pruning and N:M semi-structured sparsity on real models and data."""

from __future__ import annotations

import copy
import io
import warnings

import numpy as np
import onnx
import pytest
import torch
import torch_pruning as tp
import torchvision
from _tech_helpers import accuracy, ort_logits
from torch import nn

from lwdash.data import Dataset, Split
from lwdash.techniques import RunContext, get_technique
from lwdash.techniques.structured import (
    NM_SPEED_NOTE,
    NMSparsityConfig,
    StructuredPruningConfig,
    apply_nm_sparsity,
    apply_structured_pruning,
    nm_eligible_layers,
    nm_mask,
)


def _macs_params(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, int]:
    with torch.no_grad():
        macs, params = tp.utils.count_ops_and_params(model.eval(), torch.zeros((1, *input_shape)))
    return int(macs), int(params)


# --------------------------------------------------------------------------------------------
# structured_pruning
# --------------------------------------------------------------------------------------------
def test_registered_under_their_families() -> None:
    assert get_technique("structured_pruning").family == "structured_pruning"
    assert get_technique("nm_sparsity").family == "pruning"


def test_half_the_channels_cut_params_and_macs_of_a_small_cnn(trained_cnn: nn.Module, ctx: RunContext) -> None:
    macs0, params0 = _macs_params(trained_cnn, ctx.input_shape)
    out = apply_structured_pruning(trained_cnn, StructuredPruningConfig(ratio=0.5, fine_tune_epochs=0), ctx)
    macs1, params1 = _macs_params(out.module, ctx.input_shape)
    # Both convs and the hidden Linear lose half their outputs; the next layers lose half their inputs.
    assert params1 < 0.6 * params0 and macs1 < 0.4 * macs0
    convs = [m for m in out.module.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16]
    bns = [m for m in out.module.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [b.num_features for b in bns] == [8, 16]  # coupled batch norms shrank with their convs
    linears = [m for m in out.module.modules() if isinstance(m, nn.Linear)]
    assert linears[-1].out_features == 10  # the classifier keeps its classes
    with torch.no_grad():
        assert tuple(out.module(ctx.data.test.x[:5]).shape) == (5, 10)
    assert any("MACs" in n and "->" in n for n in out.notes)


def test_fine_tuning_recovers_accuracy(trained_cnn: nn.Module, ctx: RunContext) -> None:
    test = ctx.data.test
    with torch.no_grad():
        base = accuracy(trained_cnn(test.x), test.y)
        raw = accuracy(
            apply_structured_pruning(trained_cnn, StructuredPruningConfig(ratio=0.5, fine_tune_epochs=0), ctx).module(
                test.x
            ),
            test.y,
        )
    tuned_model = apply_structured_pruning(
        trained_cnn, StructuredPruningConfig(ratio=0.5, fine_tune_epochs=2), ctx
    ).module
    with torch.no_grad():
        tuned = accuracy(tuned_model(test.x), test.y)
    assert tuned >= raw
    assert tuned >= base - 0.05, f"pruned+fine-tuned {tuned:.3f} vs baseline {base:.3f}"


def test_norm_choice_ranks_channels_by_their_norm(ctx: RunContext) -> None:
    # Hidden units 0..7 have tiny weights; 50 % pruning must keep exactly units 8..15.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).eval()
    with torch.no_grad():
        model[1].weight[:8] *= 1e-3
        model[1].bias[:8] *= 1e-3
        model[3].weight[:, :8] *= 1e-3
    for norm in ("l1", "l2"):
        out = apply_structured_pruning(model, StructuredPruningConfig(ratio=0.5, norm=norm, fine_tune_epochs=0), ctx)
        kept = out.module[1].weight
        assert kept.shape == (8, 64)
        assert torch.equal(kept, model[1].weight[8:]), norm
        assert torch.equal(out.module[3].weight, model[3].weight[:, 8:]), norm


@pytest.mark.parametrize("name", ["digits_cnn", "digits_mobilenet_v2", "digits_mlp", "digits_student"])
def test_works_on_the_bundled_samples(name: str, ctx: RunContext) -> None:
    from lwdash.models.samples import load_sample

    model = load_sample(name).module
    macs0, params0 = _macs_params(model, ctx.input_shape)
    out = apply_structured_pruning(model, StructuredPruningConfig(ratio=0.5, fine_tune_epochs=0), ctx)
    macs1, params1 = _macs_params(out.module, ctx.input_shape)
    assert params1 < 0.7 * params0 and macs1 < 0.7 * macs0
    with torch.no_grad():
        assert tuple(out.module(ctx.data.test.x[:3]).shape) == (3, 10)


def _rgb_data() -> Dataset:
    g = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        return Split(x=torch.rand((n, 3, 32, 32), generator=g), y=torch.randint(0, 10, (n,), generator=g))

    return Dataset(
        name="random-rgb", input_shape=(3, 32, 32), num_classes=10, train=split(8), calib=split(4), test=split(4)
    )


def _torchvision_model(name: str, x: torch.Tensor) -> nn.Module:
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None, num_classes=10)
    # Random init leaves eval-mode batch norms unnormalised (mobilenet_v2's logits come out ~1e-13):
    # estimate their statistics on random data so the logits are O(1) and a tolerance means something.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(x)
    return model.eval()


def _export_torchscript_onnx(model: nn.Module, x: torch.Tensor) -> onnx.ModelProto:
    # The TorchScript exporter: seconds instead of the dynamo exporter's tens of seconds on 2 cores.
    # The project's own exporter runs on every technique's artifact in test_contract.py.
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (x,),
            buf,
            dynamo=False,
            opset_version=18,
            input_names=["x"],
            output_names=["logits"],
            dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
        )
    return onnx.load_model_from_string(buf.getvalue())


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_torchvision_models_shrink_and_export_to_onnxruntime(name: str) -> None:
    data = _rgb_data()
    model = _torchvision_model(name, data.train.x)
    ctx = RunContext(data=data, seed=0)
    macs0, params0 = _macs_params(model, data.input_shape)
    out = apply_structured_pruning(model, StructuredPruningConfig(ratio=0.5, fine_tune_epochs=0), ctx)
    pruned = out.module.eval()
    macs1, params1 = _macs_params(pruned, data.input_shape)
    # 50 % of channels: about a quarter of the MACs and parameters remain.
    assert macs1 < 0.35 * macs0 and params1 < 0.35 * params0
    x = data.test.x
    with torch.no_grad():
        y_torch = pruned(x).numpy()
    assert y_torch.shape == (4, 10)
    assert np.abs(y_torch).max() > 1e-3  # the comparison below is not between near-zeros
    y_ort = ort_logits(_export_torchscript_onnx(copy.deepcopy(pruned), x[:2]), x)
    np.testing.assert_allclose(y_ort, y_torch, atol=1e-4, rtol=1e-4)


def test_structured_pruning_rejects_models_without_hidden_channels(ctx: RunContext) -> None:
    cfg = StructuredPruningConfig()
    with pytest.raises(ValueError, match="only Conv/Linear layer"):
        cfg.validate_for(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), (1, 8, 8))
    with pytest.raises(ValueError, match="needs Conv or Linear"):
        apply_structured_pruning(nn.Sequential(nn.Flatten()), cfg, ctx)
    for bad in (0.0, 0.95):
        with pytest.raises(ValueError, match="ratio"):
            StructuredPruningConfig(ratio=bad)
    with pytest.raises(ValueError, match="norm"):
        StructuredPruningConfig(norm="l3")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# nm_sparsity
# --------------------------------------------------------------------------------------------
def _groups(weight: torch.Tensor, m: int) -> torch.Tensor:
    """(…, m) groups of consecutive input channels, channels-last as the mask defines them."""
    w = weight.detach().movedim(1, -1)
    return w.reshape(*w.shape[:-1], w.shape[-1] // m, m)


@pytest.mark.parametrize(("n", "m"), [(2, 4), (1, 4), (4, 8)])
def test_nm_mask_keeps_the_n_largest_of_every_m(n: int, m: int) -> None:
    torch.manual_seed(0)
    for w in (torch.randn(6, 16), torch.randn(5, 16, 3, 3)):
        mask = nm_mask(w, n, m)
        assert mask.shape == w.shape and mask.dtype == torch.bool
        g_mask, g_abs = _groups(mask, m), _groups(w.abs(), m)
        assert (g_mask.sum(-1) == n).all()
        kept_min = torch.where(g_mask, g_abs, torch.inf).amin(-1)
        dropped_max = torch.where(g_mask, -torch.inf, g_abs).amax(-1)
        assert (kept_min >= dropped_max).all()


def test_nm_mask_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="not divisible by m=4"):
        nm_mask(torch.randn(4, 6), 2, 4)
    with pytest.raises(ValueError, match="1 <= n < m"):
        nm_mask(torch.randn(4, 8), 4, 4)


def test_two_four_pattern_holds_after_fine_tuning(trained_cnn: nn.Module, ctx: RunContext) -> None:
    out = apply_nm_sparsity(trained_cnn, NMSparsityConfig(n=2, m=4, fine_tune_epochs=1), ctx)
    layers = nm_eligible_layers(out.module, 4, prune_classifier=False)
    assert [type(mod).__name__ for _, mod in layers] == [
        "Conv2d",
        "Linear",
    ]  # Conv(1->16) and the classifier stay dense
    for name, mod in layers:
        nonzeros = (_groups(mod.weight, 4) != 0).sum(-1)
        assert int(nonzeros.max()) <= 2, name
        assert float((mod.weight == 0).float().mean()) >= 0.5, name
    assert NM_SPEED_NOTE in out.notes
    test = ctx.data.test
    with torch.no_grad():
        base, sparse = accuracy(trained_cnn(test.x), test.y), accuracy(out.module(test.x), test.y)
    assert sparse >= base - 0.05, f"2:4 + fine-tune {sparse:.3f} vs baseline {base:.3f}"


def test_prune_classifier_sparsifies_the_last_layer_too(trained_mlp: nn.Module, ctx: RunContext) -> None:
    out = apply_nm_sparsity(trained_mlp, NMSparsityConfig(fine_tune_epochs=0, prune_classifier=True), ctx)
    last = out.module.net[-1]
    assert int((_groups(last.weight, 4) != 0).sum(-1).max()) <= 2
    kept = apply_nm_sparsity(trained_mlp, NMSparsityConfig(fine_tune_epochs=0), ctx).module.net[-1]
    assert torch.equal(kept.weight, trained_mlp.net[-1].weight)


def test_nm_config_and_model_checks(ctx: RunContext) -> None:
    with pytest.raises(ValueError, match="n must be smaller than m"):
        NMSparsityConfig(n=4, m=4)
    with pytest.raises(ValueError, match="m must be one of"):
        NMSparsityConfig(m=5)  # type: ignore[arg-type]
    # Conv with 1 input channel and a classifier: nothing can take the pattern.
    model = nn.Sequential(nn.Conv2d(1, 6, 3), nn.Flatten(), nn.Linear(6 * 6 * 6, 10))
    with pytest.raises(ValueError, match="divisible by 4"):
        apply_nm_sparsity(model, NMSparsityConfig(), ctx)


def test_round_to_keeps_channel_counts_at_multiples() -> None:
    # Unrounded, 30 % of MobileNetV2's channels leaves odd counts (e.g. 32 -> 23) that CPU kernels run slowly.
    data = _rgb_data()
    model = _torchvision_model("mobilenet_v2", data.train.x)
    ctx = RunContext(data=data, seed=0)

    def counts(round_to: int) -> list[int]:
        cfg = StructuredPruningConfig(ratio=0.3, fine_tune_epochs=0, round_to=round_to)
        out = apply_structured_pruning(model, cfg, ctx)
        return [m.out_channels for m in out.module.modules() if isinstance(m, nn.Conv2d)]

    assert any(c % 8 for c in counts(1))
    rounded = counts(8)
    assert all(c % 8 == 0 for c in rounded), rounded


def test_a_stored_config_from_before_round_to_reads_back_unrounded() -> None:
    from lwdash.techniques import config_from_dict, config_to_dict

    stored = config_to_dict("structured_pruning", StructuredPruningConfig())
    del stored["data"]["round_to"]
    stored["version"] = 1  # as written before the knob existed
    _, cfg = config_from_dict(stored)
    assert isinstance(cfg, StructuredPruningConfig) and cfg.round_to == 1
    step = {"technique": "structured_pruning", **stored["data"]}
    _, pipe = config_from_dict({"type": "pipeline", "version": 1, "data": {"steps": [step]}})
    assert pipe.steps[0].config.round_to == 1  # type: ignore[attr-defined]
    # A partial dict of today's version (a CLI --step, a form) gets today's default.
    _, fresh = config_from_dict({"type": "structured_pruning", "version": 2, "data": {"ratio": 0.3}})
    assert isinstance(fresh, StructuredPruningConfig) and fresh.round_to == 8


def test_the_notes_count_macs_like_the_metrics_table(trained_cnn: nn.Module, digits) -> None:  # type: ignore[no-untyped-def]
    from lwdash.measure.macs import count_macs
    from lwdash.techniques import RunContext, get_technique
    from lwdash.techniques._common import export_onnx_proto
    from lwdash.techniques.structured import _fmt_count

    tech = get_technique("structured_pruning")
    out = tech.apply(trained_cnn, tech.config_type(ratio=0.5, fine_tune_epochs=0), RunContext(data=digits))
    before = count_macs(export_onnx_proto(trained_cnn, digits.input_shape))  # what the metrics table shows
    after = count_macs(export_onnx_proto(out.module, digits.input_shape))
    assert f"MACs {_fmt_count(before)} -> {_fmt_count(after)}" in out.notes[0]
