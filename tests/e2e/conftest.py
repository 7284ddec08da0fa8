"""Start the real app (`streamlit run`, on 127.0.0.1) and a real headless chromium for browser tests."""
from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("LWDASH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
#: Statuses a job does not leave.
TERMINAL = ("done", "failed", "cancelled")


# ---------------------------------------------------------------------- helpers the browser tests share


def shot(page, name: str, *, max_height: int = 7000) -> None:  # type: ignore[no-untyped-def]
    """The whole page at desktop width into ``SCREENSHOTS/<name>.png`` (Streamlit scrolls inside stMain,
    so the viewport grows to fit, up to ``max_height``)."""
    size = page.viewport_size
    height = page.evaluate("document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height), max_height))})
    page.wait_for_timeout(900)  # let plotly re-lay out and finish its transition
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    page.set_viewport_size(size)


def wait_idle(page, timeout_ms: int = 90_000) -> None:  # type: ignore[no-untyped-def]
    """Until Streamlit has finished the current script run (no 'Running...' status widget)."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=timeout_ms)


def nav(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """Open a page from the sidebar and wait for its heading and its script run."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name).click()
    page.get_by_role("heading", name=name).first.wait_for()
    wait_idle(page)


def choose(page, label: str, option: str, *, exact: bool = True) -> None:  # type: ignore[no-untyped-def]
    """Pick ``option`` in the selectbox labelled ``label`` (typing filters the virtualised list first)."""
    box = page.get_by_role("combobox", name=label)
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=exact).first.click()
    wait_idle(page)


def job_rows(db: Path, where: str = "", params: tuple[object, ...] = ()) -> list[tuple[str, str, str]]:
    """``(id, status, error)`` of the store's jobs (read straight from its SQLite file)."""
    with sqlite3.connect(db) as con:
        return con.execute(f"SELECT id, status, error FROM jobs {where}", params).fetchall()


def wait_jobs_done(db: Path, ids: list[str], timeout_s: float) -> list[tuple[str, str, str]]:
    """Poll until every job in ``ids`` is terminal; their rows in the order of ``ids``."""
    marks = ",".join("?" * len(ids))
    deadline = time.monotonic() + timeout_s
    while True:
        rows = {r[0]: r for r in job_rows(db, f"WHERE id IN ({marks})", tuple(ids))}
        if len(rows) == len(ids) and all(r[1] in TERMINAL for r in rows.values()):
            return [rows[i] for i in ids]
        if time.monotonic() > deadline:
            raise TimeoutError(f"jobs not finished after {timeout_s} s: {sorted(rows.values())}")
        time.sleep(1.0)


# ---------------------------------------------------------------------- fixtures


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not become healthy in {timeout_s} s")


def _kill_workers(data_dir: Path) -> None:
    db = data_dir / "lwdash.sqlite3"
    if not db.exists():
        return
    with sqlite3.connect(db) as con:
        pids = [row[0] for row in con.execute("SELECT pid FROM workers")]
    for pid in pids:
        try:
            os.killpg(os.getpgid(pid), signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """A real `streamlit run app.py` on a free loopback port, with its own data dir and worker."""
    data_dir = tmp_path_factory.mktemp("lwdash-e2e-data")
    port = _free_port()
    env = {**os.environ, "LWDASH_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    env.pop("LWDASH_NO_WORKER", None)
    log = open(data_dir / "streamlit.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield {"url": url, "data_dir": data_dir}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        _kill_workers(data_dir)
        log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, app_server):  # type: ignore[no-untyped-def]
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield pg
    ctx.close()
