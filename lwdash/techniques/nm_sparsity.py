"""Semi-structured N:M sparsity: keep the N largest of every M weights along the reduction dimension.

``nm_sparsity`` zeroes weights in a fixed N:M pattern (default 2:4). Shapes stay dense: only GPUs
with sparse tensor cores run that pattern faster. Also importable from
:mod:`lwdash.techniques.structured`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from lwdash.techniques._common import _layers, _weight, classifier_name, no_layers_message, weight_layers
from lwdash.techniques.base import CompressedModel, RunContext, knob, register
from lwdash.techniques.recovery import RecoveryKnobs, recover_after, recovery_default

__all__ = ["NM_SPEED_NOTE", "NMSparsityConfig", "apply_nm_sparsity", "nm_eligible_layers", "nm_mask"]

NM_SPEED_NOTE = (
    "2:4 sparsity only speeds up on GPUs with sparse tensor cores (NVIDIA Ampere+) via "
    "torch.sparse.to_sparse_semi_structured; PyTorch and ONNX Runtime on this CPU run it as dense, "
    "so latency is unchanged"
)


@dataclass(frozen=True)
class NMSparsityConfig(RecoveryKnobs):
    """Keep the N largest of every M consecutive weights along the input dimension (2:4 semi-structured sparsity).

    Groups run along the input channels (Linear ``in_features``; Conv input channels at each
    kernel position, the channels-last layout sparse tensor cores use). Layers whose input count
    is not a multiple of M, and depthwise convs, stay dense. The zeros are held during fine-tuning.
    """

    n: int = knob(2, ge=1, le=7, help="Weights kept in each group of M")
    m: Literal[4, 8] = knob(4, help="Group size along the input dimension (4 or 8)")
    fine_tune_epochs: int = knob(1, ge=0, le=20, group="recovery",
                                 help="Epochs of recovery training on the training split, zeros held (0: none)")
    # Plain Adam at 1e-3 by measurement (bench/techniques.py, digits MobileNetV2): the recover recipe cost N:M
    # far more accuracy than plain Adam here (docs/recovery.md); structured pruning gains from it.
    recipe: Literal["recover", "plain"] = recovery_default("recipe", "plain")
    optimizer: Literal["sgd", "adam"] = recovery_default("optimizer", "adam")
    lr: float = recovery_default("lr", 1e-3)
    prune_classifier: bool = knob(
        False, help="Also sparsify the final classifier layer (left dense by default: few weights, large accuracy cost)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n >= self.m:
            raise ValueError(f"n must be smaller than m (n:m keeps n of every m weights), got {self.n}:{self.m}")

    def validate_for(self, model: nn.Module, input_shape: tuple[int, ...]) -> None:
        """Reject models with no layer that can take the N:M pattern.

        Raises:
            ValueError: no Conv/Linear layer modules, or none whose input count is a multiple of ``m``.
        """
        del input_shape
        layers = weight_layers(model)
        if not layers:
            raise ValueError(no_layers_message("nm_sparsity", model))
        if not nm_eligible_layers(model, self.m, prune_classifier=self.prune_classifier):
            dims = ", ".join(f"{name} ({_reduction_channels(mod)} inputs)" for name, mod in layers[:6])
            raise ValueError(
                f"nm_sparsity {self.n}:{self.m}: no layer can take the pattern; a Linear or groups=1 Conv2d/Conv1d "
                f"needs an input count divisible by {self.m} (the final classifier counts only with "
                f"prune_classifier=True). Layers: {dims}"
            )


def _reduction_channels(mod: nn.Module) -> int:
    """Input features of a Linear, input channels per group of a conv."""
    return int(_weight(mod).shape[1])


def nm_eligible_layers(model: nn.Module, m: int, *, prune_classifier: bool) -> list[tuple[str, nn.Module]]:
    """Linear and non-transposed, non-depthwise conv layers whose input count is a multiple of ``m``."""
    last = None if prune_classifier else classifier_name(model)
    out: list[tuple[str, nn.Module]] = []
    for name, mod in weight_layers(model):
        if name == last or isinstance(mod, nn.modules.conv._ConvTransposeNd):
            continue
        if isinstance(mod, nn.modules.conv._ConvNd) and mod.groups != 1:
            continue
        if _reduction_channels(mod) % m == 0:
            out.append((name, mod))
    return out


def nm_mask(weight: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Boolean keep-mask with the ``n`` largest-|w| of every ``m`` consecutive input channels.

    Args:
        weight: a Linear ``(out, in)`` or conv ``(out, in, *kernel)`` weight; ``in`` divisible by ``m``.
        n: weights kept per group.
        m: group size.

    Returns:
        A bool tensor shaped like ``weight``.

    Raises:
        ValueError: ``in`` is not a multiple of ``m`` or ``n`` is not in ``[1, m)``.
    """
    if not 1 <= n < m:
        raise ValueError(f"need 1 <= n < m, got {n}:{m}")
    c_in = weight.shape[1]
    if c_in % m:
        raise ValueError(f"the input dimension ({c_in}) is not divisible by m={m}")
    # Channels-last view: (out, *kernel, in) so that groups run along the input channels.
    w = weight.detach().abs().movedim(1, -1)  # (O, *k, I)
    groups = w.reshape(*w.shape[:-1], c_in // m, m)  # (O, *k, I/m, m)
    keep_idx = groups.topk(n, dim=-1).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, keep_idx, True)
    return mask.reshape(w.shape).movedim(-1, 1).contiguous()


_WHEN_NM_SPARSITY = (
    "For a GPU with sparse tensor cores (NVIDIA Ampere or later, 2:4): half the weights are zero in a "
    "pattern those kernels skip. The CPU runtimes measured here run it as dense, so expect no CPU speed- "
    "up."
)


@register(
    "nm_sparsity", NMSparsityConfig, family="pruning", title="N:M semi-structured sparsity",
    when=_WHEN_NM_SPARSITY,
)
def apply_nm_sparsity(model: nn.Module, cfg: NMSparsityConfig, ctx: RunContext) -> CompressedModel:
    """Apply the N:M magnitude pattern to every eligible layer, optionally fine-tune with it held.

    Args:
        model: fp32 classifier (not mutated).
        cfg: the N:M config.
        ctx: data (training split for fine-tuning), seed and progress.

    Returns:
        The sparsified copy (dense shapes, exact zeros in the N:M pattern) and its honest notes.

    Raises:
        ValueError: no layer can take the pattern (see :meth:`NMSparsityConfig.validate_for`).
    """
    cfg.validate_for(model, ctx.input_shape)
    ctx.progress(0.0, f"{cfg.n}:{cfg.m} sparsity: masking weights")
    sparse = copy.deepcopy(model).eval()
    layers = nm_eligible_layers(sparse, cfg.m, prune_classifier=cfg.prune_classifier)
    with torch.no_grad():
        masks = [nm_mask(_weight(mod), cfg.n, cfg.m) for _, mod in layers]

    def reapply_masks() -> None:
        with torch.no_grad():
            for (_, mod), mask in zip(layers, masks, strict=True):
                _weight(mod).mul_(mask)

    reapply_masks()
    recovered = recover_after(sparse, model, cfg, ctx, epochs=cfg.fine_tune_epochs, lr=cfg.lr, start=0.05, label=f"Recovery after {cfg.n}:{cfg.m} sparsity",
                              after_step=reapply_masks)
    reapply_masks()

    eligible_ids = {id(mod) for _, mod in layers}
    dense = [name for name, mod in weight_layers(sparse) if id(mod) not in eligible_ids]
    zeros = sum(int((_weight(mod) == 0).sum()) for _, mod in layers)
    total_all = sum(int(_weight(mod).numel()) for _, mod in weight_layers(sparse))
    notes = [
        NM_SPEED_NOTE
        if (cfg.n, cfg.m) == (2, 4)
        else NM_SPEED_NOTE.replace("2:4 sparsity", f"{cfg.n}:{cfg.m} sparsity")
        + " (and sparse tensor cores support only 2:4)",
        f"{cfg.n}:{cfg.m} pattern on {_layers(len(layers))}: {zeros} of {total_all} Conv/Linear weights are zero "
        f"({zeros / max(total_all, 1):.1%}).",
    ]
    if dense:
        notes.append(
            f"{_layers(len(dense))} left dense (final classifier, depthwise/grouped convs, or input count not "
            f"divisible by {cfg.m}): {', '.join(dense[:8])}" + (f" and {len(dense) - 8} more" if len(dense) > 8 else "")
        )
    if recovered is not None:
        notes.append(recovered)
    ctx.progress(1.0, f"{cfg.n}:{cfg.m} sparsity: done")
    return CompressedModel(module=sparse, notes=tuple(notes))
