"""Headless use: ``python -m lwdash <command>``.

Commands:
    techniques   list every registered technique and its knobs
    samples      list the bundled sample models
    datasets     list the bundled data sets and whether each is installed here
    run          compress a model inline and write model.onnx, model.pt2, result.json, model_card.md
    submit       queue the same job(s) into the store for a worker
    search       queue a multi-objective search (Optuna) whose trials fill the front
    searches     list the store's searches
    measure      measure a model as it stands (the Models page's baseline)
    runtimes     list the inference runtimes (key, artifact, fusion, default, available here)
    scan         per-layer sensitivity scan (the Layers page's curves)
    jobs         list the store's jobs
    report       write results.csv, a self-contained report.html and the charts as PNG
    worker       serve the store's queue (see :mod:`lwdash.jobs.worker`)

Knobs: ``--set knob=value``; ``--sweep knob=v1,v2`` queues one job per value and two ``--sweep``
make a grid. Pipelines: ``--technique pipeline --step structured_pruning,ratio=0.5,fine_tune_epochs=0
--step fine_tune,epochs=2 --step int8_static`` (or ``--set steps='<JSON list>'``), and
``--sweep step1.ratio=0.3,0.5,0.7`` sweeps a step's knob. ``--runtimes ort,openvino,inductor`` (run,
submit, measure) picks the runtimes latency is measured on (docs/runtimes.md).

Bad input (an unknown technique or knob, a value out of bounds, a model or data set that
cannot be read or does not fit) exits with status 2 and a message saying what is accepted.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lwdash.data import Dataset
    from lwdash.jobs.spec import JobSpec
    from lwdash.models.base import LoadedModel
    from lwdash.store.sqlite import SqliteStore

__all__ = ["UsageError", "build_specs", "cli_data_arg", "cli_model_arg", "main", "parse_assignments", "parse_space",
           "parse_step", "reproduce_command"]

EXIT_BAD_INPUT = 2


class UsageError(ValueError):
    """Bad command-line input; printed as ``error: <message>`` with exit status 2."""


# ---------------------------------------------------------------------- config from --set / --sweep


def parse_assignments(items: Sequence[str], *, sweep: bool) -> dict[str, Any]:
    """Parse ``k=v`` (``--set``) or ``k=v1,v2`` (``--sweep``) items into a dict (values stay strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or value.strip() == "":
            flag = "--sweep" if sweep else "--set"
            form = "name=v1,v2,..." if sweep else "name=value"
            raise UsageError(f"{flag} {item!r}: expected {form}")
        if key in out:
            raise UsageError(f"knob {key!r} is given twice")
        out[key] = [v.strip() for v in value.split(",") if v.strip()] if sweep else value.strip()
    return out


_STEP_KNOB = re.compile(r"^step(\d+)\.([A-Za-z_]\w*)$")


def parse_step(item: str, position: int) -> dict[str, Any]:
    """Parse one ``--step KEY[,knob=value,...]`` into a flat step dict (values stay strings)."""
    key, *pairs = [p.strip() for p in item.split(",")]
    if not key or "=" in key:
        raise UsageError(f"--step {item!r}: expected TECHNIQUE[,knob=value,...], e.g. structured_pruning,ratio=0.5")
    step: dict[str, Any] = {"technique": key}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UsageError(f"--step {position} {item!r}: expected knob=value after the technique, got {pair!r}")
        if name.strip() in step:
            raise UsageError(f"--step {position} {item!r}: knob {name.strip()!r} is given twice")
        step[name.strip()] = value.strip()
    return step


def _base_steps(fixed: dict[str, Any], step_items: Sequence[str], cfg_type: type) -> list[dict[str, Any]]:
    """The pipeline's steps as flat dicts: from --step, else --set steps=JSON, else the default pipeline."""
    from lwdash.techniques import jsonable

    if step_items:
        if "steps" in fixed:
            raise UsageError("give the steps either with --step or with --set steps=JSON, not both")
        return [parse_step(item, i) for i, item in enumerate(step_items, 1)]
    if "steps" in fixed:
        try:
            steps = json.loads(fixed["steps"])
        except json.JSONDecodeError as e:
            raise UsageError(f"--set steps=...: not valid JSON ({e.msg}); expected a list like "
                             '[{"technique": "structured_pruning", "ratio": 0.5}, {"technique": "int8_static"}]') from None
        if not isinstance(steps, list):
            raise UsageError("--set steps=...: expected a JSON list of steps")
        return steps
    return list(jsonable(cfg_type().steps))


def build_specs(
    technique: str,
    sets: Sequence[str],
    sweeps: Sequence[str],
    *,
    model_id: str,
    data_ref: str,
    seed: int,
    threads: int,
    label: str = "",
    steps: Sequence[str] = (),
) -> list[JobSpec]:
    """One :class:`JobSpec` per point of the ``--sweep`` grid (one without sweeps), configs validated.

    For ``--technique pipeline`` the steps come from ``steps`` (``--step`` items), and a sweep may
    reach into a step with ``stepN.knob=v1,v2`` (N from 1).

    Raises:
        UsageError: unknown technique or knob, or a value the config rejects.
    """
    from lwdash.jobs.spec import JobSpec
    from lwdash.techniques import build_config, config_to_dict, get_technique

    if threads < 1:
        raise UsageError(f"--threads must be >= 1, got {threads}")
    try:
        tech = get_technique(technique)
    except KeyError as e:
        raise UsageError(str(e.args[0])) from None
    names = [f.name for f in dataclasses.fields(tech.config_type)]
    is_pipeline = "steps" in names
    if steps and not is_pipeline:
        raise UsageError(f"--step is for --technique pipeline; {technique} has no steps (its knobs: {', '.join(names)})")
    fixed = parse_assignments(sets, sweep=False)
    grid = parse_assignments(sweeps, sweep=True)
    for key in [*fixed, *grid]:
        if is_pipeline and key in grid and _STEP_KNOB.match(key):
            continue
        if key not in names:
            hint = " (sweep a step's knob with --sweep stepN.knob=v1,v2)" if is_pipeline else ""
            raise UsageError(f"{technique} has no knob {key!r}; its knobs: {', '.join(names) or '(none)'}{hint}")
    both = set(fixed) & set(grid)
    if both:
        raise UsageError(f"knob(s) {sorted(both)} given with both --set and --sweep")
    base_steps = _base_steps(fixed, steps, tech.config_type) if is_pipeline else []
    keys = list(grid)
    specs: list[JobSpec] = []
    for combo in itertools.product(*(grid[k] for k in keys)) if keys else [()]:
        values = {**fixed, **{k: v for k, v in zip(keys, combo, strict=True) if not _STEP_KNOB.match(k)}}
        if is_pipeline:
            step_dicts = [dict(s) for s in base_steps]
            for k, v in zip(keys, combo, strict=True):
                m = _STEP_KNOB.match(k)
                if m is None:
                    continue
                index = int(m.group(1))
                if not 1 <= index <= len(step_dicts):
                    raise UsageError(f"--sweep {k}: the pipeline has steps 1 to {len(step_dicts)}")
                step_dicts[index - 1][m.group(2)] = v
            values["steps"] = step_dicts
        try:
            cfg = build_config(tech.config_type, values)
        except (TypeError, ValueError) as e:
            raise UsageError(f"bad config for {technique}: {e}") from None
        as_dict = config_to_dict(technique, cfg)
        spec_label = label
        if not spec_label and is_pipeline:
            from lwdash.techniques.pipeline import describe_steps

            spec_label = f"{technique} {describe_steps(cfg.steps)}"  # type: ignore[attr-defined]
        elif not spec_label and (fixed or grid):  # name each point by the knobs the user gave
            given = " ".join(f"{k}={_fmt_knob(as_dict['data'][k])}" for k in [*fixed, *keys])
            spec_label = f"{technique} {given}"
        specs.append(
            JobSpec(
                model_id=model_id,
                data_ref=data_ref,
                technique=as_dict,
                seed=seed,
                threads=threads,
                label=spec_label,
            )
        )
    return specs


def _cli_value(v: Any) -> str:
    """A knob value as ``--set`` reads it back (lists and dicts as JSON)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, separators=(",", ":"))
    if isinstance(v, float):
        return repr(v)
    return str(v)


def cli_model_arg(model_id: str, path: Path | str | None) -> str:
    """``--model`` for a stored model: a sample's name, or the stored file of an upload."""
    return model_id.removeprefix("sample/") if model_id.startswith("sample/") or path is None else str(path)


def cli_data_arg(data_ref: str, path: Path | str | None) -> str:
    """``--data`` for a stored data set: a bundled set's name (it has no file), or the stored file of an upload."""
    return data_ref if path is None else str(path)


def reproduce_command(
    command: str,
    *,
    model: str,
    arch: str | None = None,
    data: str | None = None,
    technique: dict[str, Any] | None = None,
    seed: int = 0,
    threads: int = 1,
    extra: Sequence[str] = (),
) -> str:
    """The shell command that measures the same thing headless (shown beside numbers in the app).

    Args:
        command: ``run``, ``measure`` or ``scan``.
        model: ``--model`` (see :func:`cli_model_arg`).
        arch: ``--arch`` of a state dict.
        data: ``--data`` (see :func:`cli_data_arg`); left out when it is the default data set.
        technique: for ``run``: the config's dict form; every knob is written with ``--set``.
        seed, threads: written when not the defaults.
        extra: further arguments, appended as they are.
    """
    parts = ["python", "-m", "lwdash", command, "--model", model]
    if arch:
        parts += ["--arch", arch]
    if data is not None and data != _default_data():
        parts += ["--data", data]
    if technique is not None:
        parts += ["--technique", str(technique["type"])]
        for k, v in (technique.get("data") or {}).items():
            parts += ["--set", f"{k}={_cli_value(v)}"]
    if seed:
        parts += ["--seed", str(seed)]
    if threads != 1:
        parts += ["--threads", str(threads)]
    parts += list(extra)
    return " ".join(shlex.quote(p) for p in parts)


def _fmt_knob(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return ",".join(map(_fmt_knob, v))
    return str(v)


# ---------------------------------------------------------------------- commands


def _cmd_techniques(args: argparse.Namespace) -> int:
    from lwdash.techniques import form_spec, jsonable, list_techniques

    rows: list[dict[str, Any]] = []
    for tech in list_techniques():
        knobs: list[dict[str, Any]] = []
        for fs in form_spec(tech.config_type):
            bounds = {k: getattr(fs, k) for k in ("ge", "gt", "le", "lt") if getattr(fs, k) is not None}
            knobs.append({
                "name": fs.name,
                "type": fs.widget if not fs.options else "choice",
                "default": jsonable(fs.default),
                "bounds": bounds,
                "options": list(fs.options),
                "sweepable": fs.sweepable,
                "help": fs.help,
            })
        rows.append({"key": tech.key, "family": tech.family, "title": tech.title,
                     "description": tech.description, "when": tech.when, "knobs": knobs})
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    for r in rows:
        print(f"{r['key']}  [{r['family']}]  {r['description']}")
        if r["when"]:
            print(f"    when to use it: {r['when']}")
        for k in r["knobs"]:
            limits = " ".join(f"{op}{v:g}" if isinstance(v, (int, float)) else f"{op}{v}" for op, v in (
                (">=", k["bounds"].get("ge")), (">", k["bounds"].get("gt")),
                ("<=", k["bounds"].get("le")), ("<", k["bounds"].get("lt"))) if v is not None)
            kind = "one of " + "|".join(map(str, k["options"])) if k["options"] else k["type"]
            extra = f" {limits}" if limits else ""
            sweep = " (sweepable)" if k["sweepable"] else ""
            default = json.dumps(k["default"]) if isinstance(k["default"], list) else repr(k["default"])
            print(f"    {k['name']}: {kind} = {default}{extra}{sweep}  {k['help']}")
        print()
    return 0


def _cmd_samples(args: argparse.Namespace) -> int:
    from lwdash.models import list_samples

    samples = list_samples()
    if args.json:
        print(json.dumps([{**dataclasses.asdict(s), "path": str(s.path)} for s in samples], indent=2, default=str))
        return 0
    _print_table(
        ["name", "arch", "input", "classes", "params", "test acc", "role", "title"],
        [[s.name, s.arch, "x".join(map(str, s.input_shape)), s.num_classes, f"{s.params_count:,}",
          f"{100 * s.test_acc:.2f} %" if s.test_acc is not None else "-", s.role or "-", s.title] for s in samples],
    )
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from lwdash.data.bundled import DEFAULT_DATA, list_bundled

    rows: list[dict[str, Any]] = []
    for e in list_bundled():
        reason = e.unavailable()
        rows.append({"name": e.name, "title": e.title, "description": e.description,
                     "input_shape": list(e.input_shape), "num_classes": e.num_classes,
                     "samples_count": e.samples_count, "default": e.name == DEFAULT_DATA,
                     "available": reason is None, "unavailable": reason or ""})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    _print_table(
        ["name", "input", "classes", "samples", "installed", "title"],
        [[r["name"] + (" (default)" if r["default"] else ""), "x".join(map(str, r["input_shape"])), r["num_classes"],
          f"{r['samples_count']:,}", "yes" if r["available"] else "no", r["title"]] for r in rows],
    )
    for r in rows:
        if not r["available"]:
            print(f"{r['name']}: {r['unavailable']}")
    return 0


def _load_model_arg(ref: str, arch: str | None) -> tuple[str, LoadedModel]:
    """``--model``: a sample name (or ``sample/<name>``) or a path to a model file."""
    from lwdash.models import list_samples, load_model_file, load_sample

    samples = {s.name for s in list_samples()}
    name = ref.removeprefix("sample/")
    if name in samples:
        return f"sample/{name}", load_sample(name)
    path = Path(ref)
    if path.is_file():
        return str(path.resolve()), load_model_file(path, arch=arch)
    raise UsageError(f"--model {ref!r} is neither a sample ({', '.join(sorted(samples))}) nor an existing file")


def _default_data() -> str:
    from lwdash.data.bundled import DEFAULT_DATA

    return DEFAULT_DATA


def _bundled_data_arg(ref: str) -> str | None:
    """The canonical name of a bundled ``--data``, ``None`` for other references (files, stored ids).

    Raises:
        UsageError: a bundled set that is not installed here (the one-line install hint).
    """
    from lwdash.data.bundled import get_bundled, is_bundled

    if not is_bundled(ref):
        return None
    entry = get_bundled(ref)
    reason = entry.unavailable()
    if reason is not None:
        raise UsageError(f"--data {entry.name}: {reason}")
    return entry.name


def _data_choices() -> str:
    from lwdash.data.bundled import bundled_names

    return f"a bundled data set ({', '.join(bundled_names())}; `python -m lwdash datasets` lists them)"


def _load_data_arg(ref: str, input_shape: Sequence[int] | None = None) -> Dataset:
    """``--data``: a bundled set's name, an ``.npz`` path, or a zipped image folder (resized to ``input_shape``)."""
    from lwdash.data import load_dataset

    if _bundled_data_arg(ref) is None and not Path(ref).is_file():
        raise UsageError(f"--data {ref!r}: use {_data_choices()}, a path to an .npz file with x and y arrays, "
                         "or a zipped image folder (.zip of <class>/<image>)")
    return load_dataset(ref, input_shape=tuple(input_shape) if input_shape is not None else None)


def _sweep_dirname(spec: JobSpec, grid_keys: Sequence[str]) -> str:
    data = spec.technique["data"]
    parts = []
    for k in grid_keys:
        m = _STEP_KNOB.match(k)
        v = data["steps"][int(m.group(1)) - 1][m.group(2)] if m and k not in data else data[k]
        parts.append(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}")
    safe = "_".join(parts)
    return "".join(ch if ch.isalnum() or ch in "=._-" else "-" for ch in safe)


def _cmd_run(args: argparse.Namespace) -> int:
    from lwdash.jobs.runner import execute

    args.data = _bundled_data_arg(args.data) or args.data  # the result records it: the canonical name
    # The config is checked first: a typo in --set fails at once, before any model is loaded.
    specs = build_specs(args.technique, args.set, args.sweep, model_id=args.model, data_ref=args.data,
                        seed=args.seed, threads=args.threads, label=args.label, steps=args.step)
    specs = [dataclasses.replace(s, runtimes=runtimes_arg(args.runtimes)) for s in specs]
    model_id, model = _load_model_arg(args.model, args.arch)
    data = _load_data_arg(args.data, model.input_shape)
    specs = [dataclasses.replace(s, model_id=model_id) for s in specs]
    out_root = Path(args.out)
    grid_keys = list(parse_assignments(args.sweep, sweep=True))
    for i, spec in enumerate(specs, 1):
        out_dir = out_root / _sweep_dirname(spec, grid_keys) if grid_keys else out_root

        output = execute(spec, model, data, out_dir, _progress_line(args, f"[{i}/{len(specs)}] "))
        _end_progress(args)
        print(f"{spec.label or _label(spec)} -> {out_dir}")
        _print_comparison(output.baseline.flat(), output.compressed.flat())
        for note in output.notes:
            print(f"  note: {note}")
        print()
    return 0


def _progress_line(args: argparse.Namespace, prefix: str = "") -> Any:
    def progress(fraction: float, message: str) -> None:
        if not args.quiet:
            print(f"\r{prefix}{100 * fraction:5.1f} % {message[:70]:<70}", end="", file=sys.stderr, flush=True)

    return progress


def _end_progress(args: argparse.Namespace) -> None:
    if not args.quiet:
        print(file=sys.stderr)


def _write_json(path: str | None, payload: dict[str, Any]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2, allow_nan=True))
        print(f"wrote {path}")


def _cmd_measure(args: argparse.Namespace) -> int:
    import tempfile

    from lwdash.analysis.baseline import measure_baseline

    chosen = runtimes_arg(args.runtimes)
    if chosen:  # a baseline measurement reads the setting: this process's
        os.environ["LWDASH_RUNTIMES"] = ",".join(chosen)
    model_id, model = _load_model_arg(args.model, args.arch)
    data = _load_data_arg(args.data, model.input_shape)
    with tempfile.TemporaryDirectory(prefix="lwdash-measure-") as work:
        out = measure_baseline(model, data, Path(work), _progress_line(args), threads=args.threads)
    _end_progress(args)
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
    _print_table(["metric", "value"], [
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
    _write_json(args.json, {"model": model_id, **out})
    return 0


def _cmd_scan(args: argparse.Namespace) -> int:
    from lwdash.analysis.sensitivity import ScanConfig, most_sensitive, run_scan, scan_technique

    levels = [v for v in (args.levels or "").split(",") if v.strip()]
    cfg = ScanConfig.from_dict({"mode": args.mode, "levels": levels, "max_layers": args.max_layers})
    model_id, model = _load_model_arg(args.model, args.arch)
    data = _load_data_arg(args.data, model.input_shape)
    out = run_scan(model.module, data, scan_technique(cfg), _progress_line(args), threads=args.threads)
    _end_progress(args)
    unit = out["level_unit"]
    print(f"{model_id} on {data.name}: {out['metric']}, unchanged model {100 * out['baseline_acc']:.2f} %; "
          f"one layer changed at a time ({unit})")
    _print_table(["layer", "params", *[f"{v:g}" for v in out["levels"]]],
                 [[r["name"], f"{r['params']:,}", *[f"{100 * a:.2f}" for a in r["acc"]]] for r in out["layers"]])
    worst = ", ".join(f"{name} ({-drop:+.1f} pts)" for name, drop in most_sensitive(out))
    print(f"most sensitive: {worst}")
    _write_json(args.json, {"model": model_id, **out})
    return 0


def _label(spec: JobSpec) -> str:
    from lwdash.jobs.runner import job_label

    return job_label(spec.technique)


def _print_comparison(b: dict[str, Any], c: dict[str, Any]) -> None:
    """Baseline vs compressed (flat metric dicts, :meth:`Metrics.flat`): the headline figures."""
    from lwdash.measure.catalogue import PRIMARY_RUNTIME, latency_key
    from lwdash.runtimes import LATENCY_BATCHES, get_runtime

    primary = get_runtime(PRIMARY_RUNTIME)
    latency = [(batch, latency_key(primary.key, batch)) for batch in LATENCY_BATCHES]

    def pct(v: float) -> str:
        return f"{100 * v:.2f} %"

    def size(v: float) -> str:
        return f"{v / 1024:.1f} KiB"

    def ms(v: float) -> str:
        return f"{v:.3f} ms"

    def ratio(x: float, y: float) -> str:
        return f"{y / x:.3f}x" if x else "-"

    def speed(x: float, y: float) -> str:
        if x <= 0 or y <= 0:
            return "-"
        s = x / y
        if round(s, 2) == 1.0:
            return "1.00x (no change)"
        return f"{s:.2f}x faster" if s > 1 else f"{1 / s:.2f}x slower"

    rows = [
        ["top-1 (ORT)", pct(b["top1_acc"]), pct(c["top1_acc"]), f"{100 * (c['top1_acc'] - b['top1_acc']):+.2f} pts"],
        ["agreement", pct(b["agreement"]), pct(c["agreement"]), ""],
        ["model.onnx", size(b["onnx_bytes"]), size(c["onnx_bytes"]), ratio(b["onnx_bytes"], c["onnx_bytes"])],
        ["zlib(onnx)", size(b["compressed_bytes"]), size(c["compressed_bytes"]),
         ratio(b["compressed_bytes"], c["compressed_bytes"])],
        ["nonzero params", f"{b['nonzero_params_count']:,}", f"{c['nonzero_params_count']:,}",
         ratio(b["nonzero_params_count"], c["nonzero_params_count"])],
        ["MACs", f"{b['macs']:,}", f"{c['macs']:,}", ratio(b["macs"], c["macs"])],
        *[[f"{primary.short} b{batch} median", ms(b[key]), ms(c[key]), speed(b[key], c[key])]
          for batch, key in latency if key in b and key in c],
        *[[f"best runtime b{batch}", f"{b[f'best_b{batch}_runtime']} {ms(b[f'best_b{batch}_median_ms'])}",
           f"{c[f'best_b{batch}_runtime']} {ms(c[f'best_b{batch}_median_ms'])}",
           speed(b[f"best_b{batch}_median_ms"], c[f"best_b{batch}_median_ms"])]
          for batch, _ in latency if f"best_b{batch}_runtime" in b and f"best_b{batch}_runtime" in c],
    ]
    _print_table(["metric", "baseline", "compressed", "vs baseline"], rows)


def _print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [list(map(str, header))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for j, r in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))


def _store(args: argparse.Namespace) -> SqliteStore:
    from lwdash.config import get_settings
    from lwdash.store import SqliteStore

    return SqliteStore(get_settings(args.data_dir).data_dir)


def _stored_model_and_data(args: argparse.Namespace, store: SqliteStore) -> tuple[str, str]:
    """``--model`` and ``--data`` as ids in the store (files are imported first); refuses a misfit."""
    from lwdash.data.fit import records_mismatch
    from lwdash.models import list_samples

    bundled = _bundled_data_arg(args.data)  # an uninstalled bundled set is refused before any import
    name = args.model.removeprefix("sample/")
    if name in {s.name for s in list_samples()}:
        model = store.get_model(f"sample/{name}")
    elif args.model.startswith("upload/"):
        model = store.get_model(args.model)
    elif Path(args.model).is_file():
        path = Path(args.model)
        model = store.import_model(path.name, path.read_bytes(), arch=args.arch)
        print(f"imported {path} as {model.id}")
    else:
        raise UsageError(f"--model {args.model!r} is not a sample, a stored model id (upload/...) or an existing file")

    if bundled is not None:
        data = store.get_dataset(bundled)
    elif store.uploaded_dataset(args.data) is not None:
        data = store.get_dataset(args.data)
    elif Path(args.data).is_file():
        path = Path(args.data)
        data = store.import_dataset(path.name, path.read_bytes(), input_shape=tuple(model.input_shape))
        print(f"imported {path} as {data.id}")
    else:
        raise UsageError(f"--data {args.data!r}: use {_data_choices()}, a stored data set id (dataset/...), an .npz "
                         "path or a zipped image folder")
    mismatch = records_mismatch(model, data)
    if mismatch:
        raise UsageError(mismatch)
    return model.id, data.id


def _warn_without_worker(store: SqliteStore) -> None:
    if not store.live_workers():
        print("no worker is running: start one with `python -m lwdash worker`", file=sys.stderr)


def _cmd_submit(args: argparse.Namespace) -> int:
    specs = build_specs(args.technique, args.set, args.sweep, model_id=args.model, data_ref=args.data,
                        seed=args.seed, threads=args.threads, label=args.label, steps=args.step)  # config errors first
    specs = [dataclasses.replace(s, runtimes=runtimes_arg(args.runtimes)) for s in specs]
    store = _store(args)
    model_id, data_ref = _stored_model_and_data(args, store)
    specs = [dataclasses.replace(s, model_id=model_id, data_ref=data_ref) for s in specs]
    _validate_for_model(specs, store.load_model(model_id), tuple(store.get_dataset(data_ref).input_shape))
    ids = store.submit_many(specs)
    for job_id, spec in zip(ids, specs, strict=True):
        print(f"{job_id}  queued  {spec.label or _label(spec)}")
    _warn_without_worker(store)
    return 0


def parse_space(items: Sequence[str], technique: str) -> tuple[Any, ...]:
    """``--space knob=low:high[:log]`` or ``--space knob=a,b,c`` items as :class:`~lwdash.search.KnobRange` s.

    Values of a choice knob are read as the knob reads them (``true`` / ``false`` for toggles).
    No ``--space``: the technique's sweepable knobs over their suggested ranges.
    """
    from lwdash.search import KnobRange, default_space, searchable_knobs

    if not items:
        return default_space(technique)
    knobs = {k.name: k for k in searchable_knobs(technique)}
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name or not value.strip():
            raise UsageError(f"--space {item!r}: expected knob=low:high[:log] or knob=a,b,c")
        spec = knobs.get(name)
        if spec is None:
            raise UsageError(f"--space {item!r}: {technique} has no searchable knob {name!r}; searchable: "
                             f"{', '.join(knobs) or '(none)'}")
        try:
            if ":" in value:
                low, high, *rest = value.split(":")
                if rest not in ([], ["log"]):
                    raise ValueError("only ':log' may follow low:high")
                integer = spec.widget == "int"
                out.append(KnobRange(name, low=float(low), high=float(high), log=bool(rest), integer=integer))
            else:
                choices = [v.strip() for v in value.split(",") if v.strip()]
                if spec.widget == "toggle":
                    choices = [c.lower() in ("1", "true", "yes", "on") for c in choices]  # type: ignore[misc]
                elif spec.options:
                    by_text = {str(o): o for o in spec.options}
                    choices = [by_text.get(c, c) for c in choices]
                out.append(KnobRange(name, choices=tuple(choices)))
        except ValueError as e:
            raise UsageError(f"--space {item!r}: {e}") from None
    return tuple(out)


def _cmd_search(args: argparse.Namespace) -> int:
    from lwdash.search import SearchConfig, check_search
    from lwdash.techniques import build_config, get_technique, jsonable
    from lwdash.techniques.base import CONFIG_FORMAT_VERSION

    try:
        tech = get_technique(args.technique)
    except KeyError as e:
        raise UsageError(str(e.args[0])) from None
    space = parse_space(args.space, args.technique)
    fixed = parse_assignments(args.set, sweep=False)
    try:  # --set values as the config reads them (typed), so the trials' configs are exact
        typed = build_config(tech.config_type, fixed)
        fixed = {k: jsonable(getattr(typed, k)) for k in fixed}
        cfg = SearchConfig(technique=args.technique, version=CONFIG_FORMAT_VERSION, space=space,
                           fixed=tuple(fixed.items()), objectives=tuple(o.strip() for o in args.objectives.split(",")),
                           sampler=args.sampler, trials=args.trials, parallel=args.parallel, seed=args.seed)
        check_search(cfg)
    except (TypeError, ValueError) as e:
        raise UsageError(f"bad search: {e}") from None
    store = _store(args)
    model_id, data_ref = _stored_model_and_data(args, store)
    search_id = store.create_search(model_id, data_ref, cfg.to_dict())
    print(f"{search_id}  running  {cfg.describe()}")
    _warn_without_worker(store)
    return 0


def _cmd_searches(args: argparse.Namespace) -> int:
    from lwdash.search import SearchConfig

    store = _store(args)
    rows = []
    for s in store.list_searches(status=args.status):
        cfg = SearchConfig.from_dict(s.config)
        front = ", ".join(str(t + 1) for t in s.summary.get("front", [])) or "-"
        rows.append([s.id, s.status, f"{cfg.technique} on {s.model_id}", f"{len(store.search_trials(s.id))}/"
                     f"{cfg.trials}", front, s.message[:60]])
    _print_table(["id", "status", "search", "trials", "front (trial numbers)", "detail"], rows)
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


def _cmd_jobs(args: argparse.Namespace) -> int:
    store = _store(args)
    jobs = store.list_jobs(limit=args.limit, status=args.status)
    rows = []
    for j in jobs:
        detail = (j.error.splitlines()[0] if j.error else j.message)[:80]
        rows.append([j.id, j.status.value, f"{100 * j.progress:.0f} %", j.spec.label or _label(j.spec),
                     j.result_id or "-", detail])
    _print_table(["id", "status", "progress", "label", "result", "detail"], rows)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from lwdash.analysis.frame import load_results_frame
    from lwdash.report import ReportError, with_model_names, write_report

    store = _store(args)
    frame = with_model_names(store, load_results_frame(store))
    scope = "every stored result"
    if args.model:
        unknown = sorted(set(args.model) - set(frame["model_id"]))
        if unknown:
            have = ", ".join(sorted(set(frame["model_id"]))) or "none"
            raise UsageError(f"--model {', '.join(unknown)}: no results for it; models with results: {have}")
        frame = frame[frame["model_id"].isin(args.model)].reset_index(drop=True)
        scope = f"results of {', '.join(args.model)}"
    try:
        files = write_report(store, Path(args.out), frame, png=not args.no_png, scope=scope)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{len(frame)} result(s)")
    for path in (files.csv, files.html, *files.pngs):
        print(path)
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from lwdash.jobs.worker import _configure_logging, run_worker_from_args

    _configure_logging()
    return run_worker_from_args(args)


# ---------------------------------------------------------------------- parser


#: --data's help; the names come from the registry (`datasets`), which the parser does not import (it would load torch).
_DATA_HELP = "a bundled data set's name (`python -m lwdash datasets` lists them and marks the default, used when omitted)"


def _add_model_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True,
                   help="sample name or model file path (.onnx, .pt2, .pt, .pth, .ts, .safetensors)")
    p.add_argument("--arch", default=None, help="architecture key, needed for state dicts")
    p.add_argument("--data", default=None, help=_DATA_HELP + ", an .npz path or a zipped image folder")
    p.add_argument("--threads", type=int, default=1, help="threads for measurement (default 1)")


def _add_runtimes_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runtimes", default=None, metavar="KEY,KEY,...",
                   help="runtimes to measure latency on: keys from `python -m lwdash runtimes`, or all / default "
                        "(default: $LWDASH_RUNTIMES, else ort,ort_nofusion,openvino,torch)")


def runtimes_arg(value: str | None) -> tuple[str, ...]:
    """``--runtimes`` as runtime keys in registry order; ``()`` when not given (the setting or the defaults).

    Raises:
        UsageError: an unknown runtime key.
    """
    if value is None or not value.strip():
        return ()
    from lwdash.runtimes import resolve_runtimes

    try:
        return resolve_runtimes(value)
    except ValueError as e:
        raise UsageError(f"--runtimes: {e}") from None


def _cmd_runtimes(args: argparse.Namespace) -> int:
    from lwdash.runtimes import list_runtimes

    rows = [[rt.key, rt.title, rt.artifact, rt.fusion or "-", "yes" if rt.default else "no",
             "yes" if rt.isolated else "no", rt.unavailable_reason() or "available"] for rt in list_runtimes()]
    _print_table(["key", "runtime", "takes", "fusion", "default", "own process", "here"], rows)
    return 0


def _add_job_arguments(p: argparse.ArgumentParser, *, for_submit: bool) -> None:
    model_help = ("sample name, stored model id (upload/...) or model file path" if for_submit
                  else "sample name or model file path (.onnx, .pt2, .pt, .pth, .ts, .safetensors)")
    p.add_argument("--model", required=True, help=model_help)
    p.add_argument("--arch", default=None, help="architecture key, needed for state dicts")
    p.add_argument("--data", default=None, help=_DATA_HELP + (", a stored data set id (dataset/...)" if for_submit else "")
                   + ", an .npz path or a zipped image folder")
    p.add_argument("--technique", required=True, help="technique key (see `python -m lwdash techniques`)")
    p.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE", help="set a knob (repeatable)")
    p.add_argument("--sweep", action="append", default=[], metavar="KNOB=V1,V2,...",
                   help="one job per value; two --sweep make a grid (e.g. --sweep amount=0.3,0.5,0.7 "
                        "--sweep scope=global,per_layer); for a pipeline, stepN.KNOB=V1,V2 sweeps a step's knob")
    p.add_argument("--step", action="append", default=[], metavar="TECHNIQUE[,KNOB=VALUE,...]",
                   help="a pipeline step, in order (repeatable, with --technique pipeline), e.g. "
                        "--step structured_pruning,ratio=0.5,fine_tune_epochs=0 --step fine_tune,epochs=2 "
                        "--step int8_static; or --set steps='[{\"technique\": \"int8_static\"}]'. "
                        "Quantization steps only last")
    p.add_argument("--threads", type=int, default=1, help="threads for measurement (default 1)")
    _add_runtimes_argument(p)
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--label", default="", help="display label (default: technique and changed knobs)")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m lwdash`` argument parser."""
    from lwdash.jobs.worker import add_worker_arguments
    from lwdash.search import OBJECTIVES

    parser = argparse.ArgumentParser(prog="python -m lwdash", description="lwdash: compress models, measure honestly")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("techniques", help="list techniques and their knobs")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_techniques)

    p = sub.add_parser("samples", help="list bundled sample models")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_samples)

    p = sub.add_parser("datasets", help="list the bundled data sets and whether each is installed here")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_datasets)

    p = sub.add_parser("run", help="compress a model inline and write its artifacts")
    _add_job_arguments(p, for_submit=False)
    p.add_argument("--out", required=True, help="output directory (one sub-folder per sweep point)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("submit", help="queue jobs into the store for a worker")
    _add_job_arguments(p, for_submit=True)
    p.add_argument("--data-dir", type=Path, default=None, help="data directory (default: $LWDASH_DATA_DIR)")
    p.set_defaults(func=_cmd_submit)

    p = sub.add_parser("search", help="queue a multi-objective search: a sampler proposes configs, each runs as a job")
    p.add_argument("--model", required=True, help="sample name, stored model id (upload/...) or model file path")
    p.add_argument("--arch", default=None, help="architecture key, needed for state dicts")
    p.add_argument("--data", default=None,
                   help=_DATA_HELP + ", a stored data set id (dataset/...), an .npz path or a zipped image folder")
    p.add_argument("--technique", required=True, help="technique key (see `python -m lwdash techniques`)")
    p.add_argument("--space", action="append", default=[], metavar="KNOB=LOW:HIGH[:log] | KNOB=A,B",
                   help="a knob to explore (repeatable; default: the technique's sweepable knobs)")
    p.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE", help="fix another knob (repeatable)")
    p.add_argument("--objectives", default="top1_acc,onnx_bytes",
                   help="two or three of: " + ", ".join(OBJECTIVES))
    p.add_argument("--sampler", default="tpe", choices=["tpe", "gp", "nsga2", "random"])
    p.add_argument("--trials", type=int, default=12, help="trials in all (default 12)")
    p.add_argument("--parallel", type=int, default=1, help="trials queued at once (default 1)")
    p.add_argument("--seed", type=int, default=0, help="the sampler's and the trials' seed (default 0)")
    p.add_argument("--data-dir", type=Path, default=None, help="data directory (default: $LWDASH_DATA_DIR)")
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("searches", help="list searches")
    p.add_argument("--data-dir", type=Path, default=None, help="data directory (default: $LWDASH_DATA_DIR)")
    p.add_argument("--status", default=None, choices=["running", "done", "failed", "cancelled"])
    p.set_defaults(func=_cmd_searches)

    p = sub.add_parser("measure", help="measure a model as it stands (accuracy, size, MACs, latency)")
    _add_model_data_arguments(p)
    _add_runtimes_argument(p)
    p.add_argument("--json", default=None, metavar="FILE", help="also write the measurement as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=_cmd_measure)

    p = sub.add_parser("runtimes", help="list the inference runtimes latency can be measured on")
    p.set_defaults(func=_cmd_runtimes)

    p = sub.add_parser("scan", help="per-layer sensitivity scan: change one layer at a time, measure accuracy")
    _add_model_data_arguments(p)
    p.add_argument("--mode", choices=["prune", "quantize"], default="prune",
                   help="prune: levels are fractions of the layer's weights removed; quantize: bits per weight")
    p.add_argument("--levels", default="", help="comma-separated levels (default 0.3,0.5,0.7,0.9 or 8,6,4)")
    p.add_argument("--max-layers", type=int, default=0, help="scan only the N largest layers (0 = all)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the curves as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=_cmd_scan)

    p = sub.add_parser("jobs", help="list jobs")
    p.add_argument("--data-dir", type=Path, default=None, help="data directory (default: $LWDASH_DATA_DIR)")
    p.add_argument("--status", default=None, choices=["queued", "running", "done", "failed", "cancelled"])
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=_cmd_jobs)

    p = sub.add_parser("report", help="write results.csv, report.html and chart PNGs from the store")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--data-dir", type=Path, default=None, help="data directory (default: $LWDASH_DATA_DIR)")
    p.add_argument("--model", action="append", default=[], metavar="MODEL_ID",
                   help="only this model's results (repeatable; default: all)")
    p.add_argument("--no-png", action="store_true", help="skip the PNG charts (they need kaleido + chromium)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("worker", help="serve the job queue")
    add_worker_arguments(p)
    p.set_defaults(func=_cmd_worker)
    return parser


def _bad_input_types() -> tuple[type[BaseException], ...]:
    # Imported only when something failed, so `python -m lwdash worker` starts without torch.
    from lwdash.data import DataError
    from lwdash.models.base import ModelLoadError
    from lwdash.store.records import NotFoundError

    # ValueError covers configs a model cannot take (validate_for); KeyError an unknown technique.
    return (UsageError, DataError, ModelLoadError, NotFoundError, ValueError, KeyError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; returns the exit status (2 for bad input)."""
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "data", "") is None:  # a command that takes --data, none given: the registry's default
            args.data = _default_data()
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if not isinstance(e, _bad_input_types()):
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {msg}", file=sys.stderr)
        return EXIT_BAD_INPUT
