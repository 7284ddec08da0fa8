"""python -m lwdash: techniques, run (inline, real model and data), bad input exits 2."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lwdash.cli import UsageError, build_specs, main
from lwdash.techniques import get_technique, list_techniques

ROOT = Path(__file__).resolve().parents[1]


def test_techniques_command_lists_magnitude_pruning() -> None:
    proc = subprocess.run([sys.executable, "-m", "lwdash", "techniques", "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = {r["key"]: r for r in json.loads(proc.stdout)}
    mp = rows["magnitude_pruning"]
    assert mp["family"] == "pruning"
    amount = next(k for k in mp["knobs"] if k["name"] == "amount")
    assert amount["default"] == 0.5 and amount["bounds"] == {"ge": 0.0, "lt": 1.0} and amount["help"]
    assert mp["when"] == get_technique("magnitude_pruning").when and "structured pruning" in mp["when"]


def test_run_writes_artifacts_and_prints_a_comparison(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc = main(["run", "--model", "digits_mlp", "--data", "digits", "--technique", "magnitude_pruning",
               "--set", "amount=0.5", "--out", str(out), "--quiet"])
    assert rc == 0
    for name in ("model.onnx", "model.pt2", "result.json", "model_card.md"):
        assert (out / name).is_file(), name
    result = json.loads((out / "result.json").read_text())
    for key in ("baseline", "compressed"):
        assert result[key]["top1_acc"] > 0.5 and result[key]["onnx_bytes"] > 0
    assert result["compressed"]["nonzero_params_count"] < result["baseline"]["nonzero_params_count"]
    printed = capsys.readouterr().out
    assert "top-1 (ORT)" in printed and "baseline" in printed and "compressed" in printed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "amount=1.5"], "amount must be < 1.0"),
        (["--set", "amount=lots"], "amount"),
        (["--set", "amout=0.5"], "has no knob 'amout'"),
        (["--set", "amount"], "expected name=value"),
    ],
)
def test_bad_set_exits_2_with_the_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    rc = main(["run", "--model", "digits_mlp", "--technique", "magnitude_pruning", *args, "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert not (tmp_path / "o").exists()


def test_bad_model_and_technique_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--model", "no_such_model", "--technique", "magnitude_pruning", "--out", str(tmp_path)]) == 2
    assert "neither a sample" in capsys.readouterr().err
    assert main(["run", "--model", "digits_mlp", "--technique", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown technique 'nope'" in capsys.readouterr().err


def test_sweep_builds_a_grid() -> None:
    specs = build_specs("magnitude_pruning", ["scope=per_layer"], ["amount=0.3,0.5,0.7"],
                        model_id="sample/digits_mlp", data_ref="digits", seed=1, threads=1)
    assert [s.technique["data"]["amount"] for s in specs] == [0.3, 0.5, 0.7]
    assert all(s.technique["data"]["scope"] == "per_layer" and s.seed == 1 for s in specs)
    with pytest.raises(UsageError, match="both --set and --sweep"):
        build_specs("magnitude_pruning", ["amount=0.1"], ["amount=0.2,0.3"], model_id="m", data_ref="digits",
                    seed=0, threads=1)


def test_submit_and_jobs_use_the_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lwdash.jobs.spec import JobStatus
    from lwdash.workspace import SqliteStore

    data_dir = tmp_path / "data"
    rc = main(["submit", "--data-dir", str(data_dir), "--model", "digits_mlp", "--technique", "magnitude_pruning",
               "--sweep", "amount=0.3,0.6"])
    assert rc == 0
    jobs = SqliteStore(data_dir).list_jobs()
    assert len(jobs) == 2 and all(j.status is JobStatus.QUEUED for j in jobs)
    assert sorted(j.spec.technique["data"]["amount"] for j in jobs) == [0.3, 0.6]
    capsys.readouterr()
    assert main(["jobs", "--data-dir", str(data_dir)]) == 0
    listing = capsys.readouterr().out
    assert all(j.id in listing for j in jobs) and "queued" in listing


def test_pipeline_steps_and_a_sweep_into_a_step_build_a_grid() -> None:
    specs = build_specs("pipeline", [], ["step1.ratio=0.3,0.7", "step3.per_channel=true,false"],
                        steps=["structured_pruning,ratio=0.5,fine_tune_epochs=0", "fine_tune,epochs=1", "int8_static"],
                        model_id="sample/digits_cnn", data_ref="digits", seed=0, threads=1)
    grid = [(s.technique["data"]["steps"][0]["ratio"], s.technique["data"]["steps"][2]["per_channel"]) for s in specs]
    assert grid == [(0.3, True), (0.3, False), (0.7, True), (0.7, False)]
    assert all([st["technique"] for st in s.technique["data"]["steps"]] == ["structured_pruning", "fine_tune",
                                                                             "int8_static"] for s in specs)
    assert specs[1].label == "pipeline structured_pruning(ratio=0.3, fine_tune_epochs=0) > fine_tune(epochs=1) > " \
                             "int8_static(per_channel=False)"
    as_json = build_specs("pipeline", ['steps=[{"technique": "fine_tune", "epochs": 1}]'], [],
                          model_id="m", data_ref="digits", seed=0, threads=1)
    assert as_json[0].technique["data"]["steps"] == [{"technique": "fine_tune", "epochs": 1, "lr": 0.01,
                                                      "recipe": "recover", "optimizer": "sgd", "teacher_weight": 0.0}]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--technique", "pipeline", "--step", "int8_static", "--step", "fine_tune"],
         "step 1 (int8_static) is a quantization step and must be the last step"),
        (["--technique", "pipeline", "--step", "structured_pruning,ratoi=0.3"], "unknown fields for structured_pruning"),
        (["--technique", "pipeline", "--step", "fine_tune", "--sweep", "step2.epochs=1,2"], "the pipeline has steps 1 to 1"),
        (["--technique", "magnitude_pruning", "--step", "fine_tune"], "--step is for --technique pipeline"),
        (["--technique", "low_rank", "--set", "choice=fixed_rank", "--set", "rank=999"],
         "rank 999 is not below the full rank of any eligible layer"),
        (["--technique", "int8_dynamic"], "needs Linear layers"),
        (["--technique", "magnitude_pruning", "--sweep", "amount=0.5,1.2"], "amount must be < 1.0"),
    ],
)
def test_submit_refuses_bad_configs_before_queueing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    from lwdash.workspace import SqliteStore

    model = "digits_cnn" if "int8_dynamic" not in argv else "conv_only"
    if model == "conv_only":  # a conv-only model: dynamic int8 (Linear only by default) has nothing to quantize
        from torch import nn

        from lwdash.measure import export_onnx

        model = str(export_onnx(nn.Sequential(nn.Conv2d(1, 10, 8), nn.Flatten()).eval(), (1, 8, 8),
                                tmp_path / "conv_only.onnx"))
    data_dir = tmp_path / "data"
    rc = main(["submit", "--data-dir", str(data_dir), "--model", model, *argv])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and message in err, err
    assert SqliteStore(data_dir).list_jobs() == [] if data_dir.exists() else True


def test_two_knob_sweep_queues_the_whole_grid(tmp_path: Path) -> None:
    from lwdash.workspace import SqliteStore

    data_dir = tmp_path / "data"
    assert main(["submit", "--data-dir", str(data_dir), "--model", "digits_mlp", "--technique", "magnitude_pruning",
                 "--sweep", "amount=0.5,0.8", "--sweep", "scope=global,per_layer"]) == 0
    points = sorted((j.spec.technique["data"]["amount"], j.spec.technique["data"]["scope"])
                    for j in SqliteStore(data_dir).list_jobs())
    assert points == [(0.5, "global"), (0.5, "per_layer"), (0.8, "global"), (0.8, "per_layer")]


@pytest.mark.parametrize("key", sorted(t.key for t in list_techniques()))
def test_reproduce_command_reads_back_as_the_same_job(key: str) -> None:
    """The command the app shows beside a result is parsed by the CLI into the very same config."""
    import shlex

    from lwdash.cli import build_parser, reproduce_command
    from lwdash.techniques import config_to_dict, get_technique

    technique = config_to_dict(key, get_technique(key).config_type())
    line = reproduce_command("run", model="digits_cnn", data="/tmp/my data.npz", technique=technique, seed=3,
                             threads=2, extra=["--out", "out/x"])
    argv = shlex.split(line)
    assert argv[:4] == ["python", "-m", "lwdash", "run"]
    args = build_parser().parse_args(argv[3:])
    assert (args.model, args.data, args.seed, args.threads, args.out) == ("digits_cnn", "/tmp/my data.npz", 3, 2,
                                                                          "out/x")
    (spec,) = build_specs(args.technique, args.set, args.sweep, model_id=args.model, data_ref=args.data,
                          seed=args.seed, threads=args.threads, steps=args.step)
    assert spec.technique == technique


# ---------------------------------------------------------------------- bundled data sets (Fashion-MNIST)


@pytest.fixture(scope="module")
def tiny_fashion_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-conv CNN for 1x28x28 inputs as a user would export it (the Fashion-MNIST samples are not relied on).

    The TorchScript-based exporter takes a few seconds here, the dynamo one several times longer.
    """
    import warnings

    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.ReLU(), nn.Conv2d(4, 8, 3, stride=2), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)).eval()
    path = tmp_path_factory.mktemp("tiny28") / "tiny28.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (torch.zeros(1, 1, 28, 28),), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    return path


@pytest.fixture
def no_fashion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fashion-MNIST absent: its folder is an empty one."""
    folder = tmp_path / "empty"
    folder.mkdir()
    monkeypatch.setenv("LWDASH_FASHION_MNIST_DIR", str(folder))
    return folder


def test_run_on_fashion_mnist_quick_measures_on_its_2000_test_images(
    tmp_path: Path, tiny_fashion_onnx: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    rc = main(["run", "--model", str(tiny_fashion_onnx), "--data", "Fashion_MNIST_quick", "--technique",
               "magnitude_pruning", "--set", "amount=0.5", "--out", str(out), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    result = json.loads((out / "result.json").read_text())
    assert result["data"]["ref"] == "fashion_mnist_quick"  # the canonical name is what the result records
    assert (result["data"]["input_shape"], result["data"]["test_samples"], result["data"]["calib_samples"]) == (
        [1, 28, 28], 2000, 500)
    assert result["baseline"]["test_samples"] == result["compressed"]["test_samples"] == 2000
    assert result["compressed"]["nonzero_params_count"] < result["baseline"]["nonzero_params_count"]


def test_submit_and_search_record_the_bundled_name_and_refuse_a_misfit(
    tmp_path: Path, tiny_fashion_onnx: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lwdash.workspace import SqliteStore

    data_dir = tmp_path / "data"
    assert main(["submit", "--data-dir", str(data_dir), "--model", str(tiny_fashion_onnx), "--data", "fashion_mnist",
                 "--technique", "magnitude_pruning"]) == 0
    assert main(["search", "--data-dir", str(data_dir), "--model", str(tiny_fashion_onnx), "--data",
                 "fashion_mnist_quick", "--technique", "magnitude_pruning", "--trials", "2"]) == 0
    store = SqliteStore(data_dir)
    assert [j.spec.data_ref for j in store.list_jobs()] == ["fashion_mnist"]
    assert [s.data_ref for s in store.list_searches()] == ["fashion_mnist_quick"]
    capsys.readouterr()
    assert main(["submit", "--data-dir", str(data_dir), "--model", "digits_mlp", "--data", "fashion_mnist",
                 "--technique", "magnitude_pruning"]) == 2
    assert "model expects input (1, 8, 8) but the data set" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["run", "measure", "scan", "submit", "search"])
def test_an_absent_data_set_exits_2_with_the_install_hint(
    command: str, tmp_path: Path, no_fashion: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [command, "--model", "digits_mlp", "--data", "fashion_mnist"]
    argv += {"run": ["--technique", "magnitude_pruning", "--out", str(tmp_path / "o")],
             "submit": ["--technique", "magnitude_pruning", "--data-dir", str(tmp_path / "d")],
             "search": ["--technique", "magnitude_pruning", "--data-dir", str(tmp_path / "d")]}.get(command, [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --data fashion_mnist: Fashion-MNIST is not installed")
    assert "sudo apt-get install dataset-fashion-mnist" in err
    assert not (tmp_path / "o").exists()
    if (tmp_path / "d").exists():
        from lwdash.workspace import SqliteStore

        store = SqliteStore(tmp_path / "d")
        assert store.list_jobs() == [] and store.list_searches() == []


def test_datasets_command_lists_the_registry_and_the_hint(
    no_fashion: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lwdash.workspace import SqliteStore

    assert main(["datasets", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert list(rows) == ["digits", "fashion_mnist", "fashion_mnist_quick"]
    assert rows["digits"]["default"] and rows["digits"]["available"] and rows["digits"]["input_shape"] == [1, 8, 8]
    assert not rows["fashion_mnist"]["available"] and "apt-get install" in rows["fashion_mnist"]["unavailable"]
    assert main(["datasets"]) == 0
    printed = capsys.readouterr().out
    assert "digits (default)" in printed and "fashion_mnist: Fashion-MNIST is not installed" in printed
    # digits stays the default when --data is left out, and the app's commands leave it out
    from lwdash.cli import build_parser, reproduce_command

    assert build_parser().parse_args(["measure", "--model", "digits_mlp"]).data is None
    assert reproduce_command("measure", model="digits_mlp", data="digits") == "python -m lwdash measure --model digits_mlp"
    assert reproduce_command("measure", model="m", data="fashion_mnist").endswith("--data fashion_mnist")
    assert main(["submit", "--data-dir", str(tmp_path / "d"), "--model", "digits_mlp", "--technique",
                 "magnitude_pruning"]) == 0
    assert [j.spec.data_ref for j in SqliteStore(tmp_path / "d").list_jobs()] == ["digits"]
