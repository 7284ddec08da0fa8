"""Low-rank planning: which layers can be factorized and which ranks each keeps.

:func:`plan_layer` gives a layer's kept ranks and its parameter counts before and after; a layer
is factorized only when its plan reduces them. Used by :mod:`lwdash.techniques.low_rank`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from lwdash.techniques._common import classifier_name, weight_layers
from lwdash.techniques.low_rank_factors import _unfoldings

__all__ = ["LayerPlan", "RankMode", "choose_rank", "factorizable_layers", "plan_layer"]

RankMode = Literal["rank_ratio", "energy", "fixed_rank"]


def _full_rank(mod: nn.Module) -> int:
    """The largest rank of a layer's factorization: ``min(out, in)`` (per output/input unfolding for convs)."""
    w = mod.weight
    assert isinstance(w, torch.Tensor)
    o, rest = int(w.shape[0]), int(w[0].numel())
    i = int(w.shape[1])
    if isinstance(mod, nn.Linear) or w.ndim == 2 or tuple(w.shape[2:]) == (1, 1):
        return min(o, i)
    return max(min(o, rest), min(i, o * int(w[0, 0].numel())))


def _is_conv_eligible(mod: nn.Module) -> bool:
    return type(mod) is nn.Conv2d and mod.groups == 1


def factorizable_layers(
    model: nn.Module, layers: Literal["linear", "conv", "all"], *, factorize_classifier: bool
) -> list[tuple[str, nn.Module]]:
    """Linear and ``groups=1`` Conv2d layers of the chosen kind, in registration order."""
    last = None if factorize_classifier else classifier_name(model)
    out: list[tuple[str, nn.Module]] = []
    for name, mod in weight_layers(model):
        if name == last:
            continue
        is_linear = type(mod) is nn.Linear
        is_conv = _is_conv_eligible(mod)
        if (is_linear and layers in ("linear", "all")) or (is_conv and layers in ("conv", "all")):
            out.append((name, mod))
    return out


def choose_rank(singular_values: torch.Tensor | None, full_rank: int, mode: RankMode, ratio: float) -> int:
    """The kept rank, between 1 and ``full_rank``.

    Args:
        singular_values: descending singular values (needed for ``mode="energy"``).
        full_rank: the largest possible rank.
        mode: ``"rank_ratio"`` keeps ``ceil(ratio * full_rank)``; ``"energy"`` keeps the fewest
            values whose squares sum to at least ``ratio`` of the total.
        ratio: in ``(0, 1]``.

    Returns:
        The rank to keep.
    """
    if full_rank < 1:
        raise ValueError(f"full rank must be >= 1, got {full_rank}")
    if mode == "fixed_rank":
        raise ValueError("fixed_rank needs no choice: the plan keeps min(rank, full rank)")
    if mode == "rank_ratio":
        return max(1, min(full_rank, math.ceil(ratio * full_rank - 1e-9)))
    if singular_values is None:
        raise ValueError("energy mode needs the singular values")
    energy = singular_values.double().square()
    total = float(energy.sum())
    if total <= 0.0:
        return 1
    cum = torch.cumsum(energy, 0) / total
    rank = int(torch.searchsorted(cum, torch.tensor([ratio - 1e-12], dtype=cum.dtype)).item()) + 1
    return max(1, min(full_rank, rank))


@dataclass(frozen=True)
class LayerPlan:
    """The ranks chosen for one layer and its parameter counts before and after.

    ``ranks`` is ``(r,)`` for an SVD (Linear, 1x1 conv) and ``(r_in, r_out)`` for Tucker-2;
    ``full_ranks`` the largest possible values of each.
    """

    kind: Literal["svd", "tucker2"]
    ranks: tuple[int, ...]
    full_ranks: tuple[int, ...]
    params_before: int
    params_after: int

    @property
    def reduces(self) -> bool:
        return self.params_after < self.params_before


def plan_layer(mod: nn.Module, mode: RankMode, ratio: float, *, rank: int | None = None) -> LayerPlan:
    """Choose the ranks of one Linear or ``groups=1`` Conv2d layer (SVD of its weight in energy mode).

    Args:
        mod: the layer.
        mode: rank choice (see :func:`choose_rank`); ``"fixed_rank"`` keeps ``min(rank, full)``.
        ratio: in ``(0, 1]``.
        rank: the kept rank for ``mode="fixed_rank"``.

    Returns:
        The plan; ``plan.reduces`` says whether factorizing pays off.
    """
    weight, b = mod.weight, getattr(mod, "bias", None)
    assert isinstance(weight, torch.Tensor)
    w = weight.detach().double()
    bias = int(b.numel()) if isinstance(b, torch.Tensor) else 0
    before = int(w.numel()) + bias
    if isinstance(mod, nn.Linear) or (isinstance(mod, nn.Conv2d) and tuple(mod.kernel_size) == (1, 1)):
        mat = w.reshape(w.shape[0], -1)  # (out, in)
        out_f, in_f = mat.shape
        full = min(out_f, in_f)
        s = torch.linalg.svdvals(mat) if mode == "energy" else None
        r = _pick(s, full, mode, ratio, rank)
        return LayerPlan("svd", (r,), (full,), before, r * (in_f + out_f) + bias)
    o, i, kh, kw = w.shape
    m0, m1 = _unfoldings(w)
    full_out, full_in = min(o, i * kh * kw), min(i, o * kh * kw)
    s0 = torch.linalg.svdvals(m0) if mode == "energy" else None
    s1 = torch.linalg.svdvals(m1) if mode == "energy" else None
    r_out = _pick(s0, full_out, mode, ratio, rank)
    r_in = _pick(s1, full_in, mode, ratio, rank)
    after = i * r_in + r_in * r_out * kh * kw + r_out * o + bias
    return LayerPlan("tucker2", (r_in, r_out), (full_in, full_out), before, after)


def _pick(s: torch.Tensor | None, full: int, mode: RankMode, ratio: float, rank: int | None) -> int:
    if mode == "fixed_rank":
        if rank is None:
            raise ValueError("fixed_rank mode needs a rank")
        return max(1, min(int(rank), full))
    return choose_rank(s, full, mode, ratio)
