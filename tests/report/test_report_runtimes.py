"""The report and the CSV carry each result's latency matrix: every runtime, both batches, fusion on and off, best."""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from lwdash.analysis.frame import load_results_frame
from lwdash.analysis.latency_matrix import best_runtime, matrix_frame
from lwdash.jobs.runner import RunOutput
from lwdash.jobs.spec import JobSpec
from lwdash.measure.metrics import LatencyRecord, Metrics
from lwdash.report import build_report_html, results_csv, with_model_names
from lwdash.workspace import SqliteStore

_SCALARS = {"top1_acc": 0.98, "torch_top1_acc": 0.98, "loss": 0.1, "agreement": 1.0, "onnx_bytes": 4000,
            "pt2_bytes": 5000, "params_count": 1000, "nonzero_params_count": 1000, "sparse_bytes": 4000,
            "compressed_bytes": 3000, "macs": 10_000, "threads": 1, "test_samples": 360}


def _metrics(ms: dict[str, float], notes: dict[str, str]) -> Metrics:
    recs = tuple(LatencyRecord(rt, b, v * (1 if b == 32 else 0.1), v * 1.2 * (1 if b == 32 else 0.1), 0.5)
                 for rt, v in ms.items() for b in (1, 32))
    return Metrics(**_SCALARS, latency=recs, latency_notes=notes)  # type: ignore[arg-type]


BASE = _metrics({"ort": 4.0, "ort_nofusion": 5.0, "openvino": 3.0, "torch": 6.0}, {"tvm": "TVM: not here"})
COMP = _metrics({"ort": 2.0, "ort_nofusion": 6.0, "openvino": 2.5, "torch": 7.0}, {"tvm": "TVM: not here"})


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    s = SqliteStore(tmp_path / "data")
    out = s.tmp_dir / "run"
    out.mkdir(parents=True)
    (out / "result.json").write_text("{}")
    spec = JobSpec("sample/digits_cnn", "digits", {"type": "int8_static", "version": 1, "data": {}})
    s.save_result(None, spec, RunOutput(BASE, COMP, {}, {}, (), (), {"threads": 1}, {"result.json": out / "result.json"}),
                  out)
    return s


def test_best_runtime_is_against_the_baselines_best() -> None:
    best = best_runtime(BASE, COMP)
    assert best is not None and (best.runtime, best.baseline_runtime) == ("ort", "openvino")
    assert best.speedup == pytest.approx(3.0 / 2.0) and best.same_runtime_speedup == pytest.approx(4.0 / 2.0)
    frame = matrix_frame(BASE, COMP).set_index("runtime")
    assert frame.loc["ONNX Runtime, fusion off", "b32 speed-up"] == pytest.approx(5.0 / 6.0)
    assert frame.loc["TVM (Relax, untuned)", "note"] == "TVM: not here"


def test_report_and_csv_carry_the_matrix(store: SqliteStore) -> None:
    frame = with_model_names(store, load_results_frame(store))
    html = build_report_html(store, frame, figures={})
    assert "<h2>Latency on every runtime</h2>" in html
    assert "Best runtime at batch 32: <b>ONNX Runtime</b>, 2.000 ms; the baseline's best is OpenVINO" in html
    assert "<td class=\"\">ONNX Runtime, fusion off</td><td class=\"\">off</td>" in html
    assert "fake quantization" in html and "<th>best vs baseline&#x27;s best b32</th>" in html
    back = pd.read_csv(io.StringIO(results_csv(frame)))
    row = back.iloc[0]
    assert row["best_b32_runtime"] == "ort" and row["baseline_best_b32_runtime"] == "openvino"
    assert row["best_b32_speedup"] == pytest.approx(1.5)
    assert row["ort_nofusion_b1_p90_ms"] == pytest.approx(0.72) and row["openvino_b32_compile_s"] == 0.5
    assert row["baseline_torch_b32_median_ms"] == pytest.approx(6.0)
