"""A torch.export program (.pt2) gets real layers back, so it takes the same techniques as the same model
uploaded as a state dict: structured pruning included (torchvision architectures at 3x32x32)."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from lwdash.data import Dataset, Split
from lwdash.measure.macs import count_macs
from lwdash.models import load_model_file
from lwdash.techniques import RunContext, get_technique
from lwdash.techniques._common import export_onnx_proto, weight_layers

SHAPE = (3, 32, 32)


def _save_pt2(module: nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ep = torch.export.export(module.eval(), (torch.randn(2, *SHAPE),),
                                 dynamic_shapes=({0: torch.export.Dim("batch")},))
        torch.export.save(ep, str(path))
    return path


def _net(arch: str, **kw: object) -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.get_model(arch, weights=None, num_classes=10, **kw).eval()


def _random_data() -> Dataset:
    g = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        return Split(torch.randn(n, *SHAPE, generator=g), torch.randint(0, 10, (n,), generator=g))

    return Dataset("random", SHAPE, 10, split(64), split(32), split(32))


def _kinds(module: nn.Module) -> list[str]:
    return sorted(type(m).__name__ for _, m in weight_layers(module))


@pytest.mark.parametrize(("arch", "kw"), [("resnet18", {}), ("mobilenet_v2", {"width_mult": 0.25})])
def test_a_pt2_program_prunes_like_the_module_it_was_exported_from(arch: str, kw: dict, tmp_path: Path) -> None:
    eager = _net(arch, **kw)
    loaded = load_model_file(_save_pt2(eager, tmp_path / f"{arch}.pt2"))
    assert loaded.source_format == "pt2" and loaded.input_shape == SHAPE
    assert _kinds(loaded.module) == _kinds(eager)  # every Conv and Linear is a layer module again
    assert sum(isinstance(m, nn.BatchNorm2d) for m in loaded.module.modules()) == sum(
        isinstance(m, nn.BatchNorm2d) for m in eager.modules())
    x = torch.randn(5, *SHAPE)
    with torch.no_grad():
        assert torch.equal(loaded.module(x), eager(x))  # the same kernels on the same weights

    tech = get_technique("structured_pruning")
    cfg = tech.config_type(ratio=0.5, fine_tune_epochs=0)
    ctx = RunContext(data=_random_data())
    from_pt2 = tech.apply(loaded.module, cfg, ctx).module
    from_eager = tech.apply(eager, cfg, ctx).module
    macs = {k: count_macs(export_onnx_proto(m, SHAPE)) for k, m in
            (("base", eager), ("pt2", from_pt2), ("eager", from_eager))}
    assert macs["pt2"] == macs["eager"] < macs["base"] / 2  # the same channels removed either way
    with torch.no_grad():
        assert from_pt2(x).shape == (5, 10)


def test_train_and_eval_switch_batch_norm_of_a_rebuilt_program(tmp_path: Path) -> None:
    eager = _net("resnet18")
    module = load_model_file(_save_pt2(eager, tmp_path / "r.pt2")).module
    x = torch.randn(8, *SHAPE)
    module.train()
    eager.train()
    with torch.no_grad():
        assert torch.allclose(module(x), eager(x), atol=1e-5)  # batch statistics, like the original in train mode
    module.eval()
    eager.eval()
    with torch.no_grad():
        assert torch.equal(module(x), eager(x))


def test_baked_in_shapes_become_relative_so_channel_shuffle_survives(tmp_path: Path) -> None:
    eager = _net("shufflenet_v2_x0_5")  # view(x, [B, 2, C/2, H, W]) constants in the exported graph
    module = load_model_file(_save_pt2(eager, tmp_path / "s.pt2")).module
    assert _kinds(module) == _kinds(eager)
    x = torch.randn(3, *SHAPE)
    with torch.no_grad():
        assert torch.equal(module(x), eager(x))
