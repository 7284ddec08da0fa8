"""The search commands: ``search`` (``--space`` read into knob ranges, the search queued) and ``searches``."""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from lwdash.cli.inputs import open_store, stored_model_and_data, warn_without_worker
from lwdash.cli.output import print_table
from lwdash.sweeps import UsageError, parse_assignments


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


def cmd_search(args: argparse.Namespace) -> int:
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
    store = open_store(args)
    model_id, data_ref = stored_model_and_data(args, store)
    search_id = store.create_search(model_id, data_ref, cfg.to_dict())
    print(f"{search_id}  running  {cfg.describe()}")
    warn_without_worker(store)
    return 0


def cmd_searches(args: argparse.Namespace) -> int:
    from lwdash.search import SearchConfig

    store = open_store(args)
    rows = []
    for s in store.list_searches(status=args.status):
        cfg = SearchConfig.from_dict(s.config)
        front = ", ".join(str(t + 1) for t in s.summary.get("front", [])) or "-"
        rows.append([s.id, s.status, f"{cfg.technique} on {s.model_id}", f"{len(store.search_trials(s.id))}/"
                     f"{cfg.trials}", front, s.message[:60]])
    print_table(["id", "status", "search", "trials", "front (trial numbers)", "detail"], rows)
    return 0
