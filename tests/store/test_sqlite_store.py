"""The store on both backends (SQLite and in-memory): the job queue's lifecycle and atomic claims, workers,
results, revisions; and what only SQLite promises (WAL, per-thread connections, claims across processes)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from _store_fakes import fake_output, spec

from lwdash.analysis.frame import load_results_frame
from lwdash.jobs.spec import JobSpec, JobStatus
from lwdash.store import NotFoundError
from lwdash.workspace import MemoryStore, SqliteStore, Store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return SqliteStore(tmp_path / "data") if request.param == "sqlite" else MemoryStore(tmp_path / "data")


only_sqlite = pytest.mark.parametrize("store", ["sqlite"], indirect=True)


def test_claim_is_atomic_across_threads(store: Store) -> None:
    ids = store.submit_many([spec(i) for i in range(40)])
    got: dict[str, list[str]] = {}
    start = threading.Event()

    def claim_all(name: str) -> None:
        start.wait(timeout=60)
        got[name] = []
        while (job := store.claim(name)) is not None:
            got[name].append(job.id)

    threads = [threading.Thread(target=claim_all, args=(f"thread{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join(timeout=60)
    claimed = [j for mine in got.values() for j in mine]
    assert sorted(claimed) == sorted(ids) and len(claimed) == len(set(claimed))
    assert all(store.get_job(j).worker == name for name, mine in got.items() for j in mine)


@only_sqlite
def test_layout_and_wal(store: SqliteStore) -> None:
    for sub in ("models", "datasets", "artifacts", "tmp", "logs"):
        assert (store.data_dir / sub).is_dir()
    mode = store.backend._conn().execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_opening_waits_for_a_writer_on_a_new_database(tmp_path: Path) -> None:
    """Two processes opening a new data directory at once (the app and the worker it starts).

    While one connection writes to a database still in rollback mode, SQLite refuses the
    switch to WAL at once, without its busy timeout: opening must wait, not fail.
    """
    import sqlite3

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    other = sqlite3.connect(data_dir / "lwdash.sqlite3", isolation_level=None)
    other.execute("CREATE TABLE other_app (a INTEGER)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO other_app VALUES (1)")
    opened: list[SqliteStore] = []
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            opened.append(SqliteStore(data_dir))
        except BaseException as e:
            errors.append(e)

    opener = threading.Thread(target=open_store)
    opener.start()
    time.sleep(0.3)
    assert opener.is_alive() and not errors  # waiting for the writer, not failed
    other.execute("COMMIT")
    opener.join(30)
    assert not errors and len(opened) == 1
    assert opened[0].backend._conn().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()


def test_job_lifecycle(store: SqliteStore) -> None:
    rev0 = store.revision("jobs")
    job_id = store.submit(spec(1))
    job = store.get_job(job_id)
    assert job.status is JobStatus.QUEUED and job.spec == spec(1) and job.attempts == 0
    assert store.revision("jobs") > rev0

    claimed = store.claim("w1")
    assert claimed is not None and claimed.id == job_id
    assert claimed.status is JobStatus.RUNNING and claimed.worker == "w1" and claimed.attempts == 1
    assert claimed.started_at is not None and claimed.heartbeat_at is not None
    assert store.claim("w2") is None  # nothing else queued

    assert store.update_progress(job_id, 0.4, "pruning") is False
    job = store.get_job(job_id)
    assert (job.progress, job.message) == (0.4, "pruning")

    assert store.finish(job_id, "r1") is True
    job = store.get_job(job_id)
    assert job.status is JobStatus.DONE and job.result_id == "r1" and job.progress == 1.0
    assert job.finished_at is not None and job.finished_at >= job.started_at  # type: ignore[operator]
    assert store.fail(job_id, "late") is False  # terminal stays terminal
    with pytest.raises(ValueError, match="only failed or cancelled"):
        store.retry(job_id)


def test_claim_order_is_fifo_and_submit_many_is_one_batch(store: SqliteStore) -> None:
    ids = store.submit_many([spec(i) for i in range(5)])
    assert len(set(ids)) == 5
    claimed = [store.claim("w") for _ in range(5)]
    assert [j.id for j in claimed if j] == ids
    assert store.list_jobs(status="running")[0].id == ids[-1]  # newest first
    assert store.count_jobs()[JobStatus.RUNNING] == 5


def test_submit_many_is_all_or_nothing(store: SqliteStore) -> None:
    with pytest.raises(TypeError):
        store.submit_many([spec(0), "not a spec"])  # type: ignore[list-item]
    assert store.list_jobs() == []


def test_cancel_queued_and_running_then_retry(store: SqliteStore) -> None:
    a, b = store.submit_many([spec(0), spec(1)])
    assert store.claim("w") is not None  # a is running
    assert store.cancel(b) is JobStatus.CANCELLED
    assert store.get_job(b).status is JobStatus.CANCELLED

    assert store.cancel(a) is JobStatus.RUNNING  # flagged; the worker kills it
    job = store.get_job(a)
    assert job.status is JobStatus.RUNNING and job.cancel_requested
    assert store.update_progress(a, 0.5, "x") is True  # the job's process can see the request
    assert store.mark_cancelled(a) is True
    assert store.get_job(a).status is JobStatus.CANCELLED

    store.retry(a)
    job = store.get_job(a)
    assert job.status is JobStatus.QUEUED and not job.cancel_requested and job.error == "" and job.started_at is None
    again = store.claim("w2")
    assert again is not None and again.id == a and again.attempts == 2
    with pytest.raises(NotFoundError):
        store.cancel("nope")


def test_fail_then_retry_goes_to_the_back_of_the_queue(store: SqliteStore) -> None:
    first, second = store.submit_many([spec(0), spec(1)])
    assert store.claim("w").id == first  # type: ignore[union-attr]
    assert store.fail(first, "ValueError: boom")
    assert store.get_job(first).error == "ValueError: boom"
    store.retry(first)
    assert store.claim("w").id == second  # type: ignore[union-attr]
    assert store.claim("w").id == first  # type: ignore[union-attr]


def test_recover_stale_fails_only_silent_running_jobs(store: SqliteStore) -> None:
    stale, fresh, queued = store.submit_many([spec(0), spec(1), spec(2)])
    store.claim("dead-worker")
    store.claim("live-worker")
    # Age the first job's heartbeat by 100 s, as if its worker had died.
    store.backend.update("jobs", stale, {"heartbeat_at": (store.get_job(stale).heartbeat_at or 0) - 100})
    assert store.recover_stale(30) == [stale]
    job = store.get_job(stale)
    assert job.status is JobStatus.FAILED
    assert "no heartbeat for 100 s" in job.error and "retry it" in job.error
    assert store.get_job(fresh).status is JobStatus.RUNNING
    assert store.get_job(queued).status is JobStatus.QUEUED
    assert store.recover_stale(30) == []


def test_requeue_keeps_attempts(store: SqliteStore) -> None:
    job_id = store.submit(spec(0))
    store.claim("w")
    assert store.requeue(job_id, "worker stopped")
    job = store.get_job(job_id)
    assert job.status is JobStatus.QUEUED and job.attempts == 1 and "worker stopped" in job.message
    assert store.claim("w").attempts == 2  # type: ignore[union-attr]


_CLAIMER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from lwdash.workspace import MemoryStore, SqliteStore, Store
    store = SqliteStore(sys.argv[1])
    Path(sys.argv[3] + "." + sys.argv[2]).touch()  # ready
    while not Path(sys.argv[3]).exists():  # wait for "go"
        time.sleep(0.002)
    got = []
    while (job := store.claim(sys.argv[2])) is not None:
        got.append(job.id)
    print(" ".join(got))
    """
)


@only_sqlite
def test_claim_is_atomic_across_threads_and_processes(store: SqliteStore) -> None:
    ids = store.submit_many([spec(i) for i in range(20)])
    go = store.tmp_dir / "go"  # every claimer starts when this file appears
    procs = [
        subprocess.Popen([sys.executable, "-c", _CLAIMER, str(store.data_dir), f"proc{i}", str(go)],
                         cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    got: dict[str, list[str]] = {}
    start = threading.Event()

    def claim_all(name: str) -> None:
        start.wait(timeout=60)
        mine = []
        while (job := store.claim(name)) is not None:
            mine.append(job.id)
        got[name] = mine

    threads = [threading.Thread(target=claim_all, args=(f"thread{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while not all((store.tmp_dir / f"go.proc{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline, "claimer processes did not start"
        time.sleep(0.01)
    go.touch()
    start.set()
    for t in threads:
        t.join(timeout=60)
    for i, p in enumerate(procs):
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        got[f"proc{i}"] = out.split()

    claimed = [j for ids_ in got.values() for j in ids_]
    assert sorted(claimed) == sorted(ids)  # every job claimed, none twice
    assert len(claimed) == len(set(claimed))
    for job in store.list_jobs():
        assert job.attempts == 1 and job.status is JobStatus.RUNNING
        assert job.id in got[job.worker]


def test_workers_register_heartbeat_and_age_out(store: SqliteStore) -> None:
    import os

    store.register_worker("w-live", os.getpid())
    store.register_worker("w-gone", 2**22 + 12345)  # no such process on this host
    live = store.live_workers(max_age_s=10)
    assert [w.id for w in live] == ["w-live"]
    live_row = store.backend.get("workers", "w-live") or {}
    store.backend.update("workers", "w-live", {"heartbeat_at": live_row["heartbeat_at"] - 60})
    assert store.live_workers(max_age_s=10) == []
    store.worker_heartbeat("w-live")
    assert [w.id for w in store.live_workers(max_age_s=10)] == ["w-live"]
    store.unregister_worker("w-live")
    assert store.live_workers(max_age_s=10) == []


@only_sqlite
def test_connections_are_per_thread(store: SqliteStore) -> None:
    job_id = store.submit(spec(0))
    seen: list[str] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            seen.append(store.get_job(job_id).id)
            assert store.backend._conn() is not main_conn
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    main_conn = store.backend._conn()
    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and seen == [job_id] * 4


def test_results_move_artifacts_and_survive_reopening(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    store = SqliteStore(data_dir)
    job_id = store.submit(spec(5))
    store.claim("w")
    out_dir = store.tmp_dir / "job-x"
    rev0 = store.revision("results")
    result_id = store.save_result(job_id, spec(5), fake_output(out_dir), out_dir)
    assert store.finish(job_id, result_id)
    assert not out_dir.exists()  # moved, not copied
    assert store.revision("results") > rev0
    store.close()

    reopened = SqliteStore(data_dir)
    rec = reopened.get_result(result_id)
    assert rec.job_id == job_id and rec.technique == "magnitude_pruning" and rec.label == "job 5"
    assert rec.artifact_dir == data_dir.resolve() / "artifacts" / result_id
    assert rec.artifacts["model.onnx"].read_bytes() == b"onnx-bytes"
    assert rec.compressed.onnx_bytes == 400 and rec.baseline.top1_acc == 0.9
    assert rec.notes == ("zeros do not speed up dense kernels",)
    assert rec.steps == ({"step": "prune", "sparsity": 0.5},)
    assert rec.compressed_weights["layers"][0]["max"] == 0.5
    assert reopened.get_job(job_id).result_id == result_id
    assert [r.id for r in reopened.list_results(with_weights=False)] == [result_id]
    assert reopened.list_results(with_weights=False)[0].baseline_weights == {}

    frame = load_results_frame(reopened)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["size_ratio"] == pytest.approx(0.4)
    assert row["ort_b32_speedup"] == pytest.approx(2.0)
    assert row["acc_delta"] == pytest.approx(-0.02)
    assert row["baseline_onnx_bytes"] == 1000 and row["cfg.amount"] == pytest.approx(0.5)

    reopened.delete_result(result_id)
    assert not rec.artifact_dir.exists()
    with pytest.raises(NotFoundError):
        reopened.get_result(result_id)


def test_results_frame_empty_has_columns(store: SqliteStore) -> None:
    frame = load_results_frame(store)
    assert frame.empty
    for col in ("id", "label", "top1_acc", "baseline_top1_acc", "size_ratio", "ort_b32_speedup", "acc_delta"):
        assert col in frame.columns


def test_revision_rejects_unknown_table(store: SqliteStore) -> None:
    with pytest.raises(ValueError, match="unknown tables"):
        store.revision("nope")


def test_jobs_of_filters_by_kind_model_data_and_status(store: SqliteStore) -> None:
    scan, other_model, baseline, done = store.submit_many([
        JobSpec(model_id="sample/digits_mlp", data_ref="digits", technique={}, kind="sensitivity"),
        JobSpec(model_id="sample/digits_cnn", data_ref="digits", technique={}, kind="sensitivity"),
        JobSpec(model_id="sample/digits_mlp", data_ref="dataset/x", technique={}, kind="baseline"),
        JobSpec(model_id="sample/digits_mlp", data_ref="digits", technique={}, kind="baseline"),
    ])
    store.submit_many([spec(i) for i in range(30)])  # compress jobs on the same model, newer than all of the above
    assert store.claim("w") is not None and store.cancel(scan) is JobStatus.RUNNING  # scan is the oldest: claimed
    assert [j.id for j in store.jobs_of("sensitivity", "sample/digits_mlp")] == [scan]
    assert [j.id for j in store.jobs_of("sensitivity", "sample/digits_cnn", status=["queued"])] == [other_model]
    assert [j.id for j in store.jobs_of("baseline", "sample/digits_mlp")] == [done, baseline]
    assert [j.id for j in store.jobs_of("baseline", "sample/digits_mlp", data_ref="digits", limit=1)] == [done]
    assert store.jobs_of("baseline", "sample/digits_mlp", status=[JobStatus.RUNNING]) == []
