"""The workspace's names, notes and stars: laid over models and results, on both backends; gone with what they annotate."""
from __future__ import annotations

from pathlib import Path

import pytest
from _store_fakes import fake_output, spec

from lwdash.analysis.frame import load_results_frame
from lwdash.annotations import MAX_NOTE_CHARS, with_note
from lwdash.report import build_report_html
from lwdash.workspace import MemoryStore, SqliteStore, Store


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return SqliteStore(tmp_path / "data") if request.param == "sqlite" else MemoryStore(tmp_path / "data")


def _result(store: Store, amount: float = 0.5) -> str:
    job_id = store.submit(spec(amount))
    store.claim("w")
    out = store.scratch_dir("job-")
    rid = store.save_result(job_id, spec(amount), fake_output(out), out)
    assert store.finish(job_id, rid)
    return rid


def test_a_renamed_starred_annotated_result_shows_so_everywhere(store: Store) -> None:
    rid, other = _result(store), _result(store, 0.7)
    given = store.get_result(rid).label
    rev = store.revision("annotations")
    store.annotate("result", rid, name="  ship   this one ", note="Best trade-off so far.\nTry 4 bits next.",
                   starred=True)
    assert store.revision("annotations") > rev
    rec = store.get_result(rid)
    assert (rec.label, rec.renamed_from, rec.starred) == ("ship this one", given, True)
    assert rec.note == "Best trade-off so far.\nTry 4 bits next."
    assert [r.label for r in store.list_results(with_weights=False) if r.id == rid] == ["ship this one"]
    frame = load_results_frame(store).set_index("id")
    assert frame.loc[rid, "label"] == "ship this one" and bool(frame.loc[rid, "starred"])
    assert frame.loc[rid, "team_note"].startswith("Best trade-off") and frame.loc[other, "team_note"] == ""
    html = build_report_html(store, load_results_frame(store))
    assert "★ ship this one" in html and "Best trade-off so far." in html and f"renamed from {given}" in html

    store.annotate("result", rid, starred=False)  # None keeps the rest
    assert store.get_result(rid).label == "ship this one" and not store.get_result(rid).starred
    store.annotate("result", rid, name="")
    assert store.get_result(rid).label == given and store.get_result(rid).renamed_from == ""


def test_models_take_a_name_and_a_note_and_long_text_is_refused_whole(store: Store) -> None:
    store.annotate("model", "sample/digits_mlp", name="the small MLP", note="our baseline")
    rec = store.get_model("sample/digits_mlp")
    assert (rec.title, rec.note, rec.name) == ("the small MLP", "our baseline", "digits_mlp")
    assert next(m for m in store.list_models() if m.id == rec.id).title == "the small MLP"
    with pytest.raises(ValueError, match=f"at most {MAX_NOTE_CHARS:,}"):
        store.annotate("model", "sample/digits_mlp", name="changed", note="x" * (MAX_NOTE_CHARS + 1))
    assert store.get_model("sample/digits_mlp").title == "the small MLP"  # nothing changed
    with pytest.raises(ValueError, match="a model or a result"):
        store.annotate("job", "x")  # type: ignore[arg-type]


def test_deleting_a_result_takes_its_note_along(store: Store) -> None:
    rid = _result(store)
    store.annotate("result", rid, note="keep?")
    store.delete_result(rid)
    assert store.annotation("result", rid).note == "" and store.annotations("result") == {}


def test_the_model_card_carries_the_team_s_note(store: Store) -> None:
    rid = _result(store)
    card = "# Model card\n\nmeasured things\n"
    assert with_note(card, store.annotation("result", rid)) == card  # nothing written: unchanged
    store.annotate("result", rid, name="v2 candidate", note="Ship after the A/B test.", starred=True)
    out = with_note(card, store.annotation("result", rid))
    assert out.startswith(card.rstrip()) and "## Notes from the team" in out
    assert "Name: v2 candidate" in out and "Ship after the A/B test." in out and "Starred" in out


def test_the_cli_annotates_and_refuses_an_unknown_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lwdash.cli import main

    d = str(tmp_path / "data")
    assert main(["annotate", "--data-dir", d, "--model", "sample/digits_cnn", "--name", "CNN v1", "--star"]) == 0
    assert "name CNN v1; starred" in capsys.readouterr().out
    rec = SqliteStore(tmp_path / "data").get_model("sample/digits_cnn")
    assert (rec.title, rec.starred) == ("CNN v1", True)
    assert main(["annotate", "--data-dir", d, "--model", "sample/digits_cnn", "--unstar"]) == 0
    assert not SqliteStore(tmp_path / "data").get_model("sample/digits_cnn").starred
    assert main(["annotate", "--data-dir", d, "--result", "nope", "--note", "x"]) == 2
    assert "no result 'nope'" in capsys.readouterr().err
