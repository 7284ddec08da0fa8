"""CSV, the self-contained HTML report, PNG charts (kaleido + the system chromium) and `python -m lwdash report`."""
from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from lwdash.analysis.frame import load_results_frame
from lwdash.cli import main
from lwdash.jobs.inline import run_inline
from lwdash.jobs.spec import JobSpec, JobStatus
from lwdash.report import build_report_html, compare_figures, results_csv, with_model_names, write_report
from lwdash.workspace import SqliteStore


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    """A store with two real results of the digits MLP (magnitude pruning 0.5 and 0.9), made as the worker does."""
    s = SqliteStore(tmp_path_factory.mktemp("report-store"))
    for amount in (0.5, 0.9):
        spec = JobSpec("sample/digits_mlp", "digits", {"type": "magnitude_pruning", "version": 1,
                                                        "data": {"amount": amount}})
        job = run_inline(s, s.submit(spec), worker_id="report-test")  # immediate mode: claim -> compute -> record
        assert job is not None and job.status is JobStatus.DONE, job
    yield s


def test_csv_has_every_result_and_raw_units(store: SqliteStore) -> None:
    frame = load_results_frame(store)
    back = pd.read_csv(io.StringIO(results_csv(frame)))
    assert sorted(back["id"]) == sorted(frame["id"])
    assert list(back.columns) == list(frame.columns)
    assert back["onnx_bytes"].dtype.kind == "i" and back["top1_acc"].between(0, 1).all()


def test_html_report_is_self_contained_and_complete(store: SqliteStore) -> None:
    frame = with_model_names(store, load_results_frame(store))
    html = build_report_html(store, frame, scope="Filter: everything.")
    assert html.count("plotly.js v") == 1  # the library embedded once, for every chart
    assert not re.search(r"<script[^>]+src=[\"']https?://", html)  # nothing fetched from the network
    assert html.count('class="plotly-graph-div"') == 4  # size front, two latency fronts, 3-D view
    recs = store.list_results(with_weights=False)
    env = recs[0].environment
    for needle in ("Filter: everything.", "Pareto front", "All results", "Configurations and notes", "amount=0.9",
                   "Environment", str(env["cpu_model"]), f"torch {env['versions']['torch']}",
                   f"onnxruntime {env['versions']['onnxruntime']}", "Digits MLP"):
        assert needle in html, needle
    for r in recs:
        assert r.id in html and r.label in html
        assert f"{100 * r.compressed.top1_acc:.2f}" in html
    assert recs[0].notes[0][:40] in html  # the honest-gain notes


def test_pngs_and_the_cli_report(store: SqliteStore, tmp_path: Path) -> None:
    files = write_report(store, tmp_path / "r")
    assert [p.name for p in files.pngs] == [f"{n}.png" for n in compare_figures(load_results_frame(store))]
    for p in files.pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
    assert files.html.stat().st_size > 1_000_000 and files.csv.read_text().startswith("id,")

    out = tmp_path / "cli"
    assert main(["report", "--out", str(out), "--data-dir", str(store.data_dir), "--no-png"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "results.csv"]
    assert len(pd.read_csv(out / "results.csv")) == 2
    assert main(["report", "--out", str(out), "--data-dir", str(store.data_dir), "--model", "sample/nope"]) == 2
    one = tmp_path / "one"
    assert main(["report", "--out", str(one), "--data-dir", str(store.data_dir), "--no-png",
                 "--model", "sample/digits_mlp"]) == 0
    assert "results of Digits MLP" in (one / "report.html").read_text()  # the name people know, not the id


def test_the_report_opens_with_a_headline_per_model_from_the_measurements(store: SqliteStore) -> None:
    from lwdash.analysis.headline import headlines

    frame = with_model_names(store, load_results_frame(store))
    records = {r.id: r for r in store.list_results(with_weights=False)}
    (head,) = headlines(frame, records)  # one model, one data set
    by_id = frame.set_index("id")
    row = by_id.loc[head.result_id]
    kept = frame[100 * frame["acc_delta"] >= -1.0]
    if head.met:  # the smallest result within a point of the baseline leads
        assert row["size_ratio"] == kept["size_ratio"].min()
        assert f"{1 / row['size_ratio']:.1f}x smaller" in head.text
    else:  # none kept its accuracy: the most accurate is named, with what it lost
        assert kept.empty and row["top1_acc"] == frame["top1_acc"].max()
        assert "no result stays within 1 point" in head.text
    assert f"{100 * row['acc_delta']:+.2f} points" in head.text or f"{-100 * row['acc_delta']:.2f} points" in head.text
    assert head.model == "Digits MLP" and ("faster on" in head.text or "slower on" in head.text)
    html = build_report_html(store, frame)
    assert html.index("<h2>Headline</h2>") < html.index("Pareto fronts") and head.text.split(":")[0] in html


def test_a_headline_names_the_most_accurate_result_when_none_kept_its_accuracy() -> None:
    from lwdash.analysis.headline import headlines

    frame = pd.DataFrame({"id": ["a", "b"], "model_id": ["m", "m"], "data_ref": ["d", "d"], "label": ["A", "B"],
                          "top1_acc": [0.80, 0.85], "baseline_top1_acc": [0.90, 0.90], "acc_delta": [-0.10, -0.05],
                          "size_ratio": [0.25, 0.5]})
    (head,) = headlines(frame, {})
    assert (head.result_id, head.met) == ("b", False)
    assert head.text == ("m on d: no result stays within 1 point(s) of the baseline's 90.00 %; the most accurate, B, "
                         "loses 5.00 points, is 2.0x smaller and latency not measured.")
    (lenient,) = headlines(frame, {}, max_drop_points=10)
    assert (lenient.result_id, lenient.met) == ("a", True) and "4.0x smaller" in lenient.text
