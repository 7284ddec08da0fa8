"""The ``python -m lwdash`` argument parser: every command's arguments and the function that runs it."""
from __future__ import annotations

import argparse
from pathlib import Path

from lwdash.cli.commands import (
    cmd_annotate,
    cmd_demo,
    cmd_measure,
    cmd_report,
    cmd_run,
    cmd_scan,
    cmd_submit,
    cmd_worker,
)
from lwdash.cli.listing import cmd_datasets, cmd_jobs, cmd_runtimes, cmd_samples, cmd_techniques
from lwdash.cli.searching import cmd_search, cmd_searches

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
    p.set_defaults(func=cmd_techniques)

    p = sub.add_parser("samples", help="list bundled sample models")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_samples)

    p = sub.add_parser("datasets", help="list the bundled data sets and whether each is installed here")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("run", help="compress a model inline and write its artifacts")
    _add_job_arguments(p, for_submit=False)
    p.add_argument("--out", required=True, help="output directory (one sub-folder per sweep point)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("submit", help="queue jobs into the store for a worker")
    _add_job_arguments(p, for_submit=True)
    p.add_argument("--data-dir", type=Path, default=None, help="data directory (default: $LWDASH_DATA_DIR)")
    p.set_defaults(func=cmd_submit)

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
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("searches", help="list searches")
    p.add_argument("--data-dir", type=Path, default=None, help="data directory (default: $LWDASH_DATA_DIR)")
    p.add_argument("--status", default=None, choices=["running", "done", "failed", "cancelled"])
    p.set_defaults(func=cmd_searches)

    p = sub.add_parser("measure", help="measure a model as it stands (accuracy, size, MACs, latency)")
    _add_model_data_arguments(p)
    _add_runtimes_argument(p)
    p.add_argument("--json", default=None, metavar="FILE", help="also write the measurement as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_measure)

    p = sub.add_parser("runtimes", help="list the inference runtimes latency can be measured on")
    p.set_defaults(func=cmd_runtimes)

    p = sub.add_parser("scan", help="per-layer sensitivity scan: change one layer at a time, measure accuracy")
    _add_model_data_arguments(p)
    p.add_argument("--mode", choices=["prune", "quantize"], default="prune",
                   help="prune: levels are fractions of the layer's weights removed; quantize: bits per weight")
    p.add_argument("--levels", default="", help="comma-separated levels (default 0.3,0.5,0.7,0.9 or 8,6,4)")
    p.add_argument("--max-layers", type=int, default=0, help="scan only the N largest layers (0 = all)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the curves as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("jobs", help="list jobs")
    p.add_argument("--data-dir", type=Path, default=None, help="data directory (default: $LWDASH_DATA_DIR)")
    p.add_argument("--status", default=None, choices=["queued", "running", "done", "failed", "cancelled"])
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("report", help="write results.csv, report.html and chart PNGs from the store")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--data-dir", type=Path, default=None, help="data directory (default: $LWDASH_DATA_DIR)")
    p.add_argument("--model", action="append", default=[], metavar="MODEL_ID",
                   help="only this model's results (repeatable; default: all)")
    p.add_argument("--no-png", action="store_true", help="skip the PNG charts (they need kaleido + chromium)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("annotate", help="rename, note or star a model or a result (shown on every page and in reports)")
    p.add_argument("--data-dir", type=Path, default=None, help="data directory (default: $LWDASH_DATA_DIR)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="a model id (sample/<name>, upload/<hash>)")
    which.add_argument("--result", help="a result id")
    p.add_argument("--name", default=None, help="the new name ('' restores the given one)")
    p.add_argument("--note", default=None, help="the note ('' clears it)")
    star = p.add_mutually_exclusive_group()
    star.add_argument("--star", dest="starred", action="store_true", default=None)
    star.add_argument("--unstar", dest="starred", action="store_false")
    p.set_defaults(func=cmd_annotate)

    p = sub.add_parser("demo", help="fill a data directory with real results on the samples, by running the jobs")
    p.add_argument("--data-dir", type=Path, default=None, help="data directory (default: $LWDASH_DATA_DIR)")
    p.add_argument("--set", dest="demo", default="fashion", choices=["fashion", "digits"],
                   help="fashion: the Fashion-MNIST samples on the quick split (~5 min on 2 cores); "
                        "digits: three quick jobs on the 8x8 samples")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("worker", help="serve the job queue")
    add_worker_arguments(p)
    p.set_defaults(func=cmd_worker)
    return parser
