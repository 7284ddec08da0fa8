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

The package: :mod:`~lwdash.cli.parser` (the arguments), :mod:`~lwdash.cli.listing`,
:mod:`~lwdash.cli.commands` and :mod:`~lwdash.cli.searching` (the commands),
:mod:`~lwdash.cli.inputs` (reading ``--model`` / ``--data`` / ``--runtimes``) and
:mod:`~lwdash.cli.output` (what they print). Knob text is read by :mod:`lwdash.sweeps`; the
command the app shows beside its numbers is written by :mod:`lwdash.reproduce`.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from lwdash.cli.inputs import default_data
from lwdash.cli.inputs import runtimes_arg as runtimes_arg
from lwdash.cli.parser import build_parser
from lwdash.cli.searching import parse_space
from lwdash.reproduce import cli_data_arg, cli_model_arg, reproduce_command
from lwdash.sweeps import UsageError, build_specs, parse_assignments, parse_step

__all__ = ["UsageError", "build_specs", "cli_data_arg", "cli_model_arg", "main", "parse_assignments", "parse_space",
           "parse_step", "reproduce_command"]

EXIT_BAD_INPUT = 2


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
            args.data = default_data()
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
