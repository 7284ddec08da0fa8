"""TEST-ONLY techniques, imported by job processes through LWDASH_TEST_TECHNIQUES.

``test_sleep`` reports progress and sleeps (to be cancelled or timed out); ``test_sigkill``
kills its own process with SIGKILL, as the kernel's out-of-memory killer would.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

from torch import nn

from lwdash.techniques.base import CompressedModel, RunContext, TechniqueConfig, knob, register


@dataclass(frozen=True)
class SleepConfig(TechniqueConfig):
    """Test only: sleep, reporting progress."""

    seconds: float = knob(600.0, ge=0.0, help="how long to sleep")


@dataclass(frozen=True)
class SigkillConfig(TechniqueConfig):
    """Test only: the job's process kills itself with SIGKILL."""


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
