"""torch.compile (Inductor) on the ``.pt2`` program: compiled per batch shape, freezing on, compile time recorded.

The program is loaded with ``torch.export.load(...).module()`` (the download, as a user would
run it) and compiled with ``torch.compile(dynamic=False)`` under
``torch._inductor.config.freezing = True``: weights become constants, so a PT2E int8 model
(``X86InductorQuantizer``) lowers to real int8 kernels (oneDNN qconv / qlinear) instead of the
reference quantize / dequantize graph it runs as in eager. Inductor compiles one fixed shape
per batch (a dynamic batch fails for PT2E graphs), on the first call: that call's time, with
loading, is the batch's ``compile_s``. The FX graph cache is off, so the figure is a cold
compile. Measured in a child process (a compile can take tens of seconds, or crash).
"""
from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lwdash.runtimes.registry import Runner, Runtime, UnsupportedArtifact, register_runtime

__all__ = ["TORCH_INDUCTOR"]


def _load(artifact: Any, threads: int) -> Runner:
    import torch

    from lwdash.measure.environment import torch_threads

    path = Path(artifact)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.export.load(str(path))
        except Exception as e:
            raise UnsupportedArtifact(f"torch.export.load cannot read this program: {type(e).__name__}: "
                                      f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}") from None
    module = program.module()
    compiled: list[Any] = []

    @contextmanager
    def scope() -> Iterator[None]:
        import torch._inductor.config as inductor_config

        with (torch_threads(threads), torch.inference_mode(),
              inductor_config.patch(freezing=True, fx_graph_cache=False, compile_threads=1),
              warnings.catch_warnings()):
            warnings.simplefilter("ignore")
            yield

    def prepare(x: torch.Tensor) -> torch.Tensor:
        torch._dynamo.reset()  # a fresh compile for this shape: nothing reused from another batch
        compiled[:] = [torch.compile(module, dynamic=False)]
        return x.contiguous()

    return Runner(run=lambda x: compiled[0](x), prepare=prepare, scope=scope)


def _available() -> str | None:
    if importlib.util.find_spec("torch") is None:
        return "PyTorch is not installed here"
    import shutil

    if shutil.which("g++") is None and shutil.which("c++") is None:
        return "torch.compile (Inductor) needs a C++ compiler on the CPU; none found (apt-get install g++)"
    return None


TORCH_INDUCTOR = register_runtime(Runtime(
    key="inductor",
    title="torch.compile (Inductor)",
    short="Inductor",
    row_title="torch.compile",
    artifact="pt2",
    load=_load,
    imports=("torch._dynamo", "torch._inductor.compile_fx"),
    available=_available,
    engine="torch.compile (Inductor)",
    fusion="on",
    isolated=True,
    default=False,
    caveat=("torch.compile compiles once per batch shape (its compile time is in the matrix); freezing is on, so "
            "PT2E int8 programs run int8 kernels."),
    description="the .pt2 program compiled by torch.compile (Inductor, freezing on) for each batch shape",
    how_to_run=('`torch._inductor.config.freezing = True; m = torch.compile(torch.export.load("model.pt2").module()); '
                "m(x)` under `torch.inference_mode()` (one compile per input shape)"),
))
