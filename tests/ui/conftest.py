"""AppTest fixtures: an isolated data dir per test, no background worker, real store and results."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data dir for the app under test; the app must not spawn a worker process."""
    monkeypatch.setenv("LWDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LWDASH_NO_WORKER", "1")
    return tmp_path / "data"


def run_app(page: str | None = None) -> AppTest:
    """The real app (``app.py``), switched to ``page`` and run once."""
    at = AppTest.from_file(APP, default_timeout=60)
    if page is not None:
        at.switch_page(page)
    return at.run()


@pytest.fixture
def app() -> Callable[[str | None], AppTest]:
    """``app(page)`` runs the real app on ``page`` (the default page when ``None``)."""
    return run_app


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data dir holding two real results (magnitude pruning 0.5 and 0.8 of the digits MLP).

    Made the way a worker makes them, in immediate mode: submit, then claim -> compute -> record inline.
    """
    from lwdash.jobs.inline import run_inline
    from lwdash.jobs.spec import JobSpec, JobStatus
    from lwdash.workspace import SqliteStore

    path = tmp_path_factory.mktemp("ui-results")
    store = SqliteStore(path)
    for amount in (0.5, 0.8):
        spec = JobSpec(model_id="sample/digits_mlp", data_ref="digits",
                       technique={"type": "magnitude_pruning", "version": 1, "data": {"amount": amount}})
        job_id = store.submit(spec)
        job = run_inline(store, job_id, worker_id="ui-test")
        assert job is not None and job.id == job_id and job.status is JobStatus.DONE, job
    store.close()
    yield path


@pytest.fixture
def with_results(results_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LWDASH_DATA_DIR", str(results_dir))
    monkeypatch.setenv("LWDASH_NO_WORKER", "1")
    return results_dir
