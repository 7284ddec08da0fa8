"""The listing commands: ``techniques``, ``samples``, ``datasets``, ``runtimes`` and ``jobs``."""
from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from lwdash.cli.inputs import open_store
from lwdash.cli.output import label_for, print_table


def cmd_techniques(args: argparse.Namespace) -> int:
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


def cmd_samples(args: argparse.Namespace) -> int:
    from lwdash.models import list_samples

    samples = list_samples()
    if args.json:
        print(json.dumps([{**dataclasses.asdict(s), "path": str(s.path)} for s in samples], indent=2, default=str))
        return 0
    print_table(
        ["name", "arch", "input", "classes", "params", "test acc", "role", "title"],
        [[s.name, s.arch, "x".join(map(str, s.input_shape)), s.num_classes, f"{s.params_count:,}",
          f"{100 * s.test_acc:.2f} %" if s.test_acc is not None else "-", s.role or "-", s.title] for s in samples],
    )
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
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
    print_table(
        ["name", "input", "classes", "samples", "installed", "title"],
        [[r["name"] + (" (default)" if r["default"] else ""), "x".join(map(str, r["input_shape"])), r["num_classes"],
          f"{r['samples_count']:,}", "yes" if r["available"] else "no", r["title"]] for r in rows],
    )
    for r in rows:
        if not r["available"]:
            print(f"{r['name']}: {r['unavailable']}")
    return 0


def cmd_runtimes(args: argparse.Namespace) -> int:
    from lwdash.runtimes import list_runtimes

    rows = [[rt.key, rt.title, rt.artifact, rt.fusion or "-", "yes" if rt.default else "no",
             "yes" if rt.isolated else "no", rt.unavailable_reason() or "available"] for rt in list_runtimes()]
    print_table(["key", "runtime", "takes", "fusion", "default", "own process", "here"], rows)
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    store = open_store(args)
    jobs = store.list_jobs(limit=args.limit, status=args.status)
    rows = []
    for j in jobs:
        detail = (j.error.splitlines()[0] if j.error else j.message)[:80]
        rows.append([j.id, j.status.value, f"{100 * j.progress:.0f} %", j.spec.label or label_for(j.spec),
                     j.result_id or "-", detail])
    print_table(["id", "status", "progress", "label", "result", "detail"], rows)
    return 0
