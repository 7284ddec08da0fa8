"""The Search page in a real browser: start a search, watch its trials run on the worker, read its front.

Screenshots land in ``test-artifacts/screenshots/search-*.png``.
"""
from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import pytest
from conftest import choose, nav, shot, wait_idle

pytestmark = pytest.mark.e2e

SEARCH_TIMEOUT_S = 300


def test_start_a_search_and_see_its_trials_fill_the_front(page, app_server) -> None:  # type: ignore[no-untyped-def]
    url = str(app_server["url"])
    db = Path(str(app_server["data_dir"])) / "lwdash.sqlite3"
    page.goto(url)
    page.get_by_role("heading", name="Models").wait_for()
    wait_idle(page)
    nav(page, "Search")
    choose(page, "Model", "Digits CNN (sample)")
    choose(page, "Technique", "structured_pruning · Structured pruning (channels)")
    page.get_by_role("spinbutton", name="Ratio: from").fill("0.2")
    page.get_by_role("spinbutton", name="Ratio: to").fill("0.8")
    page.get_by_role("spinbutton", name="Trials").fill("3")
    page.get_by_label(re.compile("^Other knobs")).fill("fine_tune_epochs=1")
    shot(page, "search-1-form")
    page.get_by_role("button", name="Start the search").click()
    page.get_by_text(re.compile("Started search")).wait_for()
    with sqlite3.connect(db) as con:
        (search_id,) = con.execute("SELECT id FROM searches ORDER BY created_at DESC LIMIT 1").fetchone()

    deadline = time.monotonic() + SEARCH_TIMEOUT_S
    while True:  # the worker the app started proposes, runs and measures the trials
        with sqlite3.connect(db) as con:
            status, message = con.execute("SELECT status, message FROM searches WHERE id = ?", (search_id,)).fetchone()
        if status != "running":
            break
        assert time.monotonic() < deadline, message
        time.sleep(1.0)
    assert (status, message) == ("done", "3 of 3 trials measured")

    # The page's live section redraws itself once the search ends: the trials table and both charts.
    page.get_by_text(re.compile(r"3 of 3 trials finished")).wait_for(timeout=60_000)
    wait_idle(page)
    with sqlite3.connect(db) as con:
        trials = con.execute("SELECT t.trial, t.params, j.result_id FROM search_trials t JOIN jobs j ON j.id = t.job_id"
                             " WHERE t.search_id = ? ORDER BY t.trial", (search_id,)).fetchall()
    assert len(trials) == 3 and all(r[2] for r in trials)
    page.get_by_role("heading", name=f"Search {search_id[:8]}").wait_for()
    page.get_by_text("Is the search still improving?").first.wait_for()
    # Each trial's result is a point of the trials chart, and nothing else is (the baseline has no id).
    page.wait_for_function("""(n) => [...document.querySelectorAll('.js-plotly-plot')].some(plot =>
        plot.layout && plot.layout.title && String(plot.layout.title.text).includes('Trials:')
        && plot.data.flatMap(tr => tr.customdata || []).filter(Boolean).length === n)""", arg=len(trials))
    drawn = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
        .filter(plot => String((plot.layout.title || {}).text || '').includes('Trials:'))
        .flatMap(plot => plot.data.flatMap(tr => tr.customdata || []).filter(Boolean))""")
    assert sorted(drawn) == sorted(r[2] for r in trials)
    wait_idle(page)
    shot(page, "search-2-done")
