"""The whole path in a real browser: pick a sample, queue a job, watch it, find its point, download it.

Drives `streamlit run app.py` (with its own data dir and the local worker it starts) through
Debian's chromium. Screenshots of every step land in ``test-artifacts/screenshots/spine-*.png``.
"""
from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from conftest import choose, nav, shot, wait_idle, wait_jobs_done

from lwdash.data.digits import load_digits

pytestmark = pytest.mark.e2e

JOB_TIMEOUT_S = 240


def _onnx_top1(path: Path) -> float:
    data = load_digits()
    x = data.test.x.numpy().astype(np.float32)
    y = data.test.y.numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    return float((logits.argmax(1) == y).mean())


def test_pick_sample_queue_job_see_point_and_download(page, app_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = str(app_server["url"])
    data_dir = Path(str(app_server["data_dir"]))

    # 1. Models: the gallery is there at start; pick the CNN sample.
    page.goto(url)
    select = page.locator(".st-key-models-pick-sample-digits_cnn button")
    select.wait_for()
    select.click()
    page.locator(".st-key-models-pick-sample-digits_cnn button", has_text="Selected").wait_for()
    wait_idle(page)
    shot(page, "spine-1-models")

    db = data_dir / "lwdash.sqlite3"
    with sqlite3.connect(db) as con:  # other browser tests may share this app and its store
        jobs_before = {r[0] for r in con.execute("SELECT id FROM jobs")}

    # 2. Compress: the picked model is preselected; magnitude pruning at two ratios queues two jobs.
    nav(page, "Compress")
    page.get_by_role("heading", name="Compress").wait_for()
    wait_idle(page)
    assert "Digits CNN" in page.get_by_role("combobox", name="Model").input_value()
    choose(page, "Technique", "pruning · Magnitude pruning (unstructured)")
    amount = page.get_by_label(re.compile(r"^Amount|^Ratio|^Sparsity", re.I)).first
    amount.fill("0.5, 0.8")
    shot(page, "spine-2-compress-form")
    page.get_by_role("button", name="Queue jobs").click()
    page.get_by_text(re.compile(r"Queued 2 job")).wait_for()
    shot(page, "spine-3-compress-queued")

    # 3. Jobs: both finish in the background worker, shown live without a page reload.
    nav(page, "Jobs")
    page.get_by_role("heading", name="Jobs").wait_for()
    with sqlite3.connect(db) as con:
        mine = [r[0] for r in con.execute("SELECT id FROM jobs") if r[0] not in jobs_before]
    assert len(mine) == 2
    marks = ",".join("?" * len(mine))
    rows = wait_jobs_done(db, mine, JOB_TIMEOUT_S)
    assert [r[1] for r in rows] == ["done", "done"], rows
    for job_id in mine:  # the live panel shows them done without a reload
        page.get_by_text(re.compile(rf"· done ·.*job {job_id[:8]}")).first.wait_for()
    shot(page, "spine-4-jobs-done")

    # 4. Compare: the two points sit on the accuracy-vs-size chart beside the baseline.
    nav(page, "Compare")
    page.get_by_role("heading", name="Compare").wait_for()
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.wait_for()
    wait_idle(page)
    # baseline + 2 results drawn as scatter markers
    assert chart.locator("path.point").count() >= 3
    shot(page, "spine-5-compare")

    # 5. The detail of the 80 % result, its histogram, and the ONNX download.
    with sqlite3.connect(db) as con:
        rows = con.execute(f"SELECT id, label, compressed FROM results WHERE job_id IN ({marks})", mine).fetchall()
    assert len(rows) == 2
    rid, _label, compressed_json = next(r for r in rows if "amount=0.8" in r[1])
    shown_acc = json.loads(compressed_json)["top1_acc"]
    choose(page, "Result", rid[:8], exact=False)
    page.get_by_text("Weights of").wait_for()
    shot(page, "spine-6-result-detail")
    assert f"{100 * shown_acc:.2f}" in page.locator('[data-testid="stMain"]').inner_text()

    with page.expect_download() as dl:
        page.get_by_role("button", name=re.compile("Download ONNX model")).click()
    onnx_path = tmp_path / "model.onnx"
    dl.value.save_as(onnx_path)
    assert onnx_path.stat().st_size > 0
    assert _onnx_top1(onnx_path) == pytest.approx(shown_acc, abs=1e-9)
    assert rid  # the row we read is the one we downloaded

