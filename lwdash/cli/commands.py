"""The commands that do work: ``run``, ``measure`` and ``scan`` inline, ``submit`` to the queue, ``report``, ``worker``."""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lwdash.cli.inputs import (
    bundled_data_arg,
    load_data_arg,
    load_model_arg,
    open_store,
    runtimes_arg,
    stored_model_and_data,
    warn_without_worker,
)
from lwdash.cli.output import end_progress, label_for, print_comparison, print_table, progress_line, write_json
from lwdash.sweeps import STEP_KNOB, UsageError, build_specs, parse_assignments

if TYPE_CHECKING:
    from lwdash.annotations import Target
    from lwdash.jobs.spec import JobRecord, JobSpec
    from lwdash.models.base import LoadedModel


def _sweep_dirname(spec: JobSpec, grid_keys: Sequence[str]) -> str:
    data = spec.technique["data"]
    parts = []
    for k in grid_keys:
        m = STEP_KNOB.match(k)
        v = data["steps"][int(m.group(1)) - 1][m.group(2)] if m and k not in data else data[k]
        parts.append(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}")
    safe = "_".join(parts)
    return "".join(ch if ch.isalnum() or ch in "=._-" else "-" for ch in safe)


def cmd_run(args: argparse.Namespace) -> int:
    from lwdash.jobs.runner import execute

    args.data = bundled_data_arg(args.data) or args.data  # the result records it: the canonical name
    # The config is checked first: a typo in --set fails at once, before any model is loaded.
    specs = build_specs(args.technique, args.set, args.sweep, model_id=args.model, data_ref=args.data,
                        seed=args.seed, threads=args.threads, label=args.label, steps=args.step)
    specs = [dataclasses.replace(s, runtimes=runtimes_arg(args.runtimes)) for s in specs]
    model_id, model = load_model_arg(args.model, args.arch)
    data = load_data_arg(args.data, model.input_shape)
    specs = [dataclasses.replace(s, model_id=model_id) for s in specs]
    out_root = Path(args.out)
    grid_keys = list(parse_assignments(args.sweep, sweep=True))
    for i, spec in enumerate(specs, 1):
        out_dir = out_root / _sweep_dirname(spec, grid_keys) if grid_keys else out_root

        output = execute(spec, model, data, out_dir, progress_line(args, f"[{i}/{len(specs)}] "))
        end_progress(args)
        print(f"{spec.label or label_for(spec)} -> {out_dir}")
        print_comparison(output.baseline.flat(), output.compressed.flat())
        for note in output.notes:
            print(f"  note: {note}")
        print()
    return 0


def cmd_measure(args: argparse.Namespace) -> int:
    import tempfile

    from lwdash.analysis.baseline import measure_baseline

    chosen = runtimes_arg(args.runtimes)
    if chosen:  # a baseline measurement reads the setting: this process's
        os.environ["LWDASH_RUNTIMES"] = ",".join(chosen)
    model_id, model = load_model_arg(args.model, args.arch)
    data = load_data_arg(args.data, model.input_shape)
    with tempfile.TemporaryDirectory(prefix="lwdash-measure-") as work:
        out = measure_baseline(model, data, Path(work), progress_line(args), threads=args.threads)
    end_progress(args)
    from lwdash.measure.metrics import Metrics
    from lwdash.runtimes import LATENCY_BATCHES, list_runtimes

    m = Metrics.from_dict(out["metrics"])
    print(f"{model_id} on {data.name} ({m.test_samples} test samples, {m.threads} thread(s))")
    latency = []
    for rt in list_runtimes():  # every registered runtime, or the reason it measured nothing
        if rt.key in m.latency_notes:
            latency.append([rt.short, f"not measured: {m.latency_notes[rt.key]}"])
        latency += [[f"{rt.short} b{b} median / p90",
                     f"{m.latency_ms(rt.key, b):.3f} / {m.latency_ms(rt.key, b, 'p90'):.3f} ms"]
                    for b in LATENCY_BATCHES if m.latency_record(rt.key, b) is not None]
    print_table(["metric", "value"], [
        ["top-1 (ONNX Runtime)", f"{100 * m.top1_acc:.2f} %"],
        ["top-1 (PyTorch)", f"{100 * m.torch_top1_acc:.2f} %"],
        ["loss", f"{m.loss:.4f} nats"],
        ["model.onnx", f"{m.onnx_bytes / 1024:.1f} KiB"],
        ["model.pt2", f"{m.pt2_bytes / 1024:.1f} KiB" if m.pt2_bytes else "-"],
        ["zlib(onnx)", f"{m.compressed_bytes / 1024:.1f} KiB"],
        ["params", f"{m.params_count:,}"],
        ["MACs", f"{m.macs:,}"],
        *latency,
    ])
    write_json(args.json, {"model": model_id, **out})
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    from lwdash.analysis.sensitivity import ScanConfig, most_sensitive, run_scan, scan_technique

    levels = [v for v in (args.levels or "").split(",") if v.strip()]
    cfg = ScanConfig.from_dict({"mode": args.mode, "levels": levels, "max_layers": args.max_layers})
    model_id, model = load_model_arg(args.model, args.arch)
    data = load_data_arg(args.data, model.input_shape)
    out = run_scan(model.module, data, scan_technique(cfg), progress_line(args), threads=args.threads)
    end_progress(args)
    unit = out["level_unit"]
    print(f"{model_id} on {data.name}: {out['metric']}, unchanged model {100 * out['baseline_acc']:.2f} %; "
          f"one layer changed at a time ({unit})")
    print_table(["layer", "params", *[f"{v:g}" for v in out["levels"]]],
                 [[r["name"], f"{r['params']:,}", *[f"{100 * a:.2f}" for a in r["acc"]]] for r in out["layers"]])
    worst = ", ".join(f"{name} ({-drop:+.1f} pts)" for name, drop in most_sensitive(out))
    print(f"most sensitive: {worst}")
    write_json(args.json, {"model": model_id, **out})
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    specs = build_specs(args.technique, args.set, args.sweep, model_id=args.model, data_ref=args.data,
                        seed=args.seed, threads=args.threads, label=args.label, steps=args.step)  # config errors first
    specs = [dataclasses.replace(s, runtimes=runtimes_arg(args.runtimes)) for s in specs]
    store = open_store(args)
    model_id, data_ref = stored_model_and_data(args, store)
    specs = [dataclasses.replace(s, model_id=model_id, data_ref=data_ref) for s in specs]
    _validate_for_model(specs, store.load_model(model_id), tuple(store.get_dataset(data_ref).input_shape))
    ids = store.submit_many(specs)
    for job_id, spec in zip(ids, specs, strict=True):
        print(f"{job_id}  queued  {spec.label or label_for(spec)}")
    warn_without_worker(store)
    return 0


def _validate_for_model(specs: Sequence[JobSpec], model: LoadedModel, input_shape: tuple[int, ...]) -> None:
    """Reject configs the model cannot take before they are queued (``cfg.validate_for``)."""
    from lwdash.techniques import config_from_dict

    for spec in specs:
        _, cfg = config_from_dict(spec.technique)
        try:
            cfg.validate_for(model.module, input_shape)
        except ValueError as e:
            raise UsageError(f"{spec.technique['type']} cannot apply to {spec.model_id}: {e}") from None


def cmd_report(args: argparse.Namespace) -> int:
    from lwdash.analysis.frame import load_results_frame
    from lwdash.report import ReportError, with_model_names, write_report

    store = open_store(args)
    frame = with_model_names(store, load_results_frame(store))
    scope = "every stored result"
    if args.model:
        unknown = sorted(set(args.model) - set(frame["model_id"]))
        if unknown:
            have = ", ".join(sorted(set(frame["model_id"]))) or "none"
            raise UsageError(f"--model {', '.join(unknown)}: no results for it; models with results: {have}")
        frame = frame[frame["model_id"].isin(args.model)].reset_index(drop=True)
        names = dict(zip(frame["model_id"], frame["model_name"], strict=True))
        scope = f"results of {', '.join(names.get(m, m) for m in args.model)}"
    try:
        files = write_report(store, Path(args.out), frame, png=not args.no_png, scope=scope)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{len(frame)} result(s)")
    for path in (files.csv, files.html, *files.pngs):
        print(path)
    return 0


def cmd_annotate(args: argparse.Namespace) -> int:
    store = open_store(args)
    target: Target = "model" if args.model else "result"
    ref = args.model or args.result
    (store.get_model if target == "model" else store.get_result)(ref)  # NotFoundError: exit 2 with the reason
    a = store.annotate(target, ref, name=args.name, note=args.note, starred=args.starred)
    print(f"{target} {ref}: name {a.name or '(as given)'}; {'starred' if a.starred else 'not starred'}; "
          f"note {a.note or '(none)'}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from lwdash.demo import run_demo

    store = open_store(args)

    def report(k: int, n: int, job: JobRecord) -> None:
        outcome = "done" if job.status.value == "done" else f"{job.status.value}: {job.error.splitlines()[0]}"
        print(f"[{k}/{n}] {job.spec.model_id}  {label_for(job.spec)}  {outcome}", flush=True)

    jobs = run_demo(store, args.demo, report)
    done = sum(j.status.value == "done" for j in jobs)
    print(f"{done} of {len(jobs)} results stored in {store.data_dir}: open the Compare page "
          f"(LWDASH_DATA_DIR={store.data_dir} make run)")
    return 0 if done == len(jobs) else 1


def cmd_worker(args: argparse.Namespace) -> int:
    from lwdash.jobs.worker import _configure_logging, run_worker_from_args

    _configure_logging()
    return run_worker_from_args(args)
