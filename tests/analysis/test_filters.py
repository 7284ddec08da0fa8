"""Result and job filters: model, family, status (done = points, the rest listed) and dates."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from lwdash.analysis.filters import ResultFilter, filter_jobs, filter_results, jobs_frame
from lwdash.jobs.spec import JobRecord, JobSpec, JobStatus

DAY1, DAY2 = pd.Timestamp("2026-11-20 10:00"), pd.Timestamp("2026-11-22 23:00")
FRAME = pd.DataFrame({"id": ["a", "b", "c"], "model_id": ["m1", "m1", "m2"],
                      "family": ["pruning", "quantization", "pruning"], "created_at": [DAY1, DAY2, DAY2]})


def test_results_by_model_family_and_date() -> None:
    assert list(filter_results(FRAME, ResultFilter())["id"]) == ["a", "b", "c"]
    assert list(filter_results(FRAME, ResultFilter(models=("m1",)))["id"]) == ["a", "b"]
    assert list(filter_results(FRAME, ResultFilter(families=("pruning",)))["id"]) == ["a", "c"]
    assert list(filter_results(FRAME, ResultFilter(date_from=dt.date(2026, 11, 22)))["id"]) == ["b", "c"]
    assert list(filter_results(FRAME, ResultFilter(date_to=dt.date(2026, 11, 20)))["id"]) == ["a"]
    assert filter_results(FRAME, ResultFilter(statuses=("failed",))).empty  # no 'done': no points
    assert filter_results(FRAME, ResultFilter(models=())).empty


def test_bad_filters_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown job status"):
        ResultFilter(statuses=("finished",))
    with pytest.raises(ValueError, match="reversed"):
        ResultFilter(date_from=dt.date(2026, 1, 2), date_to=dt.date(2026, 1, 1))


def test_jobs_without_points_follow_the_same_filters() -> None:
    prune = {"type": "magnitude_pruning", "version": 1, "data": {"amount": 0.9}}
    jobs = [
        JobRecord("j1", JobSpec("m1", "digits", prune), JobStatus.FAILED, error="ValueError: boom\n\ntrace",
                  created_at=DAY2.timestamp()),
        JobRecord("j2", JobSpec("m2", "digits", prune), JobStatus.RUNNING, progress=0.4, message="measuring",
                  created_at=DAY2.timestamp()),
        JobRecord("j3", JobSpec("m1", "digits", prune), JobStatus.DONE, created_at=DAY2.timestamp()),
        JobRecord("j4", JobSpec("m1", "digits", {"type": "sensitivity_scan", "data": {}}, kind="sensitivity"),
                  JobStatus.FAILED, created_at=DAY2.timestamp()),
    ]
    frame = jobs_frame(jobs)
    assert list(frame["id"]) == ["j1", "j2", "j3"]  # scans are not compression jobs
    assert frame.set_index("id").loc["j1", "error"] == "ValueError: boom"
    assert frame.set_index("id").loc["j1", "family"] == "pruning"
    flt = ResultFilter(statuses=("done", "failed", "running"))
    assert list(filter_jobs(frame, flt)["id"]) == ["j1", "j2"]  # done jobs are points, not listed
    assert list(filter_jobs(frame, ResultFilter(models=("m1",), statuses=("failed",)))["id"]) == ["j1"]
    assert filter_jobs(frame, ResultFilter(statuses=("done",))).empty
    assert "job statuses: done, failed, running" in flt.describe()


def test_the_filter_line_names_models_as_people_know_them() -> None:
    flt = ResultFilter(models=("upload/eea681da4fcdd2ef", "sample/digits_cnn"))
    line = flt.describe({"upload/eea681da4fcdd2ef": "resnet18.onnx", "sample/digits_cnn": "Digits CNN"})
    assert line.startswith("Filter: models: resnet18.onnx, Digits CNN;") and "upload/" not in line
    assert "models: upload/eea681da4fcdd2ef, sample/digits_cnn;" in flt.describe()  # no names: the ids
