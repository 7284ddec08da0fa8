"""A demo workspace: real results on the bundled samples, made by running the jobs, never by writing numbers.

``python -m lwdash demo`` queues a curated set of compressions (:data:`DEMOS`) into a data
directory and runs them in this process exactly as a worker would (immediate mode), so a
stakeholder demo starts from a full Compare page whose every point was measured on this machine.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lwdash.jobs.spec import JobRecord, JobSpec

if TYPE_CHECKING:
    from lwdash.workspace import Store

__all__ = ["DEMOS", "demo_specs", "run_demo"]

# (model id, technique key, knobs): what each model is usually first tried with.
_Entry = tuple[str, str, dict[str, Any]]

#: Demo name -> (data set, the jobs). ``fashion``: the Fashion-MNIST samples on the quick split (4.8 minutes
#: on this 2-core machine); ``digits``: three quick jobs on the 8x8 samples (about a minute).
DEMOS: dict[str, tuple[str, tuple[_Entry, ...]]] = {
    "fashion": ("fashion_mnist_quick", (
        ("sample/fashion_cnn", "int8_static", {}),
        ("sample/fashion_cnn", "structured_pruning", {"ratio": 0.3, "fine_tune_epochs": 1}),
        ("sample/fashion_cnn", "structured_pruning", {"ratio": 0.5, "fine_tune_epochs": 1}),
        ("sample/fashion_cnn", "low_rank", {}),
        ("sample/fashion_cnn", "fp16", {}),
        ("sample/fashion_mobilenet_v2", "int8_static", {}),
        ("sample/fashion_mobilenet_v2", "structured_pruning", {"ratio": 0.3, "fine_tune_epochs": 1}),
        ("sample/fashion_vit", "int8_dynamic", {}),
        ("sample/fashion_vit", "low_rank", {}),
    )),
    "digits": ("digits", (
        ("sample/digits_cnn", "int8_static", {}),
        ("sample/digits_cnn", "magnitude_pruning", {"amount": 0.5}),
        ("sample/digits_mlp", "fp16", {}),
    )),
}


def demo_specs(name: str) -> list[JobSpec]:
    """The jobs of demo ``name``, configs built and validated by the technique registry.

    Raises:
        ValueError: no such demo.
    """
    from lwdash.techniques import build_config, config_to_dict, get_technique

    if name not in DEMOS:
        raise ValueError(f"no demo {name!r}; demos: {', '.join(DEMOS)}")
    data_ref, entries = DEMOS[name]
    return [JobSpec(model_id=model_id, data_ref=data_ref,
                    technique=config_to_dict(key, build_config(get_technique(key).config_type, knobs)))
            for model_id, key, knobs in entries]


def run_demo(store: Store, name: str, report: Callable[[int, int, JobRecord], None] | None = None) -> list[JobRecord]:
    """Queue demo ``name`` and run its jobs here, in order; returns the finished jobs.

    Raises:
        DataError: the demo's data set is not installed here (the message says how to install it).
        ValueError: other jobs are queued or running in this data directory (a worker serves it: the demo's
            jobs would interleave with them).
    """
    from lwdash.data.bundled import load_bundled
    from lwdash.jobs.inline import run_inline
    from lwdash.jobs.spec import JobStatus

    counts = store.count_jobs()
    busy = counts[JobStatus.QUEUED] + counts[JobStatus.RUNNING]
    if busy:
        raise ValueError(f"{busy} job(s) are queued or running in {store.data_dir}: the demo runs its own jobs in "
                         "this process; let them finish, or fill a fresh directory (--data-dir)")
    specs = demo_specs(name)
    load_bundled(specs[0].data_ref)  # refuse now, with the install hint, rather than fail every job
    ids = store.submit_many(specs)
    done = []
    for k, job_id in enumerate(ids, 1):
        job = run_inline(store, job_id)
        assert job is not None
        done.append(job)
        if report is not None:
            report(k, len(ids), job)
    return done
