"""The real app under AppTest: every page renders; uploads, sweeps, jobs and comparisons work by widget key."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from conftest import APP
from streamlit.testing.v1 import AppTest

from lwdash.jobs.spec import JobSpec, JobStatus
from lwdash.workspace import SqliteStore

PAGES = ("pages/models.py", "pages/compress.py", "pages/jobs.py", "pages/compare.py", "pages/search.py",
         "pages/layers.py")
PRUNE = {"type": "magnitude_pruning", "version": 1, "data": {"amount": 0.5}}


def _npz(x: np.ndarray, y: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, x=x, y=y)
    return buf.getvalue()


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_an_empty_data_dir(data_dir: Path, page: str, app) -> None:  # type: ignore[no-untyped-def]
    at = app(page)
    assert not at.exception
    assert at.title[0].value == Path(page).stem.capitalize()


def test_models_gallery_lists_samples_and_shows_the_selected_summary(data_dir: Path, app) -> None:  # type: ignore[no-untyped-def]
    at = app()
    assert not at.exception
    store = SqliteStore(data_dir)
    samples = [m for m in store.list_models() if m.kind == "sample"]
    assert samples, "the bundled samples are missing"
    for m in samples:  # one select button per card
        assert at.button(key=f"models.pick.{m.id}")
    target = samples[-1]
    at.button(key=f"models.pick.{target.id}").click().run()
    assert not at.exception
    assert at.session_state["sel.model_id"] == target.id
    assert at.subheader[-1].value == (target.title or target.name)
    layers = at.dataframe[-1].value
    assert int(layers["params"].sum()) == target.params_count
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Classes"] == str(target.num_classes)


def test_models_upload_of_bad_bytes_shows_an_error_and_the_app_keeps_working(data_dir: Path, app) -> None:  # type: ignore[no-untyped-def]
    at = app()
    at.file_uploader(key="models.upload").upload("broken.onnx", b"this is not an onnx file").run()
    assert not at.exception
    assert len(at.error) == 1 and "broken.onnx" in at.error[0].value
    assert at.button(key="models.pick.sample/digits_mlp")  # the gallery still renders
    assert [m for m in SqliteStore(data_dir).list_models() if m.kind == "upload"] == []


def test_models_upload_of_a_state_dict_needs_its_architecture(data_dir: Path, app) -> None:  # type: ignore[no-untyped-def]
    import torch

    from lwdash.models import build_architecture

    buf = io.BytesIO()
    torch.manual_seed(0)
    torch.save(build_architecture("digits_mlp").state_dict(), buf)
    at = app()
    at.file_uploader(key="models.upload").upload("mlp_weights.pt", buf.getvalue()).run()
    assert not at.exception
    assert r"mlp\_weights.pt" in at.error[0].value and "architecture" in at.error[0].value  # shown as typed
    at.selectbox(key="models.arch").set_value("digits_mlp").run()
    assert not at.exception and not at.error
    uploads = [m for m in SqliteStore(data_dir).list_models() if m.kind == "upload"]
    assert [(m.name, m.arch, m.source_format) for m in uploads] == [("mlp_weights.pt", "digits_mlp", "state_dict")]
    assert at.session_state["sel.model_id"] == uploads[0].id
    assert at.subheader[-1].value == "mlp_weights.pt"  # the summary follows the new selection at once
    assert at.button(key=f"models.pick.{uploads[0].id}").disabled  # its card is the selected one


def test_models_upload_of_an_evaluation_set(data_dir: Path, app) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    at = app()
    bad = _npz(rng.random((50, 1, 8, 8)), rng.random(50))  # float labels: refused
    at.file_uploader(key="models.data_upload").upload("bad.npz", bad).run()
    assert not at.exception and len(at.error) == 1 and "bad.npz" in at.error[0].value
    good = _npz(rng.random((60, 1, 8, 8)).astype(np.float32), np.arange(60) % 10)
    at.file_uploader(key="models.data_upload").clear().upload("good.npz", good).run()
    assert not at.exception and not at.error
    ids = [d.id for d in SqliteStore(data_dir).list_datasets() if d.kind == "upload"]
    assert len(ids) == 1 and at.session_state["sel.data_ref"] == ids[0]


def test_models_baseline_is_measured_in_the_background_and_shown_with_its_cli_command(
    data_dir: Path, app, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    from lwdash.jobs.inline import run_inline

    at = app()
    assert at.session_state["sel.model_id"] == "sample/fashion_resnet20"  # the first sample is selected at start
    at.button(key="models.pick.sample/digits_mlp").click().run()  # a digits sample: quick on the default data
    assert not at.exception and at.session_state["sel.model_id"] == "sample/digits_mlp"
    assert at.button(key="models.measure").label == "Measure the baseline"
    at.button(key="models.measure").click().run()
    assert not at.exception and not at.error
    store = SqliteStore(data_dir)
    (job,) = store.list_jobs()
    assert (job.spec.kind, job.spec.model_id, job.spec.data_ref, job.status) == (
        "baseline", "sample/digits_mlp", "digits", JobStatus.QUEUED)
    assert "models.measure" not in [b.key for b in at.button]  # no second measurement while one waits

    # What the worker does with it (immediate mode here: this test starts no worker).
    done = run_inline(store, job.id)
    assert done is not None and done.status is JobStatus.DONE, done
    payload = store.get_analysis(done.result_id or "").payload
    assert isinstance(payload, dict)
    at.run()
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["Top-1, ONNX Runtime"] == f"{100 * payload['metrics']['top1_acc']:.2f} %"
    assert shown["MACs per sample"] == f"{payload['metrics']['macs']:,}"
    assert at.code[0].value == "python -m lwdash measure --model digits_mlp"
    assert at.button(key="models.measure").label == "Measure again"


def test_models_upload_queues_its_baseline_measurement(data_dir: Path, app) -> None:  # type: ignore[no-untyped-def]
    import torch

    from lwdash.models import build_architecture

    buf = io.BytesIO()
    torch.save(build_architecture("digits_mlp").state_dict(), buf)
    at = app()
    at.selectbox(key="models.arch").set_value("digits_mlp").run()
    at.file_uploader(key="models.upload").upload("mine.pt", buf.getvalue()).run()
    assert not at.exception and not at.error
    store = SqliteStore(data_dir)
    (upload,) = [m for m in store.list_models() if m.kind == "upload"]
    (job,) = store.list_jobs()
    assert (job.spec.kind, job.spec.model_id, job.spec.data_ref) == ("baseline", upload.id, "digits")
    assert at.success[0].value.startswith("Imported mine.pt as a new model")
    # The Jobs page names the upload by its file name, as the gallery does; the hash is for the CLI.
    jobs_page = app("pages/jobs.py")
    row = next(m.value for m in jobs_page.markdown if "baseline" in m.value.lower() or "Baseline" in m.value)
    assert "mine.pt" in row and upload.id not in row, row
    # The same file uploaded again (another session, or after a reload): the same model, measured once.
    again = app()
    again.selectbox(key="models.arch").set_value("digits_mlp").run()
    again.file_uploader(key="models.upload").upload("mine-again.pt", buf.getvalue()).run()
    assert not again.exception and len(store.list_jobs()) == 1


def test_compress_sweep_queues_one_job_per_value(data_dir: Path, app) -> None:  # type: ignore[no-untyped-def]
    at = app("pages/compress.py")
    assert not at.exception
    at.selectbox(key="compress.model").set_value("sample/digits_mlp").run()
    at.selectbox(key="compress.technique").set_value("magnitude_pruning").run()
    at.text_input(key="compress.magnitude_pruning.amount").set_value("0.3, 0.5")
    at.button(key="compress.submit").click().run()
    assert not at.exception and not at.error
    jobs = SqliteStore(data_dir).list_jobs()
    assert len(jobs) == 2
    assert sorted(j.spec.technique["data"]["amount"] for j in jobs) == [0.3, 0.5]
    assert {j.spec.model_id for j in jobs} == {"sample/digits_mlp"} and {j.status for j in jobs} == {JobStatus.QUEUED}
    assert at.session_state["sel.submitted_job_ids"] == ("magnitude_pruning", [j.id for j in reversed(jobs)])
    assert "Queued 2 job(s)" in at.success[0].value


def test_compress_refuses_data_that_does_not_fit_the_model(data_dir: Path, app) -> None:  # type: ignore[no-untyped-def]
    store = SqliteStore(data_dir)
    rng = np.random.default_rng(1)
    ds = store.import_dataset("wide.npz", _npz(rng.random((60, 1, 4, 4)).astype(np.float32), np.arange(60) % 10))
    at = app("pages/compress.py")
    at.selectbox(key="compress.model").set_value("sample/digits_mlp").run()
    at.selectbox(key="compress.data").set_value(ds.id).run()
    at.selectbox(key="compress.technique").set_value("magnitude_pruning").run()
    at.button(key="compress.submit").click().run()
    assert not at.exception
    assert "Nothing was queued" in at.error[0].value and "(1, 4, 4)" in at.error[0].value
    assert store.list_jobs() == []


def test_compress_refuses_configs_the_model_cannot_take(data_dir: Path, app) -> None:  # type: ignore[no-untyped-def]
    at = app("pages/compress.py")
    at.selectbox(key="compress.model").set_value("sample/digits_cnn").run()
    at.selectbox(key="compress.technique").set_value("weight_only_int8").run()
    at.toggle(key="compress.weight_only_int8.skip_classifier").set_value(True)
    at.button(key="compress.submit").click().run()
    assert not at.exception
    assert "Nothing was queued" in at.error[0].value and "no Linear layer" in at.error[0].value
    assert SqliteStore(data_dir).list_jobs() == []


def test_jobs_page_shows_status_errors_and_cancels_and_retries(data_dir: Path, app) -> None:  # type: ignore[no-untyped-def]
    store = SqliteStore(data_dir)
    queued, failing = store.submit_many([JobSpec("sample/digits_mlp", "digits", PRUNE)] * 2)
    claimed = store.claim("test-worker")
    assert claimed is not None and claimed.id == queued
    store.update_progress(queued, 0.4, "applying magnitude_pruning")
    store.claim("test-worker")
    store.fail(failing, "ValueError: amount must be < 1.0\n\nTraceback ...")

    at = app("pages/jobs.py")
    assert not at.exception
    assert "No worker is running" in at.warning[0].value
    assert "amount must be < 1.0" in at.error[0].value
    assert [p.value for p in at.get("progress")] == [40]  # percent
    assert " left" in at.get("progress")[0].proto.text  # an ETA from the job's own progress
    at.button(key=f"jobs.retry.{failing}").click().run()
    assert not at.exception
    assert store.get_job(failing).status is JobStatus.QUEUED
    at.button(key=f"jobs.cancel.{failing}").click().run()
    assert store.get_job(failing).status is JobStatus.CANCELLED


def test_compare_lists_results_and_shows_the_selected_one(with_results: Path, app) -> None:  # type: ignore[no-untyped-def]
    store = SqliteStore(with_results)
    results = store.list_results()
    at = app("pages/compare.py")
    assert not at.exception
    table = at.dataframe[0].value
    assert sorted(table["id"]) == sorted(r.id for r in results)
    assert len(at.get("plotly_chart")) >= 2

    pick = results[-1]
    at.selectbox(key="compare.pick").set_value(pick.id).run()
    assert not at.exception
    assert at.session_state["sel.result_id"] == pick.id
    assert pick.label in [h.value for h in at.subheader]
    detail = at.dataframe[1].value.set_index("metric")
    top1 = detail.loc["Top-1 accuracy, ONNX Runtime (%)"]
    assert top1["compressed"] == f"{100 * pick.compressed.top1_acc:.2f}"
    assert top1["baseline"] == f"{100 * pick.baseline.top1_acc:.2f}"
    nonzero = detail.loc["Nonzero parameters"]
    assert nonzero["ratio"] == f"{pick.compressed.nonzero_params_count / pick.baseline.nonzero_params_count:.3f}x"
    assert any("dense kernels" in w.value for w in at.warning)  # the honest flag for masks
    from lwdash.analysis.notes import split_notes

    warned, described = split_notes(pick.notes)
    assert len([w for w in at.warning if any(w.value == n for n in warned)]) == len(warned)
    if described:  # neutral notes are one info box, not a column of yellow warnings
        assert any(i.value.startswith("- ") for i in at.info)
    assert at.download_button(key="compare.download.model.onnx")


def test_compare_toggles_and_histogram_controls(with_results: Path, app) -> None:  # type: ignore[no-untyped-def]
    at = app("pages/compare.py")
    at.toggle(key="compare.ratio").set_value(True).run()
    at.radio(key="compare.size_metric").set_value("sparse_bytes").run()
    at.radio(key="compare.lat_runtime").set_value("torch").run()
    at.radio(key="compare.lat_batch").set_value(1).run()
    assert not at.exception
    layers = at.selectbox(key="compare.detail_layer").options
    assert len(layers) >= 2
    at.selectbox(key="compare.detail_layer").select_index(1).run()
    at.toggle(key="compare.detail_log").set_value(False).run()
    assert not at.exception
    assert at.selectbox(key="compare.detail_layer").value == layers[1]
    at.multiselect(key="compare.models").set_value([]).run()  # every model filtered out: empty, not broken
    assert not at.exception and any(i.value.startswith("No result matches these filters") for i in at.info)


def test_search_page_starts_a_search_and_shows_its_trials(data_dir: Path, app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from lwdash.jobs.inline import run_inline
    from lwdash.search import advance_searches

    at = app("pages/search.py")
    assert not at.exception
    at.selectbox(key="search.model").set_value("sample/digits_mlp").run()
    at.selectbox(key="search.technique").set_value("magnitude_pruning").run()
    assert at.multiselect(key="search.knobs.magnitude_pruning").value == ["amount"]
    at.number_input(key="search.range.magnitude_pruning.amount.low").set_value(0.2)
    at.number_input(key="search.range.magnitude_pruning.amount.high").set_value(0.9)
    at.number_input(key="search.trials").set_value(2)
    at.text_input(key="search.fixed").set_value("scope=per_layer")
    at.button(key="FormSubmitter:search.form-Start the search").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    store = SqliteStore(data_dir)
    (search,) = store.list_searches()
    assert search.status == "running" and search.model_id == "sample/digits_mlp"
    assert search.config["space"] == [{"name": "amount", "low": 0.2, "high": 0.9, "log": False, "integer": False}]
    assert search.config["fixed"] == {"scope": "per_layer"} and search.config["trials"] == 2

    # The worker's part, inline: queue a trial, run it, again, then end the search.
    for _ in range(2):
        advance_searches(store)
        job = run_inline(store)
        assert job is not None and job.spec.search_id == search.id
        assert job.spec.technique["data"]["scope"] == "per_layer"
    advance_searches(store)
    assert store.get_search(search.id).status == "done"
    at.run()
    assert not at.exception
    assert any(sh.value == f"Search {search.id[:8]}" for sh in at.subheader)
    table = at.dataframe[-1].value
    assert list(table["trial"]) == [1, 2] and set(table["status"]) == {"done"}
    assert all(0.2 <= float(v) <= 0.9 for v in table["amount"])


def test_search_page_refuses_a_range_the_knob_does_not_take(data_dir: Path, app) -> None:  # type: ignore[no-untyped-def]
    at = app("pages/search.py")
    at.selectbox(key="search.technique").set_value("magnitude_pruning").run()
    at.number_input(key="search.range.magnitude_pruning.amount.high").set_value(0.99).run()
    at.number_input(key="search.range.magnitude_pruning.amount.low").set_value(0.995)
    at.button(key="FormSubmitter:search.form-Start the search").click().run()
    assert not at.exception
    assert "The search was not started" in at.error[0].value and "low < high" in at.error[0].value
    assert SqliteStore(data_dir).list_searches() == []


def test_search_page_cancels_a_running_search(data_dir: Path, app) -> None:  # type: ignore[no-untyped-def]
    from lwdash.search import KnobRange, SearchConfig, advance_searches

    store = SqliteStore(data_dir)
    cfg = SearchConfig(technique="magnitude_pruning", space=(KnobRange("amount", low=0.2, high=0.9),), trials=3)
    search_id = store.create_search("sample/digits_mlp", "digits", cfg.to_dict())
    advance_searches(store)  # its first trial is queued
    at = app("pages/search.py")
    assert not at.exception
    assert at.session_state["search.shown"] == search_id
    at.button(key=f"search.cancel.{search_id}").click().run()
    assert not at.exception
    assert store.get_search(search_id).cancel_requested
    advance_searches(store)  # the worker's next pass
    search = store.get_search(search_id)
    assert search.status == "cancelled" and [store.get_job(t.job_id).status for t in store.search_trials(search_id)] \
        == [JobStatus.CANCELLED]
    at.run()
    assert f"search.cancel.{search_id}" not in [b.key for b in at.button]


def test_a_finished_job_links_to_its_result_on_compare(with_results: Path, app) -> None:  # type: ignore[no-untyped-def]
    store = SqliteStore(with_results)
    done = [j for j in store.list_jobs() if j.status is JobStatus.DONE and j.result_id and j.spec.kind == "compress"]
    assert done
    at = app("pages/jobs.py")
    assert not at.exception
    links = [(p.proto.page, p.proto.label) for p in at.get("page_link")]
    assert any(page == "compare" and label == f"Result {done[0].result_id[:8]}: see it on the Compare page"
               for page, label in links), links


def test_compare_draws_one_front_per_model_unless_asked_for_one_across_models(with_results: Path, app) -> None:  # type: ignore[no-untyped-def]
    at = app("pages/compare.py")
    assert not at.exception
    fronts = [c.value for c in at.caption if "result(s) on" in c.value]
    assert len(fronts) == 2 and all("on their model's front (" in c for c in fronts)
    at.toggle(key="compare.across").set_value(True).run()
    assert not at.exception
    fronts = [c.value for c in at.caption if "result(s) on" in c.value]
    assert len(fronts) == 2 and all("on the front (bold" in c for c in fronts)


def test_compare_says_when_the_filters_leave_no_result(with_results: Path, app) -> None:  # type: ignore[no-untyped-def]
    at = app("pages/compare.py")
    at.multiselect(key="compare.models").set_value([]).run()
    assert not at.exception
    assert any(i.value.startswith("No result matches these filters") for i in at.info)
    assert not at.get("plotly_chart") and not [s for s in at.subheader if s.value == "Result detail"]


def test_a_reload_keeps_the_selected_model_through_the_url(data_dir: Path, app) -> None:  # type: ignore[no-untyped-def]
    at = app()
    target = [m for m in SqliteStore(data_dir).list_models() if m.kind == "sample"][-1]
    at.button(key=f"models.pick.{target.id}").click().run()
    assert at.query_params["model"] in (target.id, [target.id])
    # A reload is a new session with the same URL: the same model is selected, on every page.
    reloaded = AppTest.from_file(APP, default_timeout=60)
    reloaded.query_params["model"] = target.id
    reloaded.run()
    assert not reloaded.exception
    assert reloaded.session_state["sel.model_id"] == target.id
    assert reloaded.subheader[-1].value == (target.title or target.name)
    # A stale or hostile id in the URL falls back to the first model instead of failing.
    stale = AppTest.from_file(APP, default_timeout=60)
    stale.query_params["model"] = "upload/<script>"
    stale.query_params["data"] = "../../etc/passwd"
    stale.run()
    assert not stale.exception and not stale.error
    assert stale.session_state["sel.model_id"] != "upload/<script>"
    assert stale.session_state["sel.data_ref"] != "../../etc/passwd"


def test_the_eta_extrapolates_the_job_s_own_progress() -> None:
    from lwdash.ui.panels import eta_text

    assert eta_text(0.25, started_at=100.0, now=130.0) == "about 90 s left"
    assert eta_text(0.5, started_at=0.0, now=600.0) == "about 10 min left"
    assert eta_text(0.01, started_at=0.0, now=5.0) is None  # too early to say
    assert eta_text(0.5, started_at=None, now=5.0) is None and eta_text(1.0, started_at=0.0, now=5.0) is None


def test_every_technique_says_when_to_use_it_on_compress(data_dir: Path, app) -> None:  # type: ignore[no-untyped-def]
    from lwdash.techniques import list_techniques

    at = app("pages/compress.py")
    for tech in list_techniques():
        assert len(tech.when) > 60, f"{tech.key} has no 'when to use it' text"
        at.selectbox(key="compress.technique").set_value(tech.key).run()
        assert not at.exception
        assert any(c.value == f"**When to use it:** {tech.when}" for c in at.caption), tech.key
