"""Build the data directory that ``test_v1_datadir.py`` opens: every kind of record, as lwdash wrote them
before the storage interface (commit 1c74eb1, schema 1).

Run with that version of lwdash on the path, from the repository root::

    git worktree add /tmp/lwdash-v1 1c74eb1
    PYTHONPATH=/tmp/lwdash-v1 .venv/bin/python tests/store/make_v1_datadir.py tests/store/data/v1
    (cd tests/store/data && tar czf v1-datadir.tar.gz v1 && rm -r v1)

It is kept as the record of how the committed archive was made; the test never runs it.
"""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import torch

from lwdash.analysis.sensitivity import ScanConfig, scan_technique
from lwdash.jobs import run_inline
from lwdash.jobs.spec import JobSpec
from lwdash.store import SqliteStore  # the version this script is run with (see above)


def main(out: Path) -> None:
    store = SqliteStore(out)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    buf = io.BytesIO()
    batch = {0: torch.export.Dim("batch")}
    torch.export.save(torch.export.export(model.eval(), (torch.zeros(2, 1, 8, 8),), dynamic_shapes=(batch,)), buf)
    upload = store.import_model("tiny linear.pt2", buf.getvalue())
    x = np.random.default_rng(0).random((40, 1, 8, 8), dtype=np.float32)
    arrays = io.BytesIO()
    np.savez(arrays, x=x, y=np.arange(40) % 10)
    dataset = store.import_dataset("forty digits.npz", arrays.getvalue())

    def spec(technique: dict, **kw: object) -> JobSpec:
        return JobSpec(model_id="sample/digits_mlp", data_ref="digits", technique=technique, **kw)  # type: ignore[arg-type]

    done = store.submit(spec({"type": "magnitude_pruning", "version": 1, "data": {"amount": 0.5}}, label="kept result"))
    run_inline(store, done)
    failed = store.submit(spec({"type": "magnitude_pruning", "version": 1, "data": {"amount": 1.5}}))
    run_inline(store, failed)
    scan = store.submit(JobSpec(model_id="sample/digits_mlp", data_ref="digits", kind="sensitivity",
                                technique=scan_technique(ScanConfig(levels=(0.5,), max_layers=1))))
    run_inline(store, scan)
    cancelled = store.submit(spec({"type": "fp16", "version": 1, "data": {}}))
    store.cancel(cancelled)
    queued = store.submit(JobSpec(model_id=upload.id, data_ref=dataset.id,
                                  technique={"type": "int8_dynamic", "version": 1, "data": {}}))
    search = store.create_search("sample/digits_mlp", "digits", {"techniques": ["magnitude_pruning"], "trials": 2})
    trial_job = store.add_search_trial(search, 0, spec({"type": "magnitude_pruning", "version": 1,
                                                        "data": {"amount": 0.3}}), {"amount": 0.3}, {"note": "x"})
    store.register_worker("old-worker", 1, "elsewhere")
    facts = {"models": [upload.id], "datasets": [dataset.id],
             "jobs": {"done": done, "failed": failed, "scan": scan, "cancelled": cancelled, "queued": queued,
                      "trial": trial_job},
             "results": [r.id for r in store.list_results()], "analyses": [a.id for a in store.list_analyses()],
             "searches": [search], "data_dir": str(store.data_dir)}
    (out / "facts.json").write_text(json.dumps(facts, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
