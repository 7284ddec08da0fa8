"""The workspace under AppTest: rename, note and star a result on Compare, delete it behind a confirmation;
rename an upload's sample model on Models."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lwdash.ui.text import literal
from lwdash.workspace import SqliteStore


@pytest.fixture
def own_results(results_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    dest = tmp_path / "data"
    shutil.copytree(results_dir, dest)
    monkeypatch.setenv("LWDASH_DATA_DIR", str(dest))
    monkeypatch.setenv("LWDASH_NO_WORKER", "1")
    return dest


def _shown_result(at) -> str:  # type: ignore[no-untyped-def]
    (key,) = [t.key for t in at.text_input if t.key and t.key.startswith("workspace.result.name.")]
    return key.rsplit(".", 1)[1]


def test_a_result_is_renamed_noted_starred_then_deleted_after_a_confirmation(own_results: Path, app) -> None:  # type: ignore[no-untyped-def]
    store = SqliteStore(own_results)
    at = app("pages/compare.py")
    assert not at.exception
    rid = _shown_result(at)
    given = store.get_result(rid).label
    at.text_input(key=f"workspace.result.name.{rid}").set_value("ship candidate")
    at.text_area(key=f"workspace.result.note.{rid}").set_value("Half the size, same accuracy.")
    at.checkbox(key=f"workspace.result.star.{rid}").check()
    at.button(key=f"workspace.result.save.{rid}").click().run()
    assert not at.exception
    assert any(s.value == "★ ship candidate" for s in at.subheader)
    assert any(c.value == f"Renamed from {literal(given)}" for c in at.caption)
    assert any("Half the size, same accuracy." in m.value for m in at.markdown)
    table = at.dataframe[0].value
    assert table.set_index("id").loc[rid, "★"] == "★" and table.set_index("id").loc[rid, "result"] == "ship candidate"
    rec = store.get_result(rid)
    assert (rec.label, rec.note, rec.starred) == ("ship candidate", "Half the size, same accuracy.", True)

    delete = at.button(key=f"workspace.result.delete.{rid}")
    assert delete.disabled  # nothing is deleted without the confirmation
    at.checkbox(key=f"workspace.result.confirm.{rid}").check().run()
    at.button(key=f"workspace.result.delete.{rid}").click().run()
    assert not at.exception
    assert rid not in {r.id for r in store.list_results()} and not rec.artifact_dir.exists()
    assert len(at.dataframe[0].value) == 1  # the other result is still there


def test_a_sample_is_renamed_on_models_and_cannot_be_deleted(own_results: Path, app) -> None:  # type: ignore[no-untyped-def]
    at = app()
    at.button(key="models.pick.sample/digits_mlp").click().run()
    at.text_input(key="workspace.model.name.sample/digits_mlp").set_value("Our MLP")
    at.button(key="workspace.model.save.sample/digits_mlp").click().run()
    assert not at.exception
    assert any(s.value == "Our MLP" for s in at.subheader)
    assert not [b for b in at.button if b.key == "workspace.model.delete.sample/digits_mlp"]
    assert SqliteStore(own_results).get_model("sample/digits_mlp").title == "Our MLP"
