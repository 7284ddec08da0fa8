"""Hostile uploads through the real Models page (AppTest): an error is shown, the page keeps working, no code runs."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lwdash.workspace import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LWDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LWDASH_NO_WORKER", "1")
    return tmp_path / "data"


def test_hostile_uploads_on_the_models_page_show_errors_and_the_page_keeps_working(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "code-ran.marker"
    monkeypatch.setenv("LWDASH_HOSTILE_MARKER", str(marker))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception

    uploads = [
        ("models.upload", "pickle_exec_torch_save.pth", "models", r"pickled Python object \(it references exec\)"),
        ("models.upload", "pt2_sympy_code.pt2", "models", r"symbolic shape expression holds 'exec'"),
        ("models.data_upload", "path_traversal_dotdot.zip", "data", r"could write outside its folder"),
        ("models.data_upload", "zip_bomb_overlap.zip", "data", r"zip bomb guard"),
    ]
    for i, (key, name, folder, problem) in enumerate(uploads):
        widget = at.file_uploader(key=key)
        if widget.value is not None:
            widget = widget.clear()
        widget.upload(name, (CORPUS / folder / name).read_bytes()).run()
        assert not at.exception, f"{name}: {at.exception}"
        # one error per uploader that holds a refused file (the other uploader may still show its own)
        shown = [re.sub(r"\\(.)", r"\1", e.value) for e in at.error]  # as a reader sees the escaped Markdown
        errors = [e for e in shown if e.startswith(f"{name} was not imported.")]
        assert len(errors) == 1 and len(at.error) <= 2, [e.value for e in at.error]
        assert name in errors[0][len(f"{name} was not imported.") :], errors[0]  # the library's message names it
        assert re.search(problem, errors[0]), errors[0]
        assert "upload-" not in errors[0]
        # the page keeps working: the gallery renders and a sample can still be selected
        pick = ("sample/digits_cnn", "sample/digits_mlp")[i % 2]
        at.button(key=f"models.pick.{pick}").click().run()
        assert not at.exception and at.session_state["sel.model_id"] == pick
        assert at.subheader[-1].value  # the selected model's summary renders

    assert not marker.exists(), "code from an uploaded file ran"
    store = SqliteStore(data_dir)
    assert [m for m in store.list_models() if m.kind == "upload"] == []
    assert [d.id for d in store.list_datasets() if d.kind == "upload"] == []
    assert list(store.tmp_dir.iterdir()) == [] and list(store.models_dir.iterdir()) == []
    assert list(store.datasets_dir.iterdir()) == []
