"""Every file of the hostile corpus, through the store's real import path.

For each file: a ModelLoadError (models) or DataError (data sets) and never another exception
type; a message naming the user's file, the problem and what is accepted; no code from the file
ran (the payloads' marker file never appears); nothing left behind in the data directory; and the
store still serves the models it held before. A sanity test runs the payloads on purpose in a
child process to prove they are live, so the marker checks cannot pass vacuously.
"""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lwdash.data import DataError
from lwdash.models.base import ModelLoadError
from lwdash.workspace import SqliteStore

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
MARKER_ENV = "LWDASH_HOSTILE_MARKER"
_DB_FILES = re.compile(r"lwdash\.sqlite3(-wal|-shm|-journal)?$")
_MODEL_ACCEPTS = r"accepted (formats|architectures)"


@dataclass(frozen=True)
class Case:
    """What one corpus file must produce."""

    problem: str  # regex: the problem named in the message
    arch: str | None = None  # for model uploads that need an architecture
    input_shape: tuple[int, ...] | None = None
    accepts: str = "accepted"  # regex: the message says what is accepted
    extra: tuple[str, ...] = field(default_factory=tuple)


MODEL_CASES: dict[str, Case] = {
    "random_bytes.onnx": Case(r"could not read random_bytes\.onnx as ONNX"),
    "random_bytes.pt2": Case(r"could not recognise random_bytes\.pt2 as a model file"),
    "random_bytes.pt": Case(r"could not recognise random_bytes\.pt as a model file"),
    "random_bytes.ts": Case(r"could not recognise random_bytes\.ts as a model file"),
    "random_bytes.safetensors": Case(r"could not recognise random_bytes\.safetensors as a model file"),
    "empty.onnx": Case(r"empty\.onnx is empty \(0 bytes\)"),
    "truncated.onnx": Case(r"could not read truncated\.onnx as ONNX"),
    "missing_initializer.onnx": Case(r"not valid: .*input 'W'"),
    "unknown_op.onnx": Case(r"No Op registered for FrobnicateTensor"),
    "custom_domain_op.onnx": Case(r"onnx2torch cannot convert it.*Frobnicate", accepts=r"upload a torch\.export"),
    "pickle_exec.pt": Case(r"pickled Python object.*would run arbitrary code", accepts=r"Upload the state dict"),
    "pickle_exec_protocol0.pt": Case(r"pickled Python object \(it references exec\)", accepts=r"Upload the state dict"),
    "pickle_exec_torch_save.pth": Case(r"pickled Python object \(it references exec\)", accepts=r"Upload the state dict"),
    "pt2_pickled_sample_inputs.pt2": Case(r"refused: its sample inputs .* pickled objects that are not tensors"),
    "pt2_sympy_code.pt2": Case(r"refused: a symbolic shape expression holds 'exec'"),
    "pt2_python_call_target.pt2": Case(r"refused: its graph calls 'torch\.os\.system', which is not a torch operator"),
    "pt2_not_an_export.pt2": Case(r"zip archive but not TorchScript, a torch\.export \.pt2"),
    "truncated_export.pt2": Case(r"archive is truncated or corrupt"),
    "state_dict_wrong_arch.pt": Case(
        r"does not fit architecture 'digits_mlp': 6 missing keys .* unexpected keys", arch="digits_mlp",
        accepts=_MODEL_ACCEPTS,
    ),
    "torchscript_reads_host_file.ts": Case(
        r"refused: its TorchScript calls aten::from_file, which reads or writes files", input_shape=(1, 8, 8)
    ),
}

DATA_CASES: dict[str, Case] = {
    "empty.npz": Case(r"empty\.npz is empty \(0 bytes\)", accepts=r"accepted: \.npz, \.zip"),
    "random_bytes.npz": Case(r"not an \.npz archive"),
    "wrong_shape.npz": Case(r"x has shape \(30,\)"),
    "wrong_dtype_strings.npz": Case(r"x has dtype <U\d+, which is not numeric"),
    "wrong_dtype_object_pickle.npz": Case(r"'x' is an object \(pickled\) array, which is never loaded"),
    "nan_values.npz": Case(r"x holds 1 NaN or infinite values"),
    "mismatched_lengths.npz": Case(r"x has 30 samples but y has 20 labels"),
    "labels_out_of_range.npz": Case(r"y holds label 9, outside \[0, 5\)"),
    "labels_negative.npz": Case(r"y holds negative labels \(min -1\)"),
    "forged_array_header.npz": Case(r"declares shape \(1000000000000,\).*holds only \d+ bytes"),
    "zip_bomb_ratio.zip": Case(r"member 'cat/bomb\.png' expands [\d,]+x .*zip bomb guard"),
    "zip_bomb_overlap.zip": Case(r"members declare 12800\.0 MiB uncompressed, over the limit of 1024\.0 MiB"),
    "path_traversal_dotdot.zip": Case(r"member '\.\./\.\./outside\.png' could write outside .*path traversal"),
    "path_traversal_absolute.zip": Case(r"member '/tmp/outside\.png' could write outside .*absolute path"),
    "symlink_member.zip": Case(r"member 'cat/passwd\.png' is a symbolic link"),
    "not_an_image.zip": Case(r"'cat/notes\.png' is not a PNG or JPEG image"),
    "image_decompression_bomb.zip": Case(r"'dog/huge\.png' declares more pixels than .*decompression-bomb"),
    "image_sizes_differ.zip": Case(r"images have different sizes \(8x8 .* 16x16 .*select a model first"),
    "images_without_class_folder.zip": Case(r"'000\.png' is at the top level; every image must sit in its class"),
}


def _corpus(kind: str) -> list[str]:
    return sorted(p.name for p in (CORPUS / kind).iterdir())


def _tree(store: SqliteStore) -> set[str]:
    """Every file under the data dir except the database itself (whose pages change on reads)."""
    return {str(p.relative_to(store.data_dir)) for p in store.data_dir.rglob("*") if p.is_file() and not _DB_FILES.search(p.name)}


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqliteStore, str, nn.Module, bytes]]:
    """A store that already holds one uploaded model (a real torch.export program) before the corpus arrives."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).eval()
    program = torch.export.export(model, (torch.randn(2, 1, 8, 8),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    buf = io.BytesIO()
    torch.export.save(program, buf)
    store = SqliteStore(tmp_path_factory.mktemp("hostile") / "data")
    rec = store.import_model("kept.pt2", buf.getvalue())
    yield store, rec.id, model, rec.path.read_bytes()
    store.close()


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "code-ran.marker"
    monkeypatch.setenv(MARKER_ENV, str(path))
    return path


def _check_refusal(message: str, filename: str, case: Case, store: SqliteStore) -> None:
    assert filename in message, f"the message does not name the user's file: {message}"
    assert "upload-" not in message and str(store.tmp_dir) not in message, f"the message names a temp file: {message}"
    assert re.search(case.problem, message, re.S), f"problem not named as expected ({case.problem!r}): {message}"
    assert re.search(case.accepts, message, re.S | re.I), f"what is accepted is not said: {message}"


def _check_store_intact(store: SqliteStore, kept_id: str, model: nn.Module, kept_bytes: bytes, before: set[str]) -> None:
    assert _tree(store) == before, "the import left files behind (or removed some)"
    assert list(store.tmp_dir.iterdir()) == []
    uploads = [m.id for m in store.list_models() if m.kind == "upload"]
    assert uploads == [kept_id]
    assert [d.id for d in store.list_datasets() if d.kind == "upload"] == []
    rec = store.get_model(kept_id)
    assert rec.path.read_bytes() == kept_bytes
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(store.load_model(kept_id).module(x), model(x), atol=1e-5)


def test_every_corpus_file_has_an_expectation() -> None:
    assert _corpus("models") == sorted(MODEL_CASES)
    assert _corpus("data") == sorted(DATA_CASES)
    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    assert total < 1024 * 1024, f"the committed corpus is {total:,} bytes"


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on the protocol-4 pickle
@pytest.mark.parametrize("filename", sorted(MODEL_CASES))
def test_hostile_model_upload_is_refused_cleanly(filename: str, held, marker: Path) -> None:  # type: ignore[no-untyped-def]
    store, kept_id, model, kept_bytes = held
    case = MODEL_CASES[filename]
    before = _tree(store)
    with pytest.raises(Exception) as info:
        store.import_model(filename, (CORPUS / "models" / filename).read_bytes(), arch=case.arch,
                           input_shape=case.input_shape)
    assert type(info.value) is ModelLoadError, f"{type(info.value).__name__}: {info.value}"
    _check_refusal(str(info.value), filename, case, store)
    assert not marker.exists(), "code from the uploaded file ran"
    _check_store_intact(store, kept_id, model, kept_bytes, before)


@pytest.mark.parametrize("filename", sorted(DATA_CASES))
def test_hostile_data_upload_is_refused_cleanly(filename: str, held, marker: Path) -> None:  # type: ignore[no-untyped-def]
    store, kept_id, model, kept_bytes = held
    case = DATA_CASES[filename]
    before = _tree(store)
    with pytest.raises(Exception) as info:
        store.import_dataset(filename, (CORPUS / "data" / filename).read_bytes(), input_shape=case.input_shape)
    assert type(info.value) is DataError, f"{type(info.value).__name__}: {info.value}"
    _check_refusal(str(info.value), filename, case, store)
    assert not marker.exists(), "code from the uploaded file ran"
    _check_store_intact(store, kept_id, model, kept_bytes, before)


_LIVE_PAYLOADS = """
import os, pickle, sys, numpy as np, torch
corpus, out = sys.argv[1], sys.argv[2]
def attempt(name, load):
    os.environ["LWDASH_HOSTILE_MARKER"] = os.path.join(out, name + ".marker")
    try:
        load(os.path.join(corpus, name))
    except Exception:
        pass  # the payload runs during loading; what happens after does not matter
attempt("models/pickle_exec.pt", lambda p: pickle.load(open(p, "rb")))
attempt("models/pickle_exec_protocol0.pt", lambda p: pickle.load(open(p, "rb")))
attempt("models/pickle_exec_torch_save.pth", lambda p: torch.load(p, weights_only=False))
attempt("models/pt2_pickled_sample_inputs.pt2", torch.export.load)
attempt("models/pt2_sympy_code.pt2", torch.export.load)
attempt("data/wrong_dtype_object_pickle.npz", lambda p: np.load(p, allow_pickle=True)["x"])
"""
_LIVE = (
    "models/pickle_exec.pt", "models/pickle_exec_protocol0.pt", "models/pickle_exec_torch_save.pth",
    "models/pt2_pickled_sample_inputs.pt2", "models/pt2_sympy_code.pt2", "data/wrong_dtype_object_pickle.npz",
)


def test_the_code_payloads_are_live_when_loaded_naively(tmp_path: Path) -> None:
    """Loading the payload files the naive way (plain pickle, weights_only=False, torch.export.load) runs them."""
    for sub in ("models", "data"):
        (tmp_path / sub).mkdir()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    subprocess.run([sys.executable, "-c", _LIVE_PAYLOADS, str(CORPUS), str(tmp_path)], check=True, env=env,
                   capture_output=True, timeout=300)
    ran = sorted(name for name in _LIVE if (tmp_path / f"{name}.marker").exists())
    assert ran == sorted(_LIVE)


def test_an_upload_over_the_limit_is_refused_before_it_is_read(tmp_path: Path, held, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A sparse file one byte over the default 200 MiB limit; then a 1 MiB limit set by LWDASH_MAX_UPLOAD_MB."""
    from lwdash.models import MAX_UPLOAD_BYTES, load_model_file

    store, kept_id, model, kept_bytes = held
    monkeypatch.delenv("LWDASH_MAX_UPLOAD_MB", raising=False)
    big = tmp_path / "oversize.onnx"
    with big.open("wb") as fh:
        fh.truncate(MAX_UPLOAD_BYTES + 1)  # sparse: no disk blocks written
    with pytest.raises(ModelLoadError, match=r"oversize\.onnx is 200\.0 MiB \(209,715,201 bytes\); the upload limit "
                       r"is 200\.0 MiB \(209,715,200 bytes"):
        load_model_file(big)  # checks the size from stat() before reading anything
    before = _tree(store)
    data = big.read_bytes()
    with pytest.raises(ModelLoadError, match=r"oversize\.onnx is 200\.0 MiB .* upload limit is 200\.0 MiB"):
        store.import_model("oversize.onnx", data)
    with pytest.raises(DataError, match=r"oversize\.npz is 200\.0 MiB .* upload limit is 200\.0 MiB"):
        store.import_dataset("oversize.npz", data)
    del data
    monkeypatch.setenv("LWDASH_MAX_UPLOAD_MB", "1")
    small = b"\0" * (2**20 + 1)
    with pytest.raises(ModelLoadError, match=r"1\.0 MiB \(1,048,577 bytes\); the upload limit is 1\.0 MiB.*"
                       r"LWDASH_MAX_UPLOAD_MB"):
        store.import_model("a.pt2", small)
    with pytest.raises(DataError, match=r"the upload limit is 1\.0 MiB"):
        store.import_dataset("a.zip", small)
    _check_store_intact(store, kept_id, model, kept_bytes, before)
    monkeypatch.setenv("LWDASH_MAX_UPLOAD_MB", "lots")
    with pytest.raises(ValueError, match=r"LWDASH_MAX_UPLOAD_MB must be a positive number of MiB"):
        store.import_model("a.pt2", b"x")


def _png(seed: int) -> bytes:
    from PIL import Image

    arr = np.random.default_rng(seed).integers(0, 256, (8, 8), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, mode="L").save(buf, format="PNG")
    return buf.getvalue()


def test_stored_names_never_come_from_user_input(tmp_path: Path) -> None:
    import zipfile

    store = SqliteStore(tmp_path / "data")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()
    program = torch.export.export(model, (torch.randn(2, 1, 8, 8),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    buf = io.BytesIO()
    torch.export.save(program, buf)
    rec = store.import_model("../../../etc/evil name;rm -rf.pt2", buf.getvalue())
    npz = io.BytesIO()
    np.savez(npz, x=np.random.default_rng(0).random((20, 1, 8, 8)).astype(np.float32), y=np.arange(20) % 2)
    ds = store.import_dataset("/etc/evil\x00npz\n.npz", npz.getvalue())
    folder = io.BytesIO()
    with zipfile.ZipFile(folder, "w") as zf:
        for i in range(12):
            zf.writestr(f"evil class {i % 2}/evil {i}.png", _png(i))
    images = store.import_dataset("C:\\evil\\images.zip", folder.getvalue(), input_shape=(1, 8, 8))

    assert rec.name == "evil name;rm -rf.pt2" and ds.name == "evilnpz.npz"  # display metadata only
    assert images.name == "images.zip" and images.num_classes == 2 and images.samples_count == 12
    for stored, folder_dir, suffix in ((rec.path, store.models_dir, ".pt2"), (ds.path, store.datasets_dir, ".npz"),
                                       (images.path, store.datasets_dir, ".npz")):
        assert stored is not None and stored.parent == folder_dir
        assert re.fullmatch(r"[0-9a-f]{64}" + re.escape(suffix), stored.name), stored.name
    names = [p.name for p in store.data_dir.rglob("*")]
    assert not [n for n in names if "evil" in n or "etc" in n], names
    assert list(store.tmp_dir.iterdir()) == []
