"""SqliteStore uploads: models and data sets are validated before they are kept; bad files leave nothing."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lwdash.data import DataError
from lwdash.data.bundled import bundled_names
from lwdash.models.base import ModelLoadError
from lwdash.store import NotFoundError
from lwdash.workspace import SqliteStore


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "data")


@pytest.fixture(scope="module")
def tiny_pt2() -> tuple[bytes, nn.Module]:
    """A real torch.export program: (B, 1, 8, 8) -> (B, 10)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).eval()
    ep = torch.export.export(model, (torch.randn(2, 1, 8, 8),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    return buf.getvalue(), model


def _files(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if p.is_file())


def test_import_model_happy_path_and_dedup(store: SqliteStore, tiny_pt2: tuple[bytes, nn.Module]) -> None:
    data, model = tiny_pt2
    rev0 = store.revision("models")
    rec = store.import_model("../../somewhere/My Model.pt2", data)
    assert rec.id.startswith("upload/") and len(rec.id) == len("upload/") + 16
    assert rec.kind == "upload" and rec.source_format == "pt2"
    assert rec.input_shape == (1, 8, 8) and rec.num_classes == 10
    assert rec.name == "My Model.pt2"  # display only
    assert rec.path.parent == store.models_dir and rec.path.suffix == ".pt2"
    assert "My Model" not in rec.path.name  # file names never come from user input
    assert rec.size_bytes == len(data) and rec.path.read_bytes() == data
    assert store.revision("models") > rev0

    again = store.import_model("copy.pt2", data)
    assert again.id == rec.id and len(_files(store.models_dir)) == 1
    assert [m.id for m in store.list_models() if m.kind == "upload"] == [rec.id]

    loaded = store.load_model(rec.id)
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(loaded.module(x), model(x), atol=1e-5)

    store.delete_model(rec.id)
    assert _files(store.models_dir) == []
    with pytest.raises(NotFoundError):
        store.get_model(rec.id)


def test_corrupt_upload_leaves_no_file(store: SqliteStore) -> None:
    with pytest.raises(ModelLoadError):
        store.import_model("model.onnx", b"\x00this is not an onnx file" * 10)
    with pytest.raises(ModelLoadError):
        store.import_model("model.pt2", b"PK\x03\x04 broken zip")
    assert _files(store.models_dir) == [] and _files(store.tmp_dir) == []
    assert [m for m in store.list_models() if m.kind == "upload"] == []


def test_upload_limits_and_extensions(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelLoadError, match=r"unsupported extension.*\.onnx"):
        store.import_model("model.exe", b"MZ....")
    with pytest.raises(ModelLoadError, match="empty"):
        store.import_model("model.onnx", b"")
    monkeypatch.setenv("LWDASH_MAX_UPLOAD_MB", str(100 / 2**20))  # 100 bytes
    with pytest.raises(ModelLoadError, match="upload limit"):
        store.import_model("model.onnx", b"x" * 101)
    assert _files(store.models_dir) == [] and _files(store.tmp_dir) == []


def test_samples_are_listed_not_copied(store: SqliteStore) -> None:
    models = store.list_models()
    samples = [m for m in models if m.kind == "sample"]
    assert samples and all(m.id == f"sample/{m.name}" for m in samples)
    assert store.get_model(samples[0].id) == samples[0]
    assert _files(store.models_dir) == []
    with pytest.raises(ValueError, match="bundled sample"):
        store.delete_model(samples[0].id)
    with pytest.raises(NotFoundError, match="no sample model"):
        store.get_model("sample/nope")


def _npz(x: np.ndarray, y: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, x=x, y=y)
    return buf.getvalue()


def test_import_dataset_validates_and_resolves(store: SqliteStore) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((100, 1, 8, 8), dtype=np.float32)
    y = np.arange(100) % 10
    rec = store.import_dataset("eval.npz", _npz(x, y))
    assert rec.id.startswith("dataset/") and rec.samples_count == 100
    assert rec.input_shape == (1, 8, 8) and rec.num_classes == 10
    assert [d.id for d in store.list_datasets()] == [*bundled_names(), rec.id]  # bundled sets first
    ds = store.resolve_data(rec.id)
    assert len(ds.train) + len(ds.calib) + len(ds.test) == 100 and ds.input_shape == (1, 8, 8)
    assert store.import_dataset("again.npz", _npz(x, y)).id == rec.id
    assert store.resolve_data("digits").input_shape == (1, 8, 8)

    with pytest.raises(DataError):
        store.import_dataset("bad.npz", _npz(x, y[:10]))  # label count does not match
    with pytest.raises(DataError, match="unsupported extension"):
        store.import_dataset("data.csv", b"a,b\n1,2\n")
    with pytest.raises(DataError, match="digits"):
        store.resolve_data("dataset/0000")
    assert len(_files(store.datasets_dir)) == 1 and _files(store.tmp_dir) == []
