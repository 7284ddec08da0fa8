"""Runtimes in the app: the Compress page picks them, a result's detail shows its latency matrix and downloads."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lwdash.runtimes import list_runtimes
from lwdash.workspace import SqliteStore

RUNTIMES = ("ort", "ort_nofusion", "openvino", "torch")


@pytest.fixture(scope="module")
def measured_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One real result of the digits CNN measured on ONNX Runtime (fusion on and off), OpenVINO and PyTorch."""
    from lwdash.jobs.inline import run_inline
    from lwdash.jobs.spec import JobSpec, JobStatus

    path = tmp_path_factory.mktemp("ui-runtimes")
    store = SqliteStore(path)
    spec = JobSpec(model_id="sample/digits_cnn", data_ref="digits", runtimes=RUNTIMES,
                   technique={"type": "magnitude_pruning", "version": 1, "data": {"amount": 0.5}})
    job = run_inline(store, store.submit(spec), worker_id="ui-test")
    assert job is not None and job.status is JobStatus.DONE, job
    store.close()
    yield path


def test_result_detail_shows_every_runtime_the_best_one_and_its_download(
    measured_dir: Path, monkeypatch: pytest.MonkeyPatch, app  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setenv("LWDASH_DATA_DIR", str(measured_dir))
    monkeypatch.setenv("LWDASH_NO_WORKER", "1")
    (rec,) = SqliteStore(measured_dir).list_results(with_weights=False)
    at = app("pages/compare.py")
    assert not at.exception
    matrix = next(d.value for d in at.dataframe if "fusion" in d.value.columns)
    assert list(matrix["runtime"]) == [rt.title for rt in list_runtimes()]
    rows = matrix.set_index("runtime")
    assert (rows.loc["ONNX Runtime", "fusion"], rows.loc["ONNX Runtime, fusion off", "fusion"]) == ("on", "off")
    for key in RUNTIMES:
        title = next(rt.title for rt in list_runtimes() if rt.key == key)
        assert rows.loc[title, "b32 median"] == f"{rec.compressed.latency_ms(key, 32):.3f}"
        assert rows.loc[title, "baseline b32 median"] == f"{rec.baseline.latency_ms(key, 32):.3f}"
    assert rows.loc["TVM (Relax, untuned)", "not measured because"].startswith("not measured in this job")
    best = rec.compressed.best_latency(32)
    assert best is not None and rows.loc[next(rt.title for rt in list_runtimes() if rt.key == best.runtime),
                                         "best"] == "★"
    assert any("fake quantization" in i.value for i in at.info)  # said on screen
    labels = [m.label for m in at.metric]
    assert any(label.startswith("Best runtime, batch 32: ") for label in labels)
    # Zeroed weights rarely run faster: when the result is slower on every runtime, the headline says so.
    from lwdash.analysis.latency_matrix import best_runtime

    headline = best_runtime(rec.baseline, rec.compressed)
    assert headline is not None
    shown = [e.value for e in at.error if e.value.startswith("Slower than its baseline on every runtime")]
    assert shown == ([headline.slower_text()] if headline.slower_everywhere else [])
    assert at.download_button(key="compare.download.model.xml") and at.download_button(key="compare.download.model.bin")
    assert any("openvino.Core().compile_model" in m.value for m in at.markdown)


def test_compress_page_queues_jobs_with_the_chosen_runtimes(data_dir: Path, app) -> None:  # type: ignore[no-untyped-def]
    at = app("pages/compress.py")
    assert set(at.multiselect(key="compress.runtimes").value) == {"ort", "ort_nofusion", "torch"}  # the suite's setting
    options = at.multiselect(key="compress.runtimes").options  # every registered runtime is selectable
    assert len(options) == len(list_runtimes()) and "torch.compile (Inductor) (compiles: tens of seconds per model)" in options
    at.selectbox(key="compress.model").set_value("sample/digits_mlp").run()
    at.selectbox(key="compress.technique").set_value("magnitude_pruning").run()
    at.multiselect(key="compress.runtimes").set_value(["ort", "tvm"]).run()
    at.button(key="compress.submit").click().run()
    assert not at.exception and not at.error
    (job,) = SqliteStore(data_dir).list_jobs()
    assert job.spec.runtimes == ("ort", "tvm")
