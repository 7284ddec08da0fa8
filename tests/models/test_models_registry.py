"""The architecture registry: explicit names, fresh builds, input shapes, clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lwdash.models import ModelLoadError, architecture_input_shape, build_architecture, list_architectures

FASHION = ["fashion_resnet20", "fashion_mobilenet_v2", "fashion_cnn", "fashion_vit", "fashion_student"]
DIGITS = ["digits_mlp", "digits_cnn", "digits_mobilenet_v2", "digits_teacher", "digits_student"]
TORCHVISION = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0"]


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_registry_lists_samples_then_every_torchvision_classifier() -> None:
    import torchvision

    every = torchvision.models.list_models(module=torchvision.models)  # classification models only
    names = list_architectures()
    assert names[:15] == FASHION + DIGITS + TORCHVISION  # the common ones first
    assert sorted(names[10:]) == sorted(every) and len(every) > 70
    assert architecture_input_shape("inception_v3") == (3, 299, 299)


def test_a_state_dict_loads_by_its_torchvision_name_with_classes_read_and_the_input_size_given(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import torchvision

    from lwdash.models import load_model_file

    torch.manual_seed(0)
    net = torchvision.models.get_model("resnet34", weights=None, num_classes=7).eval()
    path = tmp_path / "r34.pt"
    torch.save(net.state_dict(), path)
    loaded = load_model_file(path, arch="resnet34", input_shape=(3, 32, 32))
    assert (loaded.arch, loaded.num_classes, loaded.input_shape) == ("resnet34", 7, (3, 32, 32))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.module(x), net(x))
    assert load_model_file(path, arch="resnet34").input_shape == (3, 224, 224)  # not given: the usual size


@pytest.mark.parametrize("name", FASHION)
@pytest.mark.parametrize("num_classes", [10, 3])
def test_fashion_architectures_build_and_run(name: str, num_classes: int) -> None:
    model = build_architecture(name, num_classes=num_classes)
    assert not model.training
    assert architecture_input_shape(name) == (1, 28, 28)
    with torch.no_grad():
        out = model(torch.zeros(2, 1, 28, 28))
    assert tuple(out.shape) == (2, num_classes)


def test_fashion_mobilenet_keeps_a_4x4_map_before_its_head() -> None:
    model = build_architecture("fashion_mobilenet_v2")
    assert model.features[0][0].in_channels == 1
    with torch.no_grad():
        assert tuple(model.features(torch.zeros(2, 1, 28, 28)).shape[2:]) == (4, 4)


@pytest.mark.parametrize("name", DIGITS)
@pytest.mark.parametrize("num_classes", [10, 3])
def test_digits_architectures_build_and_run(name: str, num_classes: int) -> None:
    model = build_architecture(name, num_classes=num_classes)
    assert not model.training
    assert architecture_input_shape(name) == (1, 8, 8)
    with torch.no_grad():
        out = model(torch.zeros(2, 1, 8, 8))
    assert tuple(out.shape) == (2, num_classes)


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_architectures_take_num_classes(name: str) -> None:
    model = build_architecture(name, num_classes=7)
    assert architecture_input_shape(name) == (3, 224, 224)
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    assert last.out_features == 7
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_small_torchvision_model_runs_at_224() -> None:
    model = build_architecture("mobilenet_v3_small", num_classes=5)
    with torch.no_grad():
        assert tuple(model(torch.zeros(2, 3, 224, 224)).shape) == (2, 5)


def test_sample_architecture_sizes() -> None:
    sizes = {name: _params(build_architecture(name)) for name in DIGITS}
    assert sizes["digits_student"] < 5_000
    assert sizes["digits_cnn"] < 300_000
    assert 300_000 < sizes["digits_teacher"] < 800_000
    assert sizes["digits_teacher"] > 100 * sizes["digits_student"]
    cnn = build_architecture("digits_cnn")
    assert sum(isinstance(m, nn.BatchNorm2d) for m in cnn.modules()) == 3


def test_mobilenet_stem_takes_one_channel_at_stride_one() -> None:
    model = build_architecture("digits_mobilenet_v2")
    stem = model.features[0][0]
    assert isinstance(stem, nn.Conv2d)
    assert stem.in_channels == 1 and stem.stride == (1, 1)
    # width 0.5: the first inverted-residual stage is half as wide as torchvision's default
    assert model.features[1].conv[-1].num_features == 8


def test_builds_are_fresh_and_seedable() -> None:
    torch.manual_seed(0)
    a = build_architecture("digits_cnn")
    torch.manual_seed(0)
    b = build_architecture("digits_cnn")
    assert a is not b
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_unknown_architecture_lists_the_known_ones() -> None:
    with pytest.raises(ModelLoadError) as info:
        build_architecture("resnet181")
    assert "unknown architecture 'resnet181' (did you mean resnet18" in str(info.value)
    assert "digits_cnn" in str(info.value) and "any of torchvision's" in str(info.value)
    with pytest.raises(ModelLoadError, match="known: the samples' architectures"):
        architecture_input_shape("nope")
    with pytest.raises(ModelLoadError, match="num_classes"):
        build_architecture("digits_mlp", num_classes=0)
