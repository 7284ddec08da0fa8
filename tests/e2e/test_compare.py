"""Compare and Layers in a real browser: two real jobs, a chart point clicked, its detail and histogram,
the HTML report downloaded and checked, a sensitivity scan run in the background.

Seeds the app's own data dir with ``python -m lwdash submit`` (the CLI) and lets the worker the app
starts run the jobs. Screenshots of each view land in ``test-artifacts/screenshots/compare-*.png``.
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SCREENSHOTS, nav, shot, wait_idle, wait_jobs_done

pytestmark = pytest.mark.e2e

JOB_TIMEOUT_S = 300


def _submit(data_dir: Path, *args: str) -> str:
    """Queue one job with ``python -m lwdash submit``; returns its id (the first word it prints)."""
    env = {**os.environ, "LWDASH_DATA_DIR": str(data_dir)}
    out = subprocess.run([sys.executable, "-m", "lwdash", "submit", "--data-dir", str(data_dir), *args],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()[0]


def test_compare_select_point_detail_histogram_report_and_scan(page, app_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = str(app_server["url"])
    data_dir = Path(str(app_server["data_dir"]))
    db = data_dir / "lwdash.sqlite3"

    # Seed: two real fast jobs of different families through the CLI; the app's worker runs them.
    page.goto(url)  # the first page load starts the worker
    page.get_by_role("heading", name="Models").wait_for()
    mine = [_submit(data_dir, "--model", "digits_cnn", "--technique", "magnitude_pruning", "--set", "amount=0.8"),
            _submit(data_dir, "--model", "digits_cnn", "--technique", "int8_static")]
    rows = wait_jobs_done(db, mine, JOB_TIMEOUT_S)
    assert [r[1] for r in rows] == ["done", "done"], rows
    with sqlite3.connect(db) as con:
        marks = ",".join("?" * len(mine))
        results = {r[1]: r[0] for r in con.execute(f"SELECT id, technique FROM results WHERE job_id IN ({marks})", mine)}
        labels = dict(con.execute(f"SELECT id, label FROM results WHERE job_id IN ({marks})", mine).fetchall())
    int8_id = results["int8_static"]

    # Compare: two fronts, each with the baseline star and both results.
    nav(page, "Compare")
    charts = page.locator('[data-testid="stPlotlyChart"]')
    charts.first.wait_for()
    assert charts.first.locator("path.point").count() >= 3
    page.get_by_text(re.compile(r"result\(s\) on their model's front")).first.wait_for()  # one front per model
    shot(page, "compare-1-fronts")

    # Click the int8 marker on the accuracy-vs-size chart: its detail opens.
    where = page.evaluate(
        """(rid) => {
            const plot = document.querySelectorAll('.js-plotly-plot')[0];
            let scatter = 0;
            for (const tr of plot.data) {
                if (tr.type && tr.type !== 'scatter') continue;
                const k = (tr.customdata || []).indexOf(rid);
                if (k >= 0) return [scatter, k];
                scatter += 1;
            }
            return null;
        }""",
        int8_id,
    )
    assert where is not None, "the int8 result has no marker on the size chart"
    marker = charts.first.locator(".scatterlayer .trace").nth(where[0]).locator("path.point").nth(where[1])
    marker.click(force=True)
    wait_idle(page)
    page.get_by_role("heading", name=labels[int8_id]).wait_for(timeout=30_000)
    assert labels[int8_id] in page.get_by_role("combobox", name="Result", exact=True).input_value()
    detail = page.locator('[data-testid="stMain"]').inner_text()
    assert "Configuration" in detail and "Weights of" in detail
    hist = page.locator('[data-testid="stPlotlyChart"]').filter(has_text="exact zeros")
    hist.first.wait_for()
    hist.first.scroll_into_view_if_needed()
    shot(page, "compare-2-detail-histogram")

    # The 3-D view and the side-by-side comparison of both results.
    page.get_by_text("3-D view: accuracy / size / latency").click()
    page.get_by_text(re.compile("non-dominated in all three objectives")).wait_for()
    assert page.locator(".js-plotly-plot").count() >= 4  # two fronts, the 3-D view, the histogram
    box = page.get_by_role("combobox", name="Choose 2 to 4 to compare")
    for rid in results.values():
        box.click()
        box.fill(labels[rid])
        page.get_by_role("option", name=re.compile(re.escape(labels[rid]))).first.click()
        wait_idle(page)
    page.keyboard.press("Escape")  # close the option list
    wait_idle(page)
    page.get_by_text("Overlay the weights of").wait_for()
    shot(page, "compare-3-3d-side-by-side")

    # The HTML report: one self-contained file with both results, the table, configs and environment.
    with page.expect_download(timeout=120_000) as dl:
        page.get_by_role("button", name=re.compile("Download the HTML report")).click()
    report = tmp_path / "report.html"
    dl.value.save_as(report)
    html = report.read_text(encoding="utf-8")
    assert "plotly.js v" in html  # the library is embedded, not fetched
    assert not re.search(r"<script[^>]+src=[\"']https?://", html)
    for rid in results.values():
        assert rid in html and labels[rid] in html
    assert "Environment" in html and "threads used" in html and "onnxruntime" in html
    with sqlite3.connect(db) as con:
        env = json.loads(con.execute("SELECT environment FROM results LIMIT 1").fetchone()[0])
    assert str(env["cpu_model"]) in html
    rpage = page.context.new_page()
    rpage.goto(report.as_uri())
    rpage.locator(".js-plotly-plot").first.wait_for()
    assert rpage.locator(".js-plotly-plot").count() == 4
    rpage.screenshot(path=str(SCREENSHOTS / "compare-4-report.png"), full_page=True)
    rpage.close()

    # Layers: per-layer views of the selected result, then a sensitivity scan as a background job.
    nav(page, "Layers")
    page.get_by_label(re.compile("^Levels")).wait_for()
    assert page.get_by_label(re.compile("^Levels")).input_value() == "0.3, 0.5, 0.7, 0.9"
    assert "Digits CNN" in page.get_by_role("combobox", name="Model", exact=True).input_value()  # the result's model
    page.get_by_role("tab", name="Weight error").click()
    page.get_by_text("Weight error per layer").first.wait_for()
    shot(page, "compare-5-layers-error")
    page.get_by_role("tab", name="Parameters & MACs").click()
    page.get_by_text("Share of parameters and MACs").first.wait_for()
    shot(page, "compare-6-layers-share")
    page.get_by_role("button", name="Run the sensitivity scan").click()
    page.get_by_text(re.compile("Queued the scan")).wait_for()
    page.get_by_text(re.compile(r"Most sensitive at")).wait_for(timeout=JOB_TIMEOUT_S * 1000)
    wait_idle(page)
    with sqlite3.connect(db) as con:
        scans = con.execute("SELECT payload FROM analyses WHERE kind = 'sensitivity'").fetchall()
    assert len(scans) == 1
    scan = json.loads(scans[0][0])
    assert scan["levels"] == [0.3, 0.5, 0.7, 0.9] and len(scan["layers"]) == 4
    page.get_by_text(re.compile(r"Most sensitive at")).scroll_into_view_if_needed()
    shot(page, "compare-7-sensitivity")
