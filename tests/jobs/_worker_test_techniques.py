"""TEST-ONLY techniques, registered in job processes by the tests' own means, never by lwdash.

Local workers get them through ``_launch_worker.py`` (each job process imports it again first);
Ray's worker processes through the ``worker_process_setup_hook`` the Ray test passes to
``ray.init`` (:func:`ray_worker_setup`). The pytest process never imports this module (its
techniques would join the registry that the contract tests walk).

``test_sleep`` reports progress and sleeps (to be cancelled or timed out); ``test_sigkill``
kills its own process with SIGKILL, as the kernel's out-of-memory killer would;
``test_segfault`` sends itself SIGSEGV (a crash in native code); ``test_alloc`` allocates and
touches memory in chunks (to hit the memory limit); ``test_raise`` raises an error.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import torch
from torch import nn

from lwdash.techniques.base import CompressedModel, RunContext, TechniqueConfig, knob, register


@dataclass(frozen=True)
class SleepConfig(TechniqueConfig):
    """Test only: sleep, reporting progress."""

    seconds: float = knob(600.0, ge=0.0, help="how long to sleep")


@dataclass(frozen=True)
class SigkillConfig(TechniqueConfig):
    """Test only: the job's process kills itself with SIGKILL."""


@dataclass(frozen=True)
class SegfaultConfig(TechniqueConfig):
    """Test only: the job's process crashes with SIGSEGV."""


@dataclass(frozen=True)
class AllocConfig(TechniqueConfig):
    """Test only: allocate ``total_mb`` in chunks of ``chunk_mb``, touching every page, then sleep."""

    chunk_mb: int = knob(32, ge=1, help="MiB per allocation")
    total_mb: int = knob(4096, ge=1, help="MiB in all")
    pause_s: float = knob(0.02, ge=0.0, help="pause between chunks")


@dataclass(frozen=True)
class RaiseConfig(TechniqueConfig):
    """Test only: raise an error from inside the technique."""


@register("test_sleep", SleepConfig, family="test")
def apply_sleep(model: nn.Module, cfg: SleepConfig, ctx: RunContext) -> CompressedModel:
    end = time.monotonic() + cfg.seconds
    while time.monotonic() < end:
        ctx.progress(0.5, "test: sleeping")
        time.sleep(0.1)
    return CompressedModel(module=model)


@register("test_sigkill", SigkillConfig, family="test")
def apply_sigkill(model: nn.Module, cfg: SigkillConfig, ctx: RunContext) -> CompressedModel:
    ctx.progress(0.5, "test: about to be killed")
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


@register("test_segfault", SegfaultConfig, family="test")
def apply_segfault(model: nn.Module, cfg: SegfaultConfig, ctx: RunContext) -> CompressedModel:
    ctx.progress(0.5, "test: about to crash")
    os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(10)
    raise AssertionError("unreachable")


@register("test_alloc", AllocConfig, family="test")
def apply_alloc(model: nn.Module, cfg: AllocConfig, ctx: RunContext) -> CompressedModel:
    held = []
    for i in range(max(1, cfg.total_mb // cfg.chunk_mb)):
        ctx.progress(0.5, f"test: holding {i * cfg.chunk_mb} MiB")
        held.append(torch.ones(cfg.chunk_mb * 2**20, dtype=torch.uint8))  # ones: every page touched
        time.sleep(cfg.pause_s)
    time.sleep(30)
    return CompressedModel(module=model)


@register("test_raise", RaiseConfig, family="test")
def apply_raise(model: nn.Module, cfg: RaiseConfig, ctx: RunContext) -> CompressedModel:
    raise RuntimeError("test: the technique broke")


def ray_worker_setup() -> None:
    """Ray's ``worker_process_setup_hook`` (``"_worker_test_techniques.ray_worker_setup"``).

    Ray imports this module to find the hook, which registers the techniques above; nothing else to do.
    """
