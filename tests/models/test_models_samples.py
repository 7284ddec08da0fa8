"""The bundled samples: manifest, trained weights, measured accuracy, and clear errors for broken files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from lwdash.data import load_digits
from lwdash.models import REBUILD_COMMAND, ModelLoadError, SampleInfo, list_samples, load_sample
from lwdash.models.samples import samples_dir

SAMPLES = ["digits_mlp", "digits_cnn", "digits_mobilenet_v2", "digits_teacher", "digits_student"]
FASHION = ["fashion_resnet20", "fashion_mobilenet_v2", "fashion_cnn", "fashion_vit", "fashion_student"]


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return load_digits()


def test_manifest_lists_every_sample_with_its_file() -> None:
    infos = list_samples()
    assert [s.name for s in infos] == FASHION + SAMPLES  # Fashion-MNIST first: the gallery's default
    for info in infos:
        assert isinstance(info, SampleInfo)
        assert info.path.is_file()
        digits = info.name in SAMPLES
        assert info.input_shape == ((1, 8, 8) if digits else (1, 28, 28)) and info.num_classes == 10
        assert info.dataset == ("digits" if digits else "fashion_mnist")
        assert 0.0 < info.test_acc <= 1.0
        assert info.title and info.description
    roles = {s.name: s.role for s in infos}
    assert roles["digits_teacher"] == "teacher" and roles["digits_student"] == "student"
    total_bytes = sum(s.path.stat().st_size for s in infos)
    assert total_bytes < 20 * 1024 * 1024


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_loads_and_matches_its_manifest_accuracy(name: str, digits) -> None:  # type: ignore[no-untyped-def]
    info = {s.name: s for s in list_samples()}[name]
    model = load_sample(name)
    assert model.source_format == "sample" and model.arch == info.arch
    assert model.input_shape == info.input_shape and model.num_classes == info.num_classes
    assert not model.module.training
    assert all(p.dtype == torch.float32 for p in model.module.parameters())
    assert sum(p.numel() for p in model.module.parameters()) == info.params_count
    with torch.no_grad():
        acc = (model.module(digits.test.x).argmax(1) == digits.test.y).float().mean().item()
    assert abs(acc - info.test_acc) <= 0.005, (acc, info.test_acc)
    assert acc > 0.85  # trained, far above the 10 % of chance


def test_teacher_is_clearly_better_than_the_student_alone() -> None:
    acc = {s.name: s.test_acc for s in list_samples()}
    assert acc["digits_teacher"] >= acc["digits_student"] + 0.02


def test_readme_is_generated_from_the_manifest() -> None:
    readme = (samples_dir() / "README.md").read_text()
    assert REBUILD_COMMAND in readme
    for info in list_samples():
        assert f"`{info.name}`" in readme
        assert f"{100 * info.test_acc:.2f} %" in readme


@pytest.fixture
def copied_samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "samples"
    folder.mkdir()
    shutil.copy(samples_dir() / "manifest.json", folder / "manifest.json")
    shutil.copy(samples_dir() / "digits_student.safetensors", folder / "digits_student.safetensors")
    monkeypatch.setenv("LWDASH_SAMPLES_DIR", str(folder))
    return folder


def test_copied_samples_dir_is_used(copied_samples: Path) -> None:
    assert load_sample("digits_student").num_classes == 10


def test_missing_weight_file_names_the_rebuild_command(copied_samples: Path) -> None:
    with pytest.raises(ModelLoadError) as info:
        load_sample("digits_cnn")  # not copied
    assert "missing" in str(info.value) and REBUILD_COMMAND in str(info.value)


def test_corrupt_weight_file_is_caught_by_its_checksum(copied_samples: Path) -> None:
    path = copied_samples / "digits_student.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # flip one bit of the last weight
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError) as info:
        load_sample("digits_student")
    assert "corrupt" in str(info.value) and "sha256" in str(info.value) and REBUILD_COMMAND in str(info.value)


def test_missing_or_broken_manifest(copied_samples: Path) -> None:
    manifest = copied_samples / "manifest.json"
    manifest.write_text("{not json")
    with pytest.raises(ModelLoadError, match="unreadable.*" + REBUILD_COMMAND.replace(".", r"\.")):
        list_samples()
    manifest.unlink()
    with pytest.raises(ModelLoadError, match="missing"):
        list_samples()


def test_unknown_sample_lists_the_known_ones() -> None:
    with pytest.raises(ModelLoadError) as info:
        load_sample("digits_transformer")
    assert "digits_cnn" in str(info.value) and "digits_teacher" in str(info.value)


def test_manifest_records_how_each_sample_was_trained() -> None:
    entries = json.loads((samples_dir() / "manifest.json").read_text())["models"]
    for e in entries:
        assert len(e["sha256"]) == 64
        trained = e["trained_with"]
        assert trained["seed"] == 0 and trained["epochs"] >= 1 and trained["lr"] > 0
        assert isinstance(trained["torch"], str) and trained["torch"]
