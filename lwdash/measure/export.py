"""Export a model as a self-contained ONNX file and as a ``torch.export`` program (``.pt2``).

Both artifacts take float32 input ``(batch, *input_shape)`` with a dynamic batch dimension.
The ONNX file has input ``input`` and output ``logits``, its weights inside the one file (no
``.onnx.data`` side file), opset >= 17, and is checked with ``onnx.checker`` and by running it in
ONNX Runtime at two batch sizes before it is put in place.

Graph modules (``torch.export(...).module()``, PT2E-quantized models, onnx2torch output) are
exported like any module. An exported module traced at a fixed batch carries a guard that
rejects every other batch size; the guard is dropped from a copy (never from the caller's
module) so the graph can be re-exported with a dynamic batch. If the graph itself bakes the batch
size in, export fails with a clear :class:`ExportError`.

Files are written to a temporary name in the target folder and renamed into place, so a failed
export never leaves a partial file.
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import fx, nn

__all__ = [
    "INPUT_NAME",
    "MIN_OPSET",
    "OUTPUT_NAME",
    "ExportError",
    "check_input_shape",
    "eval_mode",
    "export_onnx",
    "runnable_form",
    "save_pt2",
    "write_onnx",
]

log = logging.getLogger(__name__)

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
MIN_OPSET = 17
_LEGACY_OPSET = 17
_PT2_EXAMPLE_BATCH = 2  # torch.export needs an example batch >= 2 to keep the dim dynamic


class ExportError(RuntimeError):
    """A model could not be exported; the message says which exporters were tried and why they failed."""


def check_input_shape(input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Validate a per-sample input shape (no batch dim) and return it as a tuple of ints.

    Raises:
        ValueError: the shape is empty or holds a non-positive / non-integer size.
    """
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be a tuple of positive ints such as (1, 8, 8), got {input_shape!r}") from None
    if not shape or any(d <= 0 for d in shape) or any(int(d) != d for d in input_shape):
        raise ValueError(f"input_shape must be a non-empty tuple of positive ints such as (1, 8, 8), got {input_shape!r}")
    return shape


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` in eval mode for the block and restore every submodule's mode after.

    Exported graph modules refuse ``train()`` / ``eval()`` (their mode is fixed at export); they
    are left as they are.
    """
    saved = [(m, m.training) for m in module.modules()]
    try:
        module.eval()
    except Exception:  # exported GraphModules raise NotImplementedError on eval()
        saved = []
    try:
        yield module
    finally:
        for m, training in saved:
            m.training = training


def _traced_batch(module: nn.Module) -> int | None:
    """The static batch size an exported graph was traced at, if its first input has one."""
    if not isinstance(module, fx.GraphModule):
        return None
    for node in module.graph.nodes:
        if node.op == "placeholder":
            val = node.meta.get("val")
            shape = getattr(val, "shape", None)
            if shape is not None and len(shape) > 0 and isinstance(shape[0], int):
                return int(shape[0])
            return None
    return None


def _without_guards(gm: fx.GraphModule) -> fx.GraphModule | None:
    """A copy of ``gm`` with its input guards (``_guards_fn`` calls) removed, or None if it has none."""
    if not any(n.op == "call_module" and str(n.target) == "_guards_fn" for n in gm.graph.nodes):
        return None
    clone = copy.deepcopy(gm)
    for node in list(clone.graph.nodes):
        if node.op == "call_module" and str(node.target) == "_guards_fn" and not node.users:
            clone.graph.erase_node(node)
    clone.recompile()
    return clone


def runnable_form(module: nn.Module) -> nn.Module:
    """``module``, or for an exported graph traced at a fixed batch, a copy without its batch guard.

    The copy (which shares nothing with the caller's module) runs at any batch size where the
    graph itself does not bake the batch in; it is what :func:`save_pt2` and :func:`export_onnx`
    export, so measuring it measures the downloadable PyTorch form.
    """
    if isinstance(module, fx.GraphModule):
        stripped = _without_guards(module)
        if stripped is not None:
            return stripped
    return module


def _candidates(module: nn.Module) -> list[tuple[nn.Module, int]]:
    """(module to export, example batch) pairs to try in order."""
    traced = _traced_batch(module)
    batch = traced if traced is not None and traced >= 2 else _PT2_EXAMPLE_BATCH
    if isinstance(module, fx.GraphModule):
        stripped = _without_guards(module)
        if stripped is not None:
            # A guarded graph rejects every batch but the traced one: only the copy can go dynamic.
            return [(stripped, batch)]
    return [(module, batch)]


def _example(input_shape: tuple[int, ...], batch: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randn((batch, *input_shape), generator=gen)


def _tmp_path(path: Path) -> Path:
    # keep the suffix: torch.export.save/load insist on a name ending in .pt2
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


def _remove(*paths: Path) -> None:
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _side_files(path: Path) -> list[Path]:
    return [p for p in path.parent.glob(f"{path.name}*") if p != path and p.suffix == ".data"]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence exporter chatter (warnings, progress prints) for the block."""
    torch_log = logging.getLogger("torch")
    level = torch_log.level
    torch_log.setLevel(logging.CRITICAL)  # failed attempts log long tracebacks that are reported in ExportError
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        torch_log.setLevel(level)


def _export_dynamo(module: nn.Module, x: torch.Tensor, dest: Path) -> None:
    program = torch.onnx.export(
        module,
        (x,),
        dynamo=True,
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        verbose=False,
        optimize=True,
    )
    if program is None:
        raise ExportError("the dynamo exporter returned no program")
    program.save(dest, external_data=False)


def _export_legacy(module: nn.Module, x: torch.Tensor, dest: Path) -> None:
    torch.onnx.export(
        module,
        (x,),
        str(dest),
        dynamo=False,
        opset_version=_LEGACY_OPSET,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        do_constant_folding=True,
    )


def _check_onnx_file(path: Path, input_shape: tuple[int, ...] | None) -> None:
    """Check the file with onnx.checker and run it in ONNX Runtime at batch 1 and 3."""
    onnx.checker.check_model(str(path))
    model = onnx.load(str(path), load_external_data=False)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < MIN_OPSET:
        raise ExportError(f"exported opset {opset} is below the required {MIN_OPSET}")
    if any(
        t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer
    ):
        raise ExportError("the exported model refers to external weight data; expected one self-contained file")
    if input_shape is None:
        return
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    for batch in (1, 3):
        out = sess.run(None, {name: np.zeros((batch, *input_shape), dtype=np.float32)})[0]
        if out.shape[0] != batch:
            raise ExportError(f"the exported graph does not keep a dynamic batch: input batch {batch} gave output {out.shape}")


def export_onnx(module: nn.Module, input_shape: tuple[int, ...], path: Path) -> Path:
    """Export ``module`` as one self-contained ONNX file with a dynamic batch dimension.

    Tries the dynamo exporter (``torch.onnx.export(..., dynamo=True)``, dynamic batch via
    ``torch.export.Dim``) and, if it fails, the legacy TorchScript exporter (opset 17,
    ``dynamic_axes``). The result is checked (``onnx.checker``, ONNX Runtime at batch 1 and 3)
    before it is renamed to ``path``. The caller's module is not modified (its train/eval modes
    are restored).

    Args:
        module: the model (plain, pruned, GraphModule, PT2E-quantized, onnx2torch output).
        input_shape: per-sample input shape without the batch dim, e.g. ``(1, 8, 8)``.
        path: destination ``.onnx`` file; its folder is created if needed.

    Returns:
        ``path``.

    Raises:
        ValueError: ``input_shape`` is not a tuple of positive ints.
        ExportError: no exporter produced a valid file; the message lists each attempt's error.
    """
    input_shape = check_input_shape(input_shape)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    errors: list[str] = []
    with eval_mode(module):
        cands = _candidates(module)
        attempts: list[tuple[str, nn.Module, int, object]] = [
            *(("dynamo exporter", cand, batch, _export_dynamo) for cand, batch in cands),
            *(("legacy exporter", cand, batch, _export_legacy) for cand, batch in cands),
        ]
        for label, cand, batch, fn in attempts:
            _remove(tmp, *_side_files(tmp))
            try:
                with _quiet():
                    fn(cand, _example(input_shape, batch), tmp)  # type: ignore[operator]
                if _side_files(tmp):
                    raise ExportError("the exporter wrote a side data file")
                _check_onnx_file(tmp, input_shape)
            except Exception as e:  # every exporter raises its own types; collect and go on
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                errors.append(f"{label}: {type(e).__name__}: {first[:400]}")
                log.info("ONNX export with the %s failed: %s", label, e)
                continue
            _remove(*_side_files(path))
            os.replace(tmp, path)
            return path
    _remove(tmp, *_side_files(tmp))
    raise ExportError(
        f"could not export {type(module).__name__} with input (batch, {', '.join(map(str, input_shape))}) to ONNX; "
        + "; ".join(errors)
    )


def _topologically_sorted(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose top-level nodes are in a stable topological order.

    Raises:
        ExportError: the graph has a cycle or a node input that nothing produces.
    """
    graph = model.graph
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            missing = sorted({i for n in pending for i in n.input if i not in available})
            raise ExportError(f"the ONNX graph cannot be ordered: no node produces {', '.join(missing[:5])}")
        ready_ids = {id(n) for n in ready}
        for n in ready:
            ordered.append(n)
            available.update(n.output)
        pending = [n for n in pending if id(n) not in ready_ids]
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.node[:]
    out.graph.node.extend(ordered)
    return out


def write_onnx(model: onnx.ModelProto, path: Path, input_shape: tuple[int, ...] | None = None) -> Path:
    """Save an ONNX model built elsewhere (e.g. by ONNX Runtime quantization) as one checked file.

    Args:
        model: the model; external-data references are not allowed.
        path: destination ``.onnx`` file.
        input_shape: when given, the file is also run in ONNX Runtime at batch 1 and 3.

    Returns:
        ``path``.

    Raises:
        ExportError: the model fails ``onnx.checker`` or does not run.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        if "topologically sorted" not in str(e):
            raise ExportError(f"the ONNX model is not valid: {e}") from e
        model = _topologically_sorted(model)  # some graph rewriters append nodes out of order
    try:
        onnx.save_model(model, str(tmp), save_as_external_data=False)
        _check_onnx_file(tmp, check_input_shape(input_shape) if input_shape is not None else None)
    except ExportError:
        _remove(tmp)
        raise
    except Exception as e:
        _remove(tmp)
        raise ExportError(f"the ONNX model is not valid: {type(e).__name__}: {e}") from e
    os.replace(tmp, path)
    return path


def save_pt2(module: nn.Module, input_shape: tuple[int, ...], path: Path) -> bool:
    """Save ``module`` as a ``torch.export`` program (``.pt2``) with a dynamic batch dimension.

    Exports with an example batch >= 2 (non-strict, then strict tracing), saves with
    ``torch.export.save`` to a temporary file, checks it loads back with ``torch.export.load`` and
    renames it to ``path``.

    Args:
        module: the model; it is not modified.
        input_shape: per-sample input shape without the batch dim.
        path: destination ``.pt2`` file.

    Returns:
        True when ``path`` was written; False when the model cannot be exported (the reason is
        logged) - then no file is left behind (an existing ``path`` is not touched).

    Raises:
        ValueError: ``input_shape`` is not a tuple of positive ints.
    """
    input_shape = check_input_shape(input_shape)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    dims = ({0: torch.export.Dim("batch")},)
    errors: list[str] = []
    with eval_mode(module):
        for cand, batch in _candidates(module):
            for strict in (False, True):
                try:
                    with _quiet():
                        program = torch.export.export(cand, (_example(input_shape, batch),), dynamic_shapes=dims, strict=strict)
                        torch.export.save(program, tmp)
                        torch.export.load(tmp)
                except Exception as e:  # torch.export raises many types; the .pt2 is optional
                    errors.append(f"strict={strict}: {type(e).__name__}: {str(e).strip()[:300]}")
                    _remove(tmp)
                    continue
                os.replace(tmp, path)
                return True
    log.warning("could not save %s as .pt2: %s", type(module).__name__, "; ".join(errors))
    return False
