"""Apache TVM (Relax, untuned) on the ONNX artifact: imported with ``from_onnx``, built per batch shape for the CPU.

``tvm.relax.frontend.onnx.from_onnx`` (weights bound as constants) ->
``DecomposeOpsForInference`` -> ``LegalizeOps`` -> ``relax.build`` for an LLVM target, run on
Relax's virtual machine. Untuned: no MetaSchedule search, so these are TVM's out-of-the-box
times (far slower than ONNX Runtime here), a floor for what tuning starts from. A QDQ int8 model
runs in float (TVM's ONNX importer has no int8 kernels for it). No operator fusion pass
runs (``relax.build``'s CPU pipeline has none): untuned fused kernels (``FuseOps`` + ``FuseTIR``)
measured slower here, 283 ms against 181 ms for the digits CNN at batch 32. The target CPU is
``x86-64-v3`` (AVX2) when the CPU has AVX2, else ``x86-64``: TVM 0.27 takes a JSON-style target
dict, and ``-mcpu=native`` / ``znver4`` fail or crash here.

Measured in a child process: building takes seconds to tens of seconds per shape, and a crash
in LLVM or the VM fails that measurement only. Its download is the library built with a
dynamic batch (``model_tvm.so``, ``Executable.export_library``, which needs a C compiler).
"""
from __future__ import annotations

import importlib.util
import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lwdash.runtimes.registry import Runner, Runtime, UnsupportedArtifact, register_runtime

if TYPE_CHECKING:
    import torch

__all__ = ["TVM", "build_tvm", "tvm_target_cpu"]

_INSTALL = "pip install apache-tvm"


@cache
def tvm_target_cpu() -> str:
    """``"x86-64-v3"`` when this CPU has AVX2 (and FMA, BMI2), else ``"x86-64"``."""
    try:
        flags = next((ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")), "")
    except OSError:
        return "x86-64"
    return "x86-64-v3" if {"avx2", "fma", "bmi2"} <= set(flags.split()) else "x86-64"


def build_tvm(path: Path, threads: int, batch: int | None) -> Any:
    """The ONNX file built by TVM Relax for the CPU: an ``Executable``.

    Args:
        path: the ONNX file.
        threads: the CPU cores the target is told about (the thread pool is sized by ``TVM_NUM_THREADS``).
        batch: a static batch size, or ``None`` to keep the model's own (dynamic) batch dimension.

    Raises:
        UnsupportedArtifact: TVM cannot import or build this model (one line).
    """
    os.environ["TVM_NUM_THREADS"] = str(int(threads))  # read when the thread pool starts (in its own process)
    import onnx
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    model = onnx.load(str(path))
    shape_dict = None
    if batch is not None:
        inp = model.graph.input[0]
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in inp.type.tensor_type.shape.dim]
        shape_dict = {inp.name: [int(batch), *dims[1:]]}
    target = tvm.target.Target({"kind": "llvm", "mcpu": tvm_target_cpu(), "num-cores": int(threads)})
    try:
        mod = from_onnx(model, shape_dict=shape_dict, keep_params_in_input=False)
        mod = relax.transform.DecomposeOpsForInference()(mod)
        mod = relax.transform.LegalizeOps()(mod)
        return relax.build(mod, target=target)
    except Exception as e:  # TVM raises its own error types (tvm.error.*, TVMError)
        msg = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise UnsupportedArtifact(f"TVM cannot build this model: {type(e).__name__}: {msg[:300]}") from None


def _load(artifact: Any, threads: int) -> Runner:
    import numpy as np

    path = Path(artifact)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX file not found: {path}")
    vm: list[Any] = []

    def prepare(x: torch.Tensor) -> Any:
        import tvm
        from tvm import relax

        ex = build_tvm(path, threads, int(x.shape[0]))
        vm[:] = [relax.VirtualMachine(ex, tvm.cpu())["main"]]
        return tvm.runtime.tensor(x.detach().cpu().numpy().astype(np.float32))

    def run(feed: Any) -> Any:
        return vm[0](feed).numpy()  # the result copied back to the host, as ONNX Runtime's run does

    return Runner(run=run, prepare=prepare)


def _available() -> str | None:
    return None if importlib.util.find_spec("tvm") else f"Apache TVM is not installed here ({_INSTALL})"


def _export(artifact: Any, out_dir: Path) -> dict[str, Path]:
    import shutil

    if shutil.which("gcc") is None and shutil.which("cc") is None:
        raise UnsupportedArtifact("exporting the TVM library needs a C compiler (gcc); none found")
    ex = build_tvm(Path(artifact), 1, None)
    so = Path(out_dir) / "model_tvm.so"
    ex.export_library(str(so))
    return {"model_tvm.so": so}


TVM = register_runtime(Runtime(
    key="tvm",
    title="TVM (Relax, untuned)",
    short="TVM",
    row_title="TVM",
    artifact="onnx",
    load=_load,
    imports=("onnx", "tvm", "tvm.relax", "tvm.relax.frontend.onnx"),
    available=_available,
    engine="Apache TVM",
    fusion="off",
    isolated=True,
    default=False,
    export=_export,
    export_files=("model_tvm.so",),
    caveat=("TVM is untuned (no MetaSchedule search, no operator fusion) and runs QDQ int8 in float: its times "
            "are a starting point, not what tuned TVM reaches."),
    description="the ONNX artifact imported into TVM Relax and built for the CPU (LLVM) for each batch shape, untuned",
    how_to_run=('`vm = tvm.relax.VirtualMachine(tvm.runtime.load_module("model_tvm.so"), tvm.cpu()); '
                'vm["main"](tvm.runtime.tensor(x)).numpy()` (apache-tvm 0.27; built for x86-64-v3 (AVX2) CPUs, '
                "or generic x86-64 where the measuring CPU had no AVX2)"),
))
