"""load_model_file: every accepted format round-trips exactly; unsafe, broken and mismatching files are refused."""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from lwdash.data import load_digits
from lwdash.models import (
    MAX_UPLOAD_BYTES,
    LoadedModel,
    ModelLoadError,
    build_architecture,
    check_upload_size,
    detect_model_format,
    load_model_file,
    load_sample,
)

BATCH = torch.export.Dim("batch")


class _CreatesFileWhenUnpickled:
    """Unpickling this runs ``open(path, "w")``: proof that a loader executed code from the file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return load_digits()


@pytest.fixture(scope="module")
def cnn() -> nn.Module:
    return load_sample("digits_cnn").module


@pytest.fixture(scope="module")
def reference(cnn: nn.Module, digits) -> torch.Tensor:  # type: ignore[no-untyped-def]
    with torch.no_grad():
        return cnn(digits.test.x)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, cnn: nn.Module) -> dict[str, Path]:
    """The digits CNN saved in every accepted format."""
    out = tmp_path_factory.mktemp("formats")
    x = torch.zeros(2, 1, 8, 8)
    paths = {
        "onnx": out / "cnn.onnx",
        "onnx_legacy": out / "cnn_opset13.onnx",
        "pt2": out / "cnn.pt2",
        "torchscript": out / "cnn_ts.pt",
        "state_dict": out / "cnn_sd.pt",
        "safetensors": out / "cnn.safetensors",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(cnn, (x,), str(paths["onnx"]), dynamo=True, external_data=False, dynamic_shapes=({0: BATCH},))
        torch.onnx.export(
            cnn,
            (x,),
            str(paths["onnx_legacy"]),
            dynamo=False,
            opset_version=13,
            input_names=["x"],
            output_names=["logits"],
            dynamic_axes={"x": {0: "batch"}},
        )
        torch.jit.save(torch.jit.trace(cnn, x), str(paths["torchscript"]))
    torch.export.save(torch.export.export(cnn, (x,), dynamic_shapes=({0: BATCH},)), str(paths["pt2"]))
    torch.save(cnn.state_dict(), paths["state_dict"])
    save_file({k: v.contiguous() for k, v in cnn.state_dict().items()}, str(paths["safetensors"]))
    assert not (out / "cnn.onnx.data").exists()
    return paths


ROUND_TRIPS = {
    "onnx": ({}, "onnx", None),
    "onnx_legacy": ({}, "onnx", None),
    "pt2": ({}, "pt2", None),
    "torchscript": ({"arch": "digits_cnn"}, "torchscript", "digits_cnn"),
    "state_dict": ({"arch": "digits_cnn"}, "state_dict", "digits_cnn"),
    "safetensors": ({"arch": "digits_cnn"}, "safetensors", "digits_cnn"),
}


@pytest.mark.parametrize("kind", list(ROUND_TRIPS))
def test_round_trip_gives_identical_predictions(kind: str, files, digits, reference) -> None:  # type: ignore[no-untyped-def]
    kwargs, source_format, arch = ROUND_TRIPS[kind]
    model = load_model_file(files[kind], **kwargs)
    assert isinstance(model, LoadedModel)
    assert model.source_format == source_format and model.arch == arch
    assert model.input_shape == (1, 8, 8) and model.num_classes == 10
    assert all(p.dtype == torch.float32 for p in model.module.parameters())
    with torch.no_grad():
        logits = model.module(digits.test.x)
        single = model.module(digits.test.x[:1])  # batch 1 works too (dynamic batch)
    assert torch.equal(logits.argmax(1), reference.argmax(1))
    torch.testing.assert_close(logits, reference, atol=1e-4, rtol=1e-4)
    assert tuple(single.shape) == (1, 10)


@pytest.mark.parametrize("kind", ["onnx", "onnx_legacy", "pt2"])
def test_loaded_graphs_can_be_exported_again(kind: str, files, digits, reference) -> None:  # type: ignore[no-untyped-def]
    # every result is re-exported (ONNX artifact, .pt2): a converted ONNX graph must survive torch.export
    module = load_model_file(files[kind]).module
    program = torch.export.export(module, (torch.zeros(2, 1, 8, 8),), dynamic_shapes=({0: BATCH},))
    with torch.no_grad():
        torch.testing.assert_close(program.module()(digits.test.x), reference, atol=1e-4, rtol=1e-4)


def test_onnx_with_shared_weights_through_identity_nodes(tmp_path: Path) -> None:
    # the TorchScript-based exporter shares equal folded-BN biases through Identity nodes
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    ).eval()
    path = tmp_path / "shared.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(2, 1, 8, 8),),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["x"],
            dynamic_axes={"x": {0: "batch"}},
        )
    assert any(n.op_type == "Identity" for n in onnx.load(str(path)).graph.node)
    loaded = load_model_file(path)
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(x), model(x), atol=1e-5, rtol=1e-5)


def test_formats_are_detected_by_content_not_suffix(files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    expected = {
        "onnx": "onnx",
        "onnx_legacy": "onnx",
        "pt2": "pt2",
        "torchscript": "torchscript",
        "state_dict": "torch_pickle",
        "safetensors": "safetensors",
    }
    for kind, fmt in expected.items():
        renamed = tmp_path / f"{kind}.bin"
        renamed.write_bytes(files[kind].read_bytes())
        assert detect_model_format(renamed) == fmt, kind
    # an ONNX file uploaded under a .pt name still loads as ONNX
    assert load_model_file(tmp_path / "onnx.bin").source_format == "onnx"


def test_safetensors_written_by_lwdash_records_its_arch(tmp_path: Path, cnn: nn.Module) -> None:
    path = tmp_path / "tagged.safetensors"
    save_file({k: v.contiguous() for k, v in cnn.state_dict().items()}, str(path), metadata={"arch": "digits_cnn"})
    assert load_model_file(path).arch == "digits_cnn"


def test_pt2_module_accepts_eval_and_stays_exact(files, digits, reference) -> None:  # type: ignore[no-untyped-def]
    module = load_model_file(files["pt2"]).module
    module.eval()  # torch's exported modules raise here by default
    with torch.no_grad():
        torch.testing.assert_close(module(digits.test.x), reference, atol=1e-5, rtol=1e-5)


def test_pt2_with_fixed_batch_is_refused(tmp_path: Path, cnn: nn.Module) -> None:
    path = tmp_path / "static.pt2"
    torch.export.save(torch.export.export(cnn, (torch.zeros(1, 1, 8, 8),)), str(path))
    with pytest.raises(ModelLoadError, match=r"fixed batch size of 1.*Dim\('batch'\)"):
        load_model_file(path)


def test_torchscript_needs_an_input_shape(files) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelLoadError) as info:
        load_model_file(files["torchscript"])
    assert "input_shape" in str(info.value) and "digits_cnn" in str(info.value)
    model = load_model_file(files["torchscript"], input_shape=(1, 8, 8))
    assert model.num_classes == 10 and model.arch is None


def test_torchscript_with_a_wrong_input_shape_fails_the_forward_check(files) -> None:  # type: ignore[no-untyped-def]
    # the CNN pools adaptively, so (1, 9, 9) would run; (3, 8, 8) cannot
    with pytest.raises(ModelLoadError, match=r"forward pass on zeros of shape \(2, 3, 8, 8\) failed"):
        load_model_file(files["torchscript"], input_shape=(3, 8, 8))


def test_state_dict_needs_an_architecture(files) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelLoadError) as info:
        load_model_file(files["state_dict"])
    msg = str(info.value)
    assert "state dict" in msg and "digits_cnn" in msg and "resnet18" in msg


def test_state_dict_for_the_wrong_architecture_names_the_mismatch(files) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelLoadError) as info:
        load_model_file(files["state_dict"], arch="digits_teacher")
    msg = str(info.value)
    assert "does not fit architecture 'digits_teacher'" in msg
    assert "shape mismatches" in msg and "features.0.0.weight" in msg
    with pytest.raises(ModelLoadError, match=r"missing keys \(fc1.weight.*unexpected keys \(features"):
        load_model_file(files["safetensors"], arch="digits_mlp")
    with pytest.raises(ModelLoadError, match="unknown architecture 'resnet9000'"):
        load_model_file(files["state_dict"], arch="resnet9000")


def test_num_classes_comes_from_the_last_linear(tmp_path: Path) -> None:
    torch.manual_seed(0)
    mlp = build_architecture("digits_mlp", num_classes=3)
    half = {k: v.half() for k, v in mlp.state_dict().items()}  # fp16 weights come back as fp32
    path = tmp_path / "mlp3.pt"
    torch.save(half, path)
    model = load_model_file(path, arch="digits_mlp")
    assert model.num_classes == 3
    assert all(p.dtype == torch.float32 for p in model.module.parameters())


def test_checkpoint_wrappers_and_dataparallel_prefixes_are_unwrapped(tmp_path: Path, cnn: nn.Module) -> None:
    path = tmp_path / "ckpt.pth"
    wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in cnn.state_dict().items()}}
    torch.save(wrapped, path)
    model = load_model_file(path, arch="digits_cnn")
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(model.module(x), cnn(x))


def test_torchvision_state_dict_with_1000_classes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "mnv3.pt"
    torch.save(build_architecture("mobilenet_v3_small", num_classes=1000).state_dict(), path)
    model = load_model_file(path, arch="mobilenet_v3_small")
    assert model.num_classes == 1000 and model.input_shape == (3, 224, 224)


def test_full_pickled_module_is_refused_unless_allowed(tmp_path: Path, cnn: nn.Module, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("LWDASH_ALLOW_PICKLE", raising=False)
    path = tmp_path / "full.pt"
    torch.save(cnn, path)
    with pytest.raises(ModelLoadError) as info:
        load_model_file(path, arch="digits_cnn")
    msg = str(info.value)
    assert "arbitrary code" in msg and "state dict" in msg and ".pt2" in msg and "ONNX" in msg
    assert "DigitsCNN" in msg  # names what the pickle references
    # the operator's opt-in, for trusted local files
    assert load_model_file(path, input_shape=(1, 8, 8), allow_pickle=True).source_format == "pickle"
    monkeypatch.setenv("LWDASH_ALLOW_PICKLE", "1")
    assert load_model_file(path, arch="digits_cnn").num_classes == 10


def test_malicious_pickle_never_runs(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("LWDASH_ALLOW_PICKLE", raising=False)
    marker = tmp_path / "pwned"
    in_torch_zip = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "payload": _CreatesFileWhenUnpickled(marker)}, in_torch_zip)
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(_CreatesFileWhenUnpickled(marker), protocol=2))
    assert not marker.exists()
    for path in (in_torch_zip, raw):
        with pytest.raises(ModelLoadError, match="arbitrary code"):
            load_model_file(path, arch="digits_cnn")
        assert not marker.exists(), f"loading {path.name} executed code from the file"


def test_random_bytes_are_refused_with_the_accepted_formats(tmp_path: Path) -> None:
    junk = np.random.default_rng(0).bytes(4096)
    for name in ("junk.bin", "junk.pt"):
        (tmp_path / name).write_bytes(junk)
        with pytest.raises(ModelLoadError, match=r"could not recognise junk.* as a model file.*accepted formats"):
            load_model_file(tmp_path / name)
    (tmp_path / "junk.onnx").write_bytes(junk)
    with pytest.raises(ModelLoadError, match=r"could not read junk\.onnx as ONNX: .*accepted formats"):
        load_model_file(tmp_path / "junk.onnx")


def test_truncated_files_are_refused(tmp_path: Path, files) -> None:  # type: ignore[no-untyped-def]
    patterns = {
        "onnx": "could not read cut_cnn.onnx as ONNX",
        "pt2": "could not read cut_cnn.pt2: .* truncated or corrupt",
        "state_dict": "could not read cut_cnn_sd.pt: .* truncated or corrupt",
        "torchscript": "could not read cut_cnn_ts.pt: .* truncated or corrupt",
    }
    for kind, pattern in patterns.items():
        data = files[kind].read_bytes()
        cut = tmp_path / f"cut_{files[kind].name}"
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(ModelLoadError, match=pattern):
            load_model_file(cut, arch="digits_cnn")


def test_onnx_with_external_data_is_refused(tmp_path: Path, files) -> None:  # type: ignore[no-untyped-def]
    model = onnx.load(str(files["onnx_legacy"]))
    path = tmp_path / "split.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location="split.onnx.data", size_threshold=0)
    assert (tmp_path / "split.onnx.data").exists()
    with pytest.raises(ModelLoadError, match=r"external-data file.*one self-contained file"):
        load_model_file(path)


def test_onnx_with_symbolic_spatial_dims_needs_input_shape(tmp_path: Path, cnn: nn.Module) -> None:
    path = tmp_path / "anysize.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            cnn,
            (torch.zeros(2, 1, 8, 8),),
            str(path),
            dynamo=False,
            opset_version=13,
            input_names=["x"],
            dynamic_axes={"x": {0: "batch", 2: "height", 3: "width"}},
        )
    with pytest.raises(ModelLoadError, match="symbolic input size in dim 2 \\('height'\\), dim 3 \\('width'\\)"):
        load_model_file(path)
    assert load_model_file(path, input_shape=(1, 8, 8)).input_shape == (1, 8, 8)
    with pytest.raises(ModelLoadError, match="declares input"):
        load_model_file(path, input_shape=(3, 8, 8))


def test_a_model_that_is_not_a_classifier_is_refused(tmp_path: Path) -> None:
    conv = nn.Conv2d(1, 4, 3).eval()  # returns feature maps, not (batch, classes) logits
    path = tmp_path / "conv.pt2"
    torch.export.save(torch.export.export(conv, (torch.zeros(2, 1, 8, 8),), dynamic_shapes=({0: BATCH},)), str(path))
    with pytest.raises(ModelLoadError, match=r"returns shape \(2, 4, 6, 6\).*\(batch, num_classes\)"):
        load_model_file(path)


def test_a_data_set_uploaded_as_a_model_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "data.npz"
    np.savez(path, x=np.zeros((10, 64)), y=np.zeros(10, dtype=np.int64))
    with pytest.raises(ModelLoadError, match=r"is a NumPy \.npz archive \(a data set\), not a model"):
        load_model_file(path)


def test_upload_size_limits(tmp_path: Path) -> None:
    assert MAX_UPLOAD_BYTES == 200 * 1024 * 1024
    check_upload_size(1)
    check_upload_size(MAX_UPLOAD_BYTES)
    with pytest.raises(ModelLoadError, match=r"200\.0 MiB"):
        check_upload_size(MAX_UPLOAD_BYTES + 1)
    with pytest.raises(ModelLoadError, match="empty"):
        check_upload_size(0)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="empty"):
        load_model_file(empty)
    with pytest.raises(ModelLoadError, match="no model file"):
        load_model_file(tmp_path / "absent.onnx")
    assert not os.path.exists(tmp_path / "absent.onnx")
