"""PyTorch eager on the PyTorch form: ``module(x)`` under ``torch.inference_mode()`` at ``threads`` threads."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from lwdash.runtimes.registry import Runner, Runtime, register_runtime

if TYPE_CHECKING:
    from torch import nn

__all__ = ["TORCH_EAGER", "module_runner"]


def module_runner(module: nn.Module, threads: int) -> Runner:
    """A :class:`Runner` of one eager forward pass; the module is in eval mode only while it is timed."""
    import torch

    from lwdash.measure.environment import torch_threads
    from lwdash.measure.export import eval_mode

    @contextmanager
    def scope() -> Iterator[None]:
        with torch_threads(threads), eval_mode(module), torch.inference_mode():
            yield

    return Runner(run=module, scope=scope)


def _load(artifact: Any, threads: int) -> Runner:
    return module_runner(artifact, threads)


TORCH_EAGER = register_runtime(Runtime(
    key="torch",
    title="PyTorch eager",
    short="PyTorch",
    row_title="PyTorch",
    artifact="pytorch",
    load=_load,
    engine="PyTorch eager",
    description="one eager forward pass of the PyTorch form under torch.inference_mode()",
    how_to_run='`m = torch.export.load("model.pt2").module(); m(x)` under `torch.inference_mode()`',
))
