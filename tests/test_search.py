"""Multi-objective search: configs, spaces from the registry, trials as ordinary jobs, the study rebuilt from the store."""
from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest

from lwdash.jobs.inline import run_inline, run_queued
from lwdash.jobs.spec import JobStatus
from lwdash.search import (
    OBJECTIVES,
    SAMPLERS,
    KnobRange,
    SearchConfig,
    _ask,
    advance_searches,
    check_search,
    default_space,
    search_summary,
)
from lwdash.store.records import SearchTrialRecord
from lwdash.techniques import list_techniques
from lwdash.workspace import SqliteStore

AMOUNT = KnobRange("amount", low=0.1, high=0.95)


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "data")


def test_config_round_trips_and_refuses_bad_searches() -> None:
    cfg = SearchConfig(technique="magnitude_pruning", space=(AMOUNT, KnobRange("scope", choices=("global", "per_layer"))),
                       fixed=(("fine_tune_epochs", 1),), objectives=("top1_acc", "onnx_bytes", "ort_b32_median_ms"),
                       sampler="nsga2", trials=9, parallel=3, seed=4)
    assert SearchConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.directions == ("max", "min", "min")
    bad = [
        {"space": ()},
        {"space": (AMOUNT, AMOUNT)},
        {"fixed": (("amount", 0.5),)},
        {"objectives": ("top1_acc",)},
        {"objectives": ("top1_acc", "top1_acc")},
        {"objectives": ("top1_acc", "wall_clock")},
        {"sampler": "cmaes"},
        {"trials": 0},
        {"parallel": 13, "trials": 12},
    ]
    for change in bad:
        with pytest.raises(ValueError):
            SearchConfig(**{"technique": "magnitude_pruning", "space": (AMOUNT,), **change})  # type: ignore[arg-type]
    for kw in ({"low": 0.5, "high": 0.5}, {"low": 0.0, "high": 1.0, "log": True}, {"low": 0.5, "high": 2.0,
                                                                                    "integer": True}, {}):
        with pytest.raises(ValueError):
            KnobRange("x", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", sorted(t.key for t in list_techniques() if t.key != "pipeline"))
def test_every_technique_has_a_default_space_its_config_accepts(key: str) -> None:
    space = default_space(key)
    assert space
    check_search(SearchConfig(technique=key, space=space))  # both ends of every range, and the midpoint


def test_check_search_names_what_the_knob_refuses() -> None:
    with pytest.raises(ValueError, match="no knob 'speed'"):
        check_search(SearchConfig(technique="magnitude_pruning", space=(KnobRange("speed", low=1, high=2),)))
    with pytest.raises(ValueError, match="refuses"):
        check_search(SearchConfig(technique="magnitude_pruning", space=(KnobRange("amount", low=0.5, high=1.5),)))
    with pytest.raises(ValueError, match="takes"):
        check_search(SearchConfig(technique="magnitude_pruning", space=(KnobRange("scope", choices=("all",)),)))
    with pytest.raises(ValueError, match="give choices"):
        check_search(SearchConfig(technique="magnitude_pruning", space=(KnobRange("scope", low=0, high=1),)))


def _record(k: int, params: dict[str, object], status: str = "done", acc: float = 0.9,
            size: float = 100.0) -> SearchTrialRecord:
    done = status == "done"
    return SearchTrialRecord(search_id="s", trial=k, job_id=f"j{k}", params=params, system_attrs={}, job_status=status,
                             result_id=f"r{k}" if done else None, error="" if done or status == "running" else "boom",
                             metrics={"top1_acc": acc, "onnx_bytes": size} if done else None,
                             baseline={"top1_acc": 0.95, "onnx_bytes": 120.0} if done else None)


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_every_sampler_proposes_from_a_study_rebuilt_from_the_store(sampler: str) -> None:
    """Finished, failed and still-open trials go back into the study; the next proposal is new and in range."""
    cfg = SearchConfig(technique="magnitude_pruning", space=(AMOUNT, KnobRange("scope", choices=("global", "per_layer")),
                       KnobRange("iterations", low=1, high=5, integer=True)), trials=12, parallel=2, sampler=sampler)
    history = [
        _record(0, {"amount": 0.3, "scope": "global", "iterations": 1}, acc=0.97, size=90.0),
        _record(1, {"amount": 0.6, "scope": "per_layer", "iterations": 3}, acc=0.95, size=70.0),
        _record(2, {"amount": 0.9, "scope": "global", "iterations": 5}, status="failed"),
        _record(3, {"amount": 0.5, "scope": "global", "iterations": 2}, acc=0.96, size=80.0),
        _record(4, {"amount": 0.7, "scope": "per_layer", "iterations": 4}, status="running"),
    ]
    seen = []
    for k in range(len(history), len(history) + 3):
        params, attrs = _ask(cfg, history)
        assert 0.1 <= params["amount"] <= 0.95 and params["scope"] in ("global", "per_layer")
        assert isinstance(params["iterations"], int) and 1 <= params["iterations"] <= 5
        json.dumps(attrs)  # the sampler's bookkeeping is stored as JSON
        seen.append(params)
        history.append(_record(k, params, status="running"))
    assert len({json.dumps(p, sort_keys=True) for p in seen}) == 3
    assert _ask(cfg, history[:5]) == _ask(cfg, history[:5])  # the same store, the same proposal


def test_a_search_queues_trials_as_jobs_and_ends_with_its_front(store: SqliteStore) -> None:
    cfg = SearchConfig(technique="magnitude_pruning", space=(AMOUNT,), trials=4, parallel=2, seed=1)
    search_id = store.create_search("sample/digits_mlp", "digits", cfg.to_dict())

    assert advance_searches(store) == 1
    trials = store.search_trials(search_id)
    assert [t.trial for t in trials] == [0, 1]  # two open at once, no more
    assert advance_searches(store) == 1 and len(store.search_trials(search_id)) == 2  # idempotent while open
    for t in trials:
        job = store.get_job(t.job_id)
        assert job.spec.search_id == search_id and job.spec.technique["data"] == t.params
        assert 0.1 <= t.params["amount"] <= 0.95 and f"trial {t.trial + 1}/4" in job.spec.label

    while store.get_search(search_id).status == "running":
        assert len(run_queued(store)) <= 2  # immediate mode: each queued trial run to the end here
        advance_searches(store)
    search = store.get_search(search_id)
    assert search.status == "done" and search.message == "4 of 4 trials measured", search.message
    trials = store.search_trials(search_id)
    assert [t.trial for t in trials] == [0, 1, 2, 3]
    assert len({round(t.params["amount"], 6) for t in trials}) == 4  # four different proposals
    summary = search.summary
    assert summary["measured"] == 4 and summary["failed"] == 0 and summary["front"]
    for row, t in zip(summary["trials"], trials, strict=True):
        result = store.get_result(t.result_id)  # type: ignore[arg-type]
        assert result.job_id == t.job_id and result.config["data"]["amount"] == t.params["amount"]
        assert row["values"] == [result.compressed.top1_acc, result.compressed.onnx_bytes]
    hv = summary["hypervolume"]
    assert len(hv) == 4 and all(b >= a for a, b in itertools.pairwise(hv))  # it never shrinks
    # Dense ONNX bytes do not shrink with unstructured pruning: the front is the most accurate trial(s).
    best = max(r["values"][0] for r in summary["trials"])
    assert all(r["values"][0] == best for r in summary["trials"] if r["on_front"])


def test_a_search_is_reproducible_from_its_seed(tmp_path: Path) -> None:
    proposals = []
    for run in range(2):
        store = SqliteStore(tmp_path / f"data{run}")
        cfg = SearchConfig(technique="magnitude_pruning", space=(AMOUNT, KnobRange("scope", choices=("global",
                           "per_layer"))), trials=3, seed=7)
        search_id = store.create_search("sample/digits_mlp", "digits", cfg.to_dict())
        advance_searches(store)
        proposals.append([t.params for t in store.search_trials(search_id)])
    assert proposals[0] == proposals[1]


def test_failed_trials_are_told_as_failures_and_a_search_that_never_fits_gives_up(store: SqliteStore) -> None:
    # Every trial fails in its job (as a config the model cannot take would); the search stops after three.
    cfg = SearchConfig(technique="weight_only_int8", space=(KnobRange("skip_classifier", choices=(True,)),),
                       trials=6, parallel=3)
    search_id = store.create_search("sample/digits_cnn", "digits", cfg.to_dict())
    advance_searches(store)
    for t in store.search_trials(search_id):
        assert store.claim("test") is not None
        store.fail(t.job_id, "ValueError: weight_only_int8: the model has no Linear layer left to quantize")
    advance_searches(store)
    search = store.get_search(search_id)
    assert search.status == "failed" and "first 3 trials all failed" in search.message
    assert "no Linear layer" in search.message and search.summary["failed"] == 3


def test_cancel_stops_the_open_trials_and_keeps_the_measured_ones(store: SqliteStore) -> None:
    cfg = SearchConfig(technique="magnitude_pruning", space=(AMOUNT,), trials=5, parallel=2)
    search_id = store.create_search("sample/digits_mlp", "digits", cfg.to_dict())
    advance_searches(store)
    first = store.search_trials(search_id)[0]
    job = run_inline(store, first.job_id)  # refuses unless the first trial is next in the queue
    assert job is not None and job.id == first.job_id and job.status is JobStatus.DONE, job
    assert store.cancel_search(search_id) == "running"
    advance_searches(store)
    search = store.get_search(search_id)
    assert search.status == "cancelled" and search.message == "cancelled after 1 measured trial(s)"
    statuses = [store.get_job(t.job_id).status for t in store.search_trials(search_id)]
    assert statuses == [JobStatus.DONE, JobStatus.CANCELLED]
    kept = store.search_trials(search_id)[0].result_id
    assert search.summary["measured"] == 1 and kept is not None and store.get_result(kept).job_id == first.job_id
    advance_searches(store)
    assert len(store.search_trials(search_id)) == 2  # nothing queued after the end


def test_two_workers_advancing_at_once_never_queue_a_trial_twice(store: SqliteStore) -> None:
    import threading

    cfg = SearchConfig(technique="magnitude_pruning", space=(AMOUNT,), trials=8, parallel=4, sampler="random")
    search_id = store.create_search("sample/digits_mlp", "digits", cfg.to_dict())
    stores = [SqliteStore(store.data_dir) for _ in range(4)]
    threads = [threading.Thread(target=advance_searches, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    trials = store.search_trials(search_id)
    assert [t.trial for t in trials] == [0, 1, 2, 3]
    assert len(store.list_jobs()) == 4  # one job per trial


def test_objectives_come_from_the_metric_catalogue() -> None:
    # The objectives the hand-written table offered, with its directions and labels ...
    before = {
        "top1_acc": ("max", "top-1 accuracy (ONNX Runtime)"),
        "onnx_bytes": ("min", "ONNX file size"),
        "compressed_bytes": ("min", "ONNX size after zlib"),
        "sparse_bytes": ("min", "weights under a sparse encoding"),
        "macs": ("min", "MACs per sample"),
        "ort_b1_median_ms": ("min", "ONNX Runtime latency, batch 1"),
        "ort_b32_median_ms": ("min", "ONNX Runtime latency, batch 32"),
        "torch_b32_median_ms": ("min", "PyTorch eager latency, batch 32"),
    }
    assert {k: OBJECTIVES[k] for k in before} == before and list(OBJECTIVES)[:5] == list(before)[:5]
    # ... and every registered runtime's median at every batch (PyTorch eager batch 1 too, now), and the best
    # runtime's, never a p90.
    from lwdash.runtimes import list_runtimes

    assert set(OBJECTIVES) - set(before) == {f"{rt}_b{b}_median_ms" for rt in ["best", *(r.key for r in list_runtimes())]
                                             for b in (1, 32)} - set(before)
    assert OBJECTIVES["best_b32_median_ms"] == ("min", "Best runtime latency, batch 32")
    with pytest.raises(ValueError, match="unknown objective"):
        SearchConfig(technique="magnitude_pruning", space=(AMOUNT,), objectives=("top1_acc", "ort_b32_p90_ms"))


def test_summary_of_three_objectives_has_a_front_and_no_hypervolume() -> None:
    cfg = SearchConfig(technique="magnitude_pruning", space=(AMOUNT,), objectives=tuple(list(OBJECTIVES)[:3]), trials=3)
    def trial(k: int, acc: float, size: int, zlib: int) -> SearchTrialRecord:
        return SearchTrialRecord(search_id="s", trial=k, job_id=f"j{k}", params={"amount": 0.1 * k}, system_attrs={},
                                 job_status="done", result_id=f"r{k}",
                                 metrics={"top1_acc": acc, "onnx_bytes": size, "compressed_bytes": zlib})
    failed = SearchTrialRecord(search_id="s", trial=3, job_id="j3", params={"amount": 0.5}, system_attrs={},
                               job_status="failed", error="RuntimeError: boom\ntraceback")
    summary = search_summary(cfg, [trial(0, 0.9, 100, 80), trial(1, 0.8, 100, 90), trial(2, 0.95, 120, 85), failed])
    assert summary["front"] == [0, 2] and summary["hypervolume"] is None
    assert summary["measured"] == 3 and summary["failed"] == 1
    assert summary["trials"][3]["error"] == "RuntimeError: boom" and summary["trials"][3]["values"] is None
    assert not math.isnan(summary["trials"][0]["values"][0])
