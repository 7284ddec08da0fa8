"""The Compress page: pipelines built step by step, two-knob grids, and bad configs refused before queueing."""
from __future__ import annotations

from pathlib import Path

import pytest

from lwdash.ui.forms import step_key
from lwdash.workspace import SqliteStore


def _compress(app, model: str, technique: str):  # type: ignore[no-untyped-def]
    at = app("pages/compress.py")
    at.selectbox(key="compress.model").set_value(model).run()
    return at.selectbox(key="compress.technique").set_value(technique).run()


def test_pipeline_builder_queues_one_job_per_swept_step_value(data_dir: Path, app) -> None:  # type: ignore[no-untyped-def]
    at = _compress(app, "sample/digits_cnn", "pipeline")
    assert not at.exception
    # The default pipeline is drawn: structured pruning > fine-tune > static int8.
    assert [at.selectbox(key=step_key("compress", i, "technique")).value for i in (1, 2, 3)] == [
        "structured_pruning", "fine_tune", "int8_static"]
    at.text_input(key=step_key("compress", 1, "structured_pruning.ratio")).set_value("0.3, 0.6")
    at.number_input(key=step_key("compress", 2, "fine_tune.epochs")).set_value(1)
    at.button(key="compress.submit").click().run()
    assert not at.exception and not at.error
    jobs = SqliteStore(data_dir).list_jobs()
    assert len(jobs) == 2 and {j.spec.technique["type"] for j in jobs} == {"pipeline"}
    steps = [j.spec.technique["data"]["steps"] for j in jobs]
    assert sorted(s[0]["ratio"] for s in steps) == [0.3, 0.6]
    assert all([x["technique"] for x in s] == ["structured_pruning", "fine_tune", "int8_static"] for s in steps)
    assert all(s[1]["epochs"] == 1 and s[0]["fine_tune_epochs"] == 0 for s in steps)


def test_pipeline_step_technique_change_redraws_its_fields_and_quantization_must_be_last(
    data_dir: Path, app  # type: ignore[no-untyped-def]
) -> None:
    at = _compress(app, "sample/digits_cnn", "pipeline")
    at.number_input(key="compress.pipeline.count").set_value(2).run()
    at.selectbox(key=step_key("compress", 1, "technique")).set_value("int8_static").run()
    at.selectbox(key=step_key("compress", 2, "technique")).set_value("magnitude_pruning").run()
    assert at.text_input(key=step_key("compress", 2, "magnitude_pruning.amount")).value == "0.5"
    at.button(key="compress.submit").click().run()
    assert not at.exception
    assert "step 1 (int8_static) is a quantization step and must be the last step" in at.error[0].value
    assert SqliteStore(data_dir).list_jobs() == []


def test_two_knob_grid_ratios_by_modes_queues_every_point(data_dir: Path, app) -> None:  # type: ignore[no-untyped-def]
    at = _compress(app, "sample/digits_mlp", "magnitude_pruning")
    at.text_input(key="compress.magnitude_pruning.amount").set_value("0.5, 0.8")
    at.multiselect(key="compress.magnitude_pruning.scope").set_value(["global", "per_layer"])
    at.button(key="compress.submit").click().run()
    assert not at.exception and not at.error
    points = sorted((j.spec.technique["data"]["amount"], j.spec.technique["data"]["scope"])
                    for j in SqliteStore(data_dir).list_jobs())
    assert points == [(0.5, "global"), (0.5, "per_layer"), (0.8, "global"), (0.8, "per_layer")]
    assert "Queued 4 job(s)" in at.success[0].value


@pytest.mark.parametrize(
    ("model", "technique", "edit", "message"),
    [
        ("sample/digits_mlp", "magnitude_pruning", ("text_input", "amount", "0.5, 1.5"), "amount=1.5: amount must be < 1.0"),
        ("sample/digits_mlp", "magnitude_pruning", ("multiselect", "scope", []), "Scope: pick at least one of"),
        ("sample/digits_cnn", "low_rank", ("number_input", "rank", 999), "rank 999 is not below the full rank"),
        ("sample/digits_student", "distillation", ("multiselect", "student", ["digits_student"]),
         "a student must be smaller"),
        ("sample/digits_mlp", "magnitude_pruning", ("multiselect", "schedule", ["iterative"]),
         "fine_tune_epochs must be >= 1 for the iterative schedule"),
    ],
)
def test_bad_configs_get_a_clear_message_and_nothing_is_queued(  # type: ignore[no-untyped-def]
    data_dir: Path, app, model: str, technique: str, edit: tuple[str, str, object], message: str
) -> None:
    at = _compress(app, model, technique)
    kind, field, value = edit
    if technique == "low_rank":
        at.multiselect(key="compress.low_rank.choice").set_value(["fixed_rank"])
    getattr(at, kind)(key=f"compress.{technique}.{field}").set_value(value)
    at.button(key="compress.submit").click().run()
    assert not at.exception
    assert at.error and message in at.error[0].value, [e.value for e in at.error]
    assert SqliteStore(data_dir).list_jobs() == []


def test_queueing_the_same_configs_twice_warns_and_queues_nothing_new(data_dir: Path, app) -> None:  # type: ignore[no-untyped-def]
    at = _compress(app, "sample/digits_mlp", "magnitude_pruning")
    at.text_input(key="compress.magnitude_pruning.amount").set_value("0.5, 0.8")
    at.button(key="compress.submit").click().run()
    assert "Queued 2 job(s)" in at.success[0].value and not at.warning
    at.text_input(key="compress.magnitude_pruning.amount").set_value("0.5, 0.7")
    at.button(key="compress.submit").click().run()  # 0.5 again, and one new value
    assert not at.exception and not at.error
    jobs = SqliteStore(data_dir).list_jobs()
    assert sorted(j.spec.technique["data"]["amount"] for j in jobs) == [0.5, 0.7, 0.8]
    warning = next(w.value for w in at.warning if w.value.startswith("Not queued again"))
    assert "1 of the 2 configs already have an identical job" in warning and "amount=0.5" in warning
    assert "Queued 1 job(s)" in at.success[0].value


def test_the_confirmation_belongs_to_the_technique_it_queued(data_dir: Path, app) -> None:  # type: ignore[no-untyped-def]
    at = _compress(app, "sample/digits_mlp", "magnitude_pruning")
    at.button(key="compress.submit").click().run()
    assert "Queued 1 job(s)" in at.success[0].value
    at.selectbox(key="compress.technique").set_value("low_rank").run()
    assert not at.exception and not [s for s in at.success if s.value.startswith("Queued")]
    at.selectbox(key="compress.technique").set_value("magnitude_pruning").run()
    assert "Queued 1 job(s)" in at.success[0].value


def test_field_help_and_labels_fit_the_field(app) -> None:  # type: ignore[no-untyped-def]
    from lwdash.techniques import form_spec, list_techniques
    from lwdash.ui.forms import sweep_example

    at = _compress(app, "sample/digits_cnn", "distillation")
    epochs = at.text_input(key="compress.distillation.epochs")
    assert "e.g. 7, 15, 30." in epochs.help and "0.3, 0.5, 0.7" not in epochs.help
    for tech in list_techniques():
        for spec in form_spec(tech.config_type):
            if spec.name == "lr":
                assert spec.label == "Learning rate", tech.key
            if spec.sweepable:
                assert str(spec.default) in sweep_example(spec).split(", ") or f"{spec.default:g}" in sweep_example(spec)
