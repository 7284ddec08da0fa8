"""The Fashion-MNIST samples: their recorded accuracy is reproduced from the stored weights, and the manifest is honest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from lwdash.data import Dataset, Split
from lwdash.data.bundled import load_bundled
from lwdash.data.fashion_mnist import load_fashion_mnist
from lwdash.measure.export import export_onnx
from lwdash.measure.macs import count_macs
from lwdash.models import build_architecture, list_samples, load_sample
from lwdash.models.samples import samples_dir

FASHION = ["fashion_resnet20", "fashion_mobilenet_v2", "fashion_cnn", "fashion_vit", "fashion_student"]
DIGITS = ["digits_mlp", "digits_cnn", "digits_mobilenet_v2", "digits_teacher", "digits_student"]
QUICK_TEST_SAMPLES = 2_000
EVAL_BATCH = 500  # the batch sample_models/fashion.py measured with


@pytest.fixture(scope="module")
def quick() -> Dataset:
    return load_bundled("fashion_mnist_quick")  # the quick set the app offers


@pytest.fixture(scope="module")
def manifest() -> dict[str, dict[str, Any]]:
    entries = json.loads((samples_dir() / "manifest.json").read_text())["models"]
    return {e["name"]: e for e in entries}


def _correct(module: nn.Module, split: Split) -> int:
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(split), EVAL_BATCH):
            logits = module(split.x[start : start + EVAL_BATCH])
            correct += int((logits.argmax(dim=1) == split.y[start : start + EVAL_BATCH]).sum())
    return correct


def test_gallery_lists_the_fashion_samples_first_then_the_digits_ones() -> None:
    assert [s.name for s in list_samples()] == FASHION + DIGITS


@pytest.mark.parametrize("name", FASHION)
def test_quick_accuracy_is_reproduced_from_the_stored_weights(
    name: str, quick: Dataset, manifest: dict[str, dict[str, Any]]
) -> None:
    entry = manifest[name]
    info = {s.name: s for s in list_samples()}[name]
    model = load_sample(name)  # verifies the sha256 before loading
    assert model.arch == entry["arch"] == name and model.source_format == "sample"
    assert model.input_shape == info.input_shape == (1, 28, 28) and model.num_classes == info.num_classes == 10
    assert sum(p.numel() for p in model.module.parameters()) == info.params_count == entry["params_count"]
    assert not model.module.training and all(p.dtype == torch.float32 for p in model.module.parameters())
    assert len(quick.test) == entry["trained_with"]["quick_test_samples"] == QUICK_TEST_SAMPLES
    correct = _correct(model.module, quick.test)
    assert correct == round(entry["test_acc_quick"] * QUICK_TEST_SAMPLES), (name, correct / QUICK_TEST_SAMPLES)
    assert info.test_acc_quick == entry["test_acc_quick"] and info.dataset == "fashion_mnist"
    assert correct / QUICK_TEST_SAMPLES > 0.8  # trained: chance is 10 %


@pytest.mark.parametrize("name", FASHION)
def test_weight_file_matches_its_recorded_sha256(name: str, manifest: dict[str, dict[str, Any]]) -> None:
    path = samples_dir() / manifest[name]["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == manifest[name]["sha256"]


def test_full_test_accuracy_is_reproduced_for_the_cheaper_samples(manifest: dict[str, dict[str, Any]]) -> None:
    """The official 10,000 test images, for the three cheapest samples (~10 s; the ResNet-20 and MobileNetV2
    would add ~30 s on 2 cores, so they are checked on the quick subset only)."""
    data = load_fashion_mnist()
    assert len(data.test) == 10_000
    for name in ("fashion_cnn", "fashion_vit", "fashion_student"):
        entry = manifest[name]
        assert entry["trained_with"]["test_samples"] == 10_000
        correct = _correct(load_sample(name).module, data.test)
        assert correct == round(entry["test_acc"] * 10_000), (name, correct / 10_000)


def test_manifest_records_how_each_fashion_sample_was_trained(manifest: dict[str, dict[str, Any]]) -> None:
    for name in FASHION:
        entry, trained = manifest[name], manifest[name]["trained_with"]
        assert trained["dataset"] == "fashion_mnist" and trained["quick_dataset"] == "fashion_mnist_quick"
        assert trained["train_samples"] == 55_000 and trained["test_samples"] == 10_000
        assert trained["epochs"] >= 1 and trained["lr"] > 0 and trained["seed"] == 0
        assert trained["train_wall_s"] > 0 and "one-cycle" in trained["schedule"]
        assert isinstance(trained["torch"], str) and trained["torch"]
        assert 0.1 < entry["test_acc"] <= 1.0 and 0.1 < entry["test_acc_quick"] <= 1.0
        assert entry["exports"] == {"onnx": True, "pt2": True}
        assert entry["macs"] > 0 and entry["params_count"] > 0


def test_the_samples_span_a_range_of_sizes_and_compute(manifest: dict[str, dict[str, Any]]) -> None:
    macs = {n: manifest[n]["macs"] for n in FASHION}
    params = {n: manifest[n]["params_count"] for n in FASHION}
    assert 10e6 < macs["fashion_resnet20"] < 100e6  # tens of millions of MACs per image
    assert 1e6 < macs["fashion_cnn"] < 10e6  # a few million
    assert macs["fashion_student"] < macs["fashion_cnn"] < macs["fashion_resnet20"]
    assert params["fashion_student"] * 20 < params["fashion_resnet20"]
    vit = build_architecture("fashion_vit")
    linear = sum(m.weight.numel() for m in vit.modules() if isinstance(m, nn.Linear))
    assert linear > 0.95 * params["fashion_vit"]  # a Linear-heavy model: dynamic int8 and SVD act on it


def test_teacher_student_pair(manifest: dict[str, dict[str, Any]]) -> None:
    infos = {s.name: s for s in list_samples()}
    assert infos["fashion_resnet20"].role == "teacher" and infos["fashion_student"].role == "student"
    assert infos["fashion_resnet20"].test_acc >= infos["fashion_student"].test_acc + 0.02


def test_recorded_macs_are_those_of_the_exported_graph(tmp_path: Path, manifest: dict[str, dict[str, Any]]) -> None:
    for name in ("fashion_student", "fashion_cnn"):
        module = load_sample(name).module
        onnx_path = export_onnx(module, (1, 28, 28), tmp_path / f"{name}.onnx")
        assert count_macs(onnx_path) == manifest[name]["macs"]


def test_readme_lists_each_fashion_sample_with_its_training_time(manifest: dict[str, dict[str, Any]]) -> None:
    readme = (samples_dir() / "README.md").read_text()
    for name in FASHION:
        entry = manifest[name]
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}` |"))
        assert f"{100 * entry['test_acc']:.2f} %" in row and f"{100 * entry['test_acc_quick']:.2f} %" in row
        assert f"{entry['trained_with']['train_wall_s'] / 60:.1f} min" in row


def test_fashion_student_is_a_catalogue_student_for_28x28_teachers() -> None:
    from lwdash.techniques.distillation import DistillationConfig, build_student

    teacher = load_sample("fashion_resnet20").module
    student = build_student(teacher, "fashion_student", (1, 28, 28), 10, seed=0)
    assert sum(p.numel() for p in student.parameters()) == {s.name: s for s in list_samples()}["fashion_student"].params_count
    DistillationConfig(student="fashion_student").validate_for(teacher, (1, 28, 28))
    with pytest.raises(ValueError, match=r"fashion_student architecture takes input \(1, 28, 28\); this model takes \(1, 8, 8\)"):
        DistillationConfig(student="fashion_student").validate_for(load_sample("digits_teacher").module, (1, 8, 8))
