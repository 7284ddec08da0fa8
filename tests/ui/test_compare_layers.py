"""Compare filters, 3-D view, exports and side by side; the Layers page and its sensitivity scan, under AppTest."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lwdash.analysis.sensitivity import ScanConfig, run_scan, scan_technique
from lwdash.jobs.spec import JobSpec, JobStatus
from lwdash.workspace import SqliteStore


@pytest.fixture
def copy_of_results(results_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the two-result data dir, for tests that add jobs or scans to it."""
    dest = tmp_path / "data"
    shutil.copytree(results_dir, dest)
    monkeypatch.setenv("LWDASH_DATA_DIR", str(dest))
    monkeypatch.setenv("LWDASH_NO_WORKER", "1")
    return dest


def test_compare_filters_by_family_and_lists_failed_jobs(copy_of_results: Path, app) -> None:  # type: ignore[no-untyped-def]
    store = SqliteStore(copy_of_results)
    job = store.submit(JobSpec("sample/digits_mlp", "digits", {"type": "magnitude_pruning", "version": 1,
                                                               "data": {"amount": 0.95}}))
    store.claim("t")
    store.fail(job, "ValueError: the model collapsed\n\ntraceback")
    at = app("pages/compare.py")
    assert not at.exception
    results = at.dataframe[0].value
    assert len(results) == 2
    failed = at.dataframe[1].value  # done jobs are points; the failed one is listed with its reason
    assert list(failed["status"]) == ["failed"] and failed["reason / message"].iloc[0] == "ValueError: the model collapsed"
    at.multiselect(key="compare.statuses").set_value(["done"]).run()
    assert not at.exception and all(len(d.value) != 1 or "status" not in d.value for d in at.dataframe[:2])
    at.multiselect(key="compare.families").set_value([]).run()
    assert not at.exception and any(i.value.startswith("No result matches these filters") for i in at.info)
    assert not [b for b in at.get("download_button") if b.key == "compare.report"]  # no empty report to download


def test_compare_3d_exports_and_side_by_side(with_results: Path, app) -> None:  # type: ignore[no-untyped-def]
    store = SqliteStore(with_results)
    ids = [r.id for r in store.list_results()]
    at = app("pages/compare.py")
    assert not at.exception
    assert len(at.get("plotly_chart")) >= 4  # two fronts, 3-D view, the detail histogram
    assert at.download_button(key="compare.report") and at.download_button(key="compare.png")
    assert at.download_button(key="compare.csv")
    at.multiselect(key="compare.side").set_value(ids).run()
    assert not at.exception
    side = at.dataframe[1].value
    assert len(side.columns) == 4  # baseline, two results, best
    assert side.loc["Nonzero parameters"].iloc[0] == f"{store.list_results()[0].baseline.nonzero_params_count:,}"
    layers = at.selectbox(key="compare.side_layer").options
    at.selectbox(key="compare.side_layer").set_value(layers[1]).run()
    assert not at.exception
    # the detail: configuration table and downloads beside every model
    cfg = next(d.value for d in at.dataframe if list(d.value.columns) == ["knob", "value"])
    assert cfg["value"].iloc[0].startswith("magnitude_pruning")
    for name in ("model.onnx", "model.pt2", "model_card.md", "model_card.json", "result.json"):
        assert at.download_button(key=f"compare.download.{name}")


def test_layers_page_shows_per_layer_views(with_results: Path, app) -> None:  # type: ignore[no-untyped-def]
    at = app("pages/layers.py")
    assert not at.exception
    assert len(at.tabs) == 5
    table = at.dataframe[0].value
    assert len(table) == 3 and table["mse"].notna().all() and table["macs"].notna().all()
    after = table["sparsity_after"].tolist()  # percent: global magnitude pruning, the classifier left dense
    assert all(45 < v < 95 for v in after[:2]) and after[2] == 0.0
    assert len(at.get("plotly_chart")) >= 4
    assert at.selectbox(key="layers.model").value == "sample/digits_mlp"  # follows the picked result


def test_layers_page_queues_a_scan_and_draws_its_curves(copy_of_results: Path, app) -> None:  # type: ignore[no-untyped-def]
    store = SqliteStore(copy_of_results)
    at = app("pages/layers.py")
    at.text_input(key="layers.levels").set_value("0.5, 1.5")
    at.button(key="layers.launch").click().run()
    assert not at.exception
    def scans() -> list:  # type: ignore[type-arg]
        return [j for j in store.list_jobs() if j.spec.kind == "sensitivity"]

    assert "in (0, 1)" in at.error[0].value and scans() == []
    at.radio(key="layers.mode").set_value("quantize").run()
    assert at.text_input(key="layers.levels").value == "8, 6, 4"
    at.button(key="layers.launch").click().run()
    assert not at.exception and not at.error
    [job] = scans()
    assert job.spec.kind == "sensitivity" and job.spec.technique["data"]["levels"] == [4.0, 6.0, 8.0]
    assert job.status is JobStatus.QUEUED
    assert [p.value for p in at.get("progress")] == [0]  # the live progress line
    # what the worker does with it (tests/analysis runs the real worker process)
    store.claim("t")
    scan = run_scan(store.load_model("sample/digits_mlp").module, store.resolve_data("digits"),
                    scan_technique(ScanConfig("quantize", (4.0, 6.0, 8.0))))
    store.finish(job.id, store.save_analysis(job.id, job.spec, scan))
    at = app("pages/layers.py")
    assert not at.exception
    curves = at.dataframe[-1].value
    assert list(curves.columns) == ["params", "4", "6", "8"] and len(curves) == 3
    assert curves["8"].iloc[0] == pytest.approx(100 * scan["layers"][0]["acc"][2])
    assert any("Most sensitive at 4 bits" in c.value for c in at.caption)
