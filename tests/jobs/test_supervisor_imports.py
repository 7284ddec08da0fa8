"""The worker's supervising process stays light: it claims, watches and records jobs without torch.

``python -m lwdash worker`` imports the CLI, the worker and the store; the engines are imported by
the job processes it starts. A heavy import here costs every worker start (and the app's first
page, which starts one) seconds of torch loading.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_worker_supervisor_imports_no_engine() -> None:
    probe = ("import sys\nimport lwdash.cli, lwdash.jobs.worker, lwdash.workspace\n"
             "print(' '.join(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'pandas', 'optuna', 'torchvision')"
             " if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == []


def test_job_processes_fork_from_a_zygote_holding_what_jobs_import() -> None:
    # lwdash.models and lwdash.data load lazily: the zygote must name their modules, or every job imports
    # them (and torchvision with them) again after the fork.
    probe = ("import sys, importlib\nfrom lwdash.jobs.local import _ZYGOTE_PRELOAD\nimport lwdash.models, lwdash.data\n"
             "for m in _ZYGOTE_PRELOAD: importlib.import_module(m)\n"
             "wanted = {*lwdash.models._EXPORTS.values(), *lwdash.data._EXPORTS.values(), 'torch', 'torchvision'}\n"
             "print(' '.join(sorted(m for m in wanted if m not in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == []
