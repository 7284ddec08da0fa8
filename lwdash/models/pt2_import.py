"""Load a ``torch.export`` program (``.pt2``) as a module whose layers techniques can see.

The archive is vetted first (:mod:`lwdash.models.pt2_vet`: nothing in it may run code), then
loaded with ``torch.export.load`` and built with ``check_guards=False`` (the guard function would
be exec()'d from strings stored in the file). ``ExportedProgram.module()`` has no Conv/Linear
layer modules, so :func:`lwdash.models.pt2_rebuild.rebuild_layers` turns the graph's
convolution, linear, batch-norm and dropout calls back into real layers (checked to give the same
outputs); the program then takes every technique a state dict of the same model takes.
"""
from __future__ import annotations

import types
from pathlib import Path

import torch
from torch import nn

from lwdash.models._loadutil import ACCEPTED_FORMATS, fmt_shape, reason, to_fp32, verify
from lwdash.models.base import LoadedModel, ModelLoadError
from lwdash.models.pt2_rebuild import rebuild_layers
from lwdash.models.pt2_vet import check_exported_graph, vet_pt2_archive

__all__ = ["load_pt2"]

_TRAINING_OP_MARKERS = ("_native_batch_norm_legit_functional", "_native_batch_norm_legit.default", "native_dropout")


def _graph_in_training_mode(gm: torch.fx.GraphModule) -> bool:
    for node in gm.graph.nodes:
        if node.op != "call_function":
            continue
        target = str(node.target)
        if any(marker in target for marker in _TRAINING_OP_MARKERS):
            return True
        if "dropout" in target and len(node.args) >= 3 and node.args[2] is True:
            return True
        if target.startswith("aten.batch_norm") and len(node.args) >= 6 and node.args[5] is True:
            return True
    return False


def _exported_train(self: torch.fx.GraphModule, mode: bool = True) -> torch.fx.GraphModule:
    """``train()``/``eval()`` for an unlifted exported program (torch raises by default).

    An exported graph is specialised to the mode it was exported in; only dropout and batch
    norm can be switched, by rewriting the graph (torchao's helpers, imported only when the
    mode actually changes because the import and the rewrite take seconds).
    """
    mode = bool(mode)
    if mode != self.__dict__.get("_lwdash_graph_training", False):
        from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train

        (move_exported_model_to_train if mode else move_exported_model_to_eval)(self)
        self.__dict__["_lwdash_graph_training"] = mode
    for m in self.modules():
        m.training = mode
    return self


def _exported_eval(self: torch.fx.GraphModule) -> torch.fx.GraphModule:
    return _exported_train(self, False)


def _enable_train_eval(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    gm.__dict__["_lwdash_graph_training"] = _graph_in_training_mode(gm)
    gm.train = types.MethodType(_exported_train, gm)  # type: ignore[method-assign]
    gm.eval = types.MethodType(_exported_eval, gm)  # type: ignore[method-assign]
    return gm



def load_pt2(path: Path, name: str, input_shape: tuple[int, ...] | None) -> LoadedModel:
    vet_pt2_archive(path, name)
    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise ModelLoadError(
            f"could not read {name} as a torch.export program (.pt2): {reason(exc)}; accepted formats: {ACCEPTED_FORMATS}"
        ) from exc
    user_inputs = list(program.graph_signature.user_inputs)
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    tensor_inputs = [
        placeholders[u]
        for u in user_inputs
        if u in placeholders and isinstance(placeholders[u].meta.get("val"), torch.Tensor)
    ]
    if len(user_inputs) != 1 or len(tensor_inputs) != 1:
        raise ModelLoadError(
            f"{name} takes {len(user_inputs)} inputs ({', '.join(map(str, user_inputs))}); lwdash accepts "
            "classifiers with exactly one input tensor"
        )
    val = tensor_inputs[0].meta["val"]
    dims = list(val.shape)
    if len(dims) < 2:
        raise ModelLoadError(f"{name} takes a rank-{len(dims)} input; lwdash accepts (batch, ...) inputs")
    if not isinstance(dims[0], torch.SymInt):
        raise ModelLoadError(
            f"{name} was exported with a fixed batch size of {int(dims[0])}; lwdash measures several batch sizes. "
            "Export with a dynamic batch dim: torch.export.export(model, (x,), "
            "dynamic_shapes=({0: torch.export.Dim('batch')},)) with an example batch of 2 or more"
        )
    if val.dtype != torch.float32:
        raise ModelLoadError(f"{name} takes {val.dtype} input; lwdash accepts models with a float32 input tensor")
    per_sample = dims[1:]
    if any(isinstance(d, torch.SymInt) for d in per_sample):
        if input_shape is None:
            raise ModelLoadError(
                f"{name} has a dynamic input size beyond the batch dim; export it with a fixed per-sample shape "
                "or give input_shape (per sample, e.g. (3, 224, 224))"
            )
        shape = input_shape
    else:
        shape = tuple(int(d) for d in per_sample)
        if input_shape is not None and input_shape != shape:
            raise ModelLoadError(
                f"{name} was exported for input {fmt_shape(shape)} but input_shape {fmt_shape(input_shape)} was given"
            )
    try:
        # check_guards=False: the guard function would be exec()'d from strings stored in the file
        module: nn.Module = program.module(check_guards=False)
    except Exception as exc:
        raise ModelLoadError(f"could not rebuild a module from {name}: {reason(exc)}") from exc
    check_exported_graph(module, name)  # type: ignore[arg-type]
    module = _enable_train_eval(module)  # type: ignore[arg-type]
    module = to_fp32(module)
    module.eval()
    num_classes = verify(module, shape, name, None)
    module = _with_layers(module, shape)  # type: ignore[arg-type]
    return LoadedModel(module=module, input_shape=shape, num_classes=num_classes, source_format="pt2", arch=None)


def _with_layers(gm: torch.fx.GraphModule, shape: tuple[int, ...]) -> nn.Module:
    """The program with real layer modules, or as loaded when the rebuild does not reproduce it."""
    rebuilt, report = rebuild_layers(gm, shape)
    if rebuilt is gm or report.layers == 0:
        return gm
    if report.mode_ops_left:  # some batch norm / dropout calls stayed in the graph: switch them as before
        rebuilt = _enable_train_eval(rebuilt)
    rebuilt.eval()
    return rebuilt
