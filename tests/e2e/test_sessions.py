"""Several people at once, and uploads through the browser's own file chooser.

Three browser sessions (separate contexts: separate Streamlit sessions) queue a job each from the Compress
page within a second of each other and watch them on the Jobs page until the worker has run them
all; each job lands as exactly one result. Then one session uploads a pickled module (refused with
the reason) and an ONNX model (imported, its baseline measured in the background and shown live).
Screenshots land in ``test-artifacts/screenshots/sessions-*.png``.
"""
from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
import torch
from conftest import choose, nav, shot, wait_idle, wait_jobs_done
from torch import nn

pytestmark = pytest.mark.e2e

JOB_TIMEOUT_S = 300
MODELS = ("Digits MLP (sample)", "Digits student (tiny CNN, trained alone) (sample)", "Digits CNN (sample)")


def _queue_pruning(page, model: str, amount: str) -> None:  # type: ignore[no-untyped-def]
    nav(page, "Compress")
    choose(page, "Model", model)
    choose(page, "Technique", "pruning · Magnitude pruning (unstructured)")
    page.get_by_label(re.compile(r"^Amount")).first.fill(amount)


def test_three_sessions_submit_and_watch_jobs_at_once(browser, app_server) -> None:  # type: ignore[no-untyped-def]
    url = str(app_server["url"])
    db = Path(str(app_server["data_dir"])) / "lwdash.sqlite3"
    contexts = [browser.new_context(viewport={"width": 1440, "height": 1000}) for _ in MODELS]
    try:
        pages = [ctx.new_page() for ctx in contexts]
        for page, model in zip(pages, MODELS, strict=True):
            page.set_default_timeout(60_000)
            page.goto(url)
            page.get_by_role("heading", name="Models").wait_for()
            wait_idle(page)
            _queue_pruning(page, model, "0.3")
        with sqlite3.connect(db) as con:
            before = {r[0] for r in con.execute("SELECT id FROM jobs")}
        for page in pages:  # the three submits, back to back
            page.get_by_role("button", name="Queue jobs").click()
        for page in pages:
            page.get_by_text(re.compile(r"Queued 1 job")).wait_for()
        with sqlite3.connect(db) as con:
            jobs = {r[0]: r[1] for r in con.execute("SELECT id, spec FROM jobs") if r[0] not in before}
        assert len(jobs) == 3
        mine = {}
        for page in pages:  # each session confirms its own job, not the others'
            shown = set(re.findall(r"`?([0-9a-f]{8})`?", page.get_by_text(re.compile(r"Queued 1 job")).inner_text()))
            mine[page] = [j for j in jobs if j[:8] in shown]
            assert len(mine[page]) == 1
        assert sorted(j for ids in mine.values() for j in ids) == sorted(jobs)

        for page in pages:
            nav(page, "Jobs")
        rows = wait_jobs_done(db, list(jobs), JOB_TIMEOUT_S)
        assert [r[1] for r in rows] == ["done"] * 3, rows
        for page in pages:  # every session's live panel shows all three done, without a reload
            for job_id in jobs:
                page.get_by_text(re.compile(rf"· done ·.*job {job_id[:8]}")).first.wait_for()
        shot(pages[0], "sessions-1-jobs")

        with sqlite3.connect(db) as con:
            marks = ",".join("?" * len(jobs))
            landed = con.execute(f"SELECT job_id, model_id FROM results WHERE job_id IN ({marks})", list(jobs)).fetchall()
        assert sorted(r[0] for r in landed) == sorted(jobs)  # one result per job, none twice
        models = {json.loads(spec)["model_id"] for spec in jobs.values()}
        assert {r[1] for r in landed} == models and len(models) == 3
    finally:
        for ctx in contexts:
            ctx.close()


def test_browser_uploads_refuse_a_pickle_and_measure_an_onnx_model(page, app_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from lwdash.measure import export_onnx

    url = str(app_server["url"])
    db = Path(str(app_server["data_dir"])) / "lwdash.sqlite3"
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 24), nn.ReLU(), nn.Linear(24, 10)).eval()
    pickled = tmp_path / "whole_module.pt"
    torch.save(net, pickled)
    onnx_path = export_onnx(net, (1, 8, 8), tmp_path / "my_net.onnx")

    page.goto(url)
    page.get_by_role("heading", name="Models").wait_for()
    wait_idle(page)
    chooser = page.locator('[data-testid="stFileUploaderDropzoneInput"]').first
    chooser.set_input_files(str(pickled))
    page.get_by_text(re.compile(r"whole_module\.pt was not imported")).wait_for()
    error = page.get_by_text(re.compile(r"whole_module\.pt was not imported")).inner_text()
    assert "arbitrary code" in error and "state dict" in error
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM models WHERE name = 'whole_module.pt'").fetchone()[0] == 0
    shot(page, "sessions-2-pickle-refused")

    chooser.set_input_files(str(onnx_path))
    page.get_by_text(re.compile(r"Imported my_net\.onnx as")).wait_for()
    wait_idle(page)
    page.get_by_role("heading", name="my_net.onnx").wait_for()
    with sqlite3.connect(db) as con:
        (model_id,) = con.execute("SELECT id FROM models WHERE name = 'my_net.onnx'").fetchone()
        (job_id,) = con.execute("SELECT id FROM jobs WHERE spec LIKE ? AND spec LIKE '%\"baseline\"%'",
                                (f'%"{model_id}"%',)).fetchone()
    (row,) = wait_jobs_done(db, [job_id], JOB_TIMEOUT_S)
    assert row[1] == "done", row
    # The live progress fragment reruns the page when the measurement is stored.
    page.get_by_text("Top-1, ONNX Runtime").wait_for(timeout=60_000)
    # The metrics and the command that reproduces them come in the same rerun; wait for its last element.
    page.get_by_text("python -m lwdash measure --model").wait_for(timeout=60_000)
    wait_idle(page)
    with sqlite3.connect(db) as con:
        payload = json.loads(con.execute("SELECT payload FROM analyses WHERE job_id = ?", (job_id,)).fetchone()[0])
    main = page.locator('[data-testid="stMain"]').inner_text()
    assert f"{100 * payload['metrics']['top1_acc']:.2f} %" in main
    assert f"{payload['metrics']['macs']:,}" in main and "python -m lwdash measure --model" in main
    shot(page, "sessions-3-onnx-measured")
