"""Helpers shared by the technique families: layer discovery, seeded fine-tuning, ONNX export.

Private to ``lwdash.techniques``; nothing here mutates a caller's model unless its name ends in ``_``.
"""
from __future__ import annotations

import contextlib
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from torch import nn

if TYPE_CHECKING:
    import onnx

    from lwdash.data import Split

__all__ = [
    "LayerMacs",
    "batch_for_export",
    "classifier_name",
    "export_onnx_proto",
    "layer_macs",
    "no_layers_message",
    "top1_agreement",
    "train_classifier_",
    "weight_layers",
]

WEIGHT_LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.modules.conv._ConvNd)


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Conv (any dim, transposed too) and Linear layers with a weight tensor, in registration order.

    A layer reachable under several names (shared weights) is listed once, under its first name.
    """
    seen: set[int] = set()
    out: list[tuple[str, nn.Module]] = []
    for name, mod in model.named_modules():
        if isinstance(mod, WEIGHT_LAYER_TYPES) and isinstance(getattr(mod, "weight", None), torch.Tensor):
            if id(mod) in seen:
                continue
            seen.add(id(mod))
            out.append((name, mod))
    return out


def classifier_name(model: nn.Module) -> str | None:
    """Name of the final classifier: the last Conv/Linear layer in registration order (``None`` if none).

    Registration order is execution order for sequential classifiers, torchvision's models and
    modules converted from ONNX graphs, which is all lwdash loads.
    """
    layers = weight_layers(model)
    return layers[-1][0] if layers else None


def no_layers_message(technique: str, model: nn.Module) -> str:
    """The error text for a model that exposes no Conv/Linear layer modules."""
    kind = type(model).__name__
    return (
        f"{technique} needs Conv or Linear layer modules, and this model ({kind}) has none. "
        "Models kept as a traced graph (some TorchScript or torch.export files) expose no layer modules: "
        "load the model as a state dict for a known architecture, or as ONNX, to compress it."
    )


def _weight(mod: nn.Module) -> torch.Tensor:
    """A Conv/Linear layer's weight tensor."""
    w = mod.weight
    assert isinstance(w, torch.Tensor)
    return w


def _layers(count: int) -> str:
    """``"1 layer"``, ``"3 layers"``: a layer count for notes."""
    return f"{count} layer" + ("" if count == 1 else "s")


@dataclass(frozen=True)
class LayerMacs:
    """Multiply-accumulates of one Conv/Linear layer for a single sample."""

    name: str
    kind: Literal["conv", "linear"]
    macs: int


def layer_macs(model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerMacs]:
    """MACs per Conv/Linear layer, measured with forward hooks on one zero sample.

    Hooks are added to ``model`` and always removed; the model is run under ``torch.no_grad``.
    Layers that never run in the forward pass are left out.
    """
    records: list[LayerMacs] = []
    handles = []

    def hook_for(name: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], None]:
        def hook(mod: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            if not isinstance(out, torch.Tensor):
                return
            if isinstance(mod, nn.Linear):
                records.append(LayerMacs(name, "linear", int(out.numel()) * int(mod.in_features)))
            else:
                w = mod.weight  # (C_out, C_in / groups, *k) or transposed (C_in, C_out / groups, *k)
                assert isinstance(w, torch.Tensor)
                if isinstance(mod, nn.modules.conv._ConvTransposeNd):
                    per_in = int(w[0].numel())  # C_out / groups * k
                    records.append(LayerMacs(name, "conv", int(inputs[0].numel()) * per_in))
                else:
                    per_out = int(w[0].numel())  # C_in / groups * k
                    records.append(LayerMacs(name, "conv", int(out.numel()) * per_out))

        return hook

    for name, mod in weight_layers(model):
        handles.append(mod.register_forward_hook(hook_for(name)))
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_shape)))
    finally:
        for h in handles:
            h.remove()
    return records


def batch_for_export(x: torch.Tensor, batch: int = 32) -> torch.Tensor:
    """A real example batch of at least 2 samples (torch.export specializes batch sizes 0 and 1)."""
    b = x[: max(2, min(batch, len(x)))]
    if len(b) < 2:
        b = torch.cat([b, b], dim=0)[:2]
    return b.clone()


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    # Fork the global RNG so that dropout and init are seeded without disturbing the caller's stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def train_classifier_(
    model: nn.Module,
    split: Split,
    *,
    epochs: int,
    lr: float,
    seed: int,
    batch_size: int = 64,
    progress: Callable[[float, str], None] | None = None,
    after_step: Callable[[], None] | None = None,
    label: str = "fine-tuning",
) -> float:
    """Fine-tune ``model`` in place with Adam and cross-entropy; leaves it in eval mode.

    Args:
        model: the module to train (mutated: hence the trailing underscore).
        split: training samples and labels.
        epochs: passes over ``split``.
        lr: Adam learning rate.
        seed: seeds the shuffling and any dropout.
        batch_size: samples per step.
        progress: called with (fraction 0..1, message) after each epoch.
        after_step: called after every optimizer step (for example to re-apply pruning masks).
        label: what the progress messages call this training.

    Returns:
        The mean training loss of the last epoch (``nan`` when ``epochs`` is 0).
    """
    if epochs <= 0:
        return float("nan")
    if len(split) == 0:
        raise ValueError(f"{label} needs training samples, and the training split is empty")
    params = [p for p in model.parameters() if p.is_floating_point()]
    was_trainable = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    last = float("nan")
    with _seeded(seed), torch.enable_grad():
        model.train()
        try:
            for epoch in range(epochs):
                order = torch.randperm(len(split), generator=gen)
                total, count = 0.0, 0
                for i in range(0, len(order), batch_size):
                    idx = order[i : i + batch_size]
                    xb, yb = split.x[idx], split.y[idx]
                    opt.zero_grad(set_to_none=True)
                    loss = nn.functional.cross_entropy(model(xb), yb)
                    loss.backward()
                    opt.step()
                    if after_step is not None:
                        after_step()
                    total += float(loss.detach()) * len(idx)
                    count += len(idx)
                last = total / max(count, 1)
                if progress is not None:
                    progress((epoch + 1) / epochs, f"{label}: epoch {epoch + 1}/{epochs}, loss {last:.4f}")
        finally:
            model.eval()
    for p, flag in zip(params, was_trainable, strict=True):
        p.requires_grad_(flag)
        p.grad = None
    return last


def top1_agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fraction of rows whose argmax is equal in two logit tensors ``(N, C)``."""
    return float((a.argmax(dim=1) == b.argmax(dim=1)).float().mean())


def _export_fallback(module: nn.Module, input_shape: tuple[int, ...], path: Path) -> Path:
    """ONNX export with a dynamic batch dim into one self-contained file (no ``.onnx.data`` side file)."""
    import onnx

    example = (torch.zeros((2, *input_shape)),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            prog = torch.onnx.export(
                module,
                example,
                dynamo=True,
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                opset_version=18,
                verbose=False,
            )
            assert prog is not None
            onnx.save_model(prog.model_proto, str(path))
        except Exception:
            # The TorchScript exporter still handles some modules the dynamo exporter rejects.
            torch.onnx.export(
                module,
                example,
                str(path),
                dynamo=False,
                opset_version=18,
                input_names=["input"],
                output_names=["logits"],
                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            )
    return path


def _export_fn() -> Callable[[nn.Module, tuple[int, ...], Path], Path]:
    # Use the measure package's exporter (the same one the runner uses) once it is there.
    try:
        from lwdash.measure import export_onnx
    except ImportError:
        try:
            from lwdash.measure.export import export_onnx
        except ImportError:
            return _export_fallback
    return export_onnx


def export_onnx_proto(module: nn.Module, input_shape: tuple[int, ...]) -> onnx.ModelProto:
    """Export ``module`` (fp32, eval mode) to an in-memory ONNX model with a dynamic batch dim."""
    import onnx

    with tempfile.TemporaryDirectory(prefix="lwdash-export-") as tmp:
        path = Path(_export_fn()(module, tuple(input_shape), Path(tmp) / "model.onnx"))
        return onnx.load_model(str(path))
