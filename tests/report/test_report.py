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
from lwdash.store import SqliteStore


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
