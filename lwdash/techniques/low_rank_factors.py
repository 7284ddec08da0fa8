"""Low-rank factorization kernels: a layer replaced by its truncated-SVD or Tucker-2 chain.

Each function returns a new ``nn.Sequential`` (the layer is not mutated), exact up to float
rounding at full rank. Used by :mod:`lwdash.techniques.low_rank`.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["svd_conv1x1", "svd_linear", "tucker2_conv"]


def _unfoldings(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mode-0 ``(O, I*k*k)`` and mode-1 ``(I, O*k*k)`` unfoldings of a conv weight ``(O, I, kh, kw)``."""
    o, i = w.shape[:2]
    return w.reshape(o, -1), w.transpose(0, 1).reshape(i, -1)


def _as_param(t: torch.Tensor, like: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(t.to(dtype=like.dtype, device=like.device).contiguous(), requires_grad=like.requires_grad)


def svd_linear(layer: nn.Linear, rank: int) -> nn.Sequential:
    """``Linear(in, out)`` -> ``Linear(in, rank, bias=False) -> Linear(rank, out)`` by truncated SVD.

    Args:
        layer: the layer (not mutated).
        rank: kept rank, in ``[1, min(in, out)]``.

    Returns:
        The two-layer chain; exact (up to float rounding) at full rank.
    """
    full = min(layer.in_features, layer.out_features)
    if not 1 <= rank <= full:
        raise ValueError(
            f"rank must be in [1, {full}] for Linear({layer.in_features}, {layer.out_features}), got {rank}"
        )
    w = layer.weight.detach().double()  # (out, in)
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    root = s[:rank].sqrt()
    first = nn.Linear(layer.in_features, rank, bias=False)
    second = nn.Linear(rank, layer.out_features, bias=layer.bias is not None)
    first.weight = _as_param(root[:, None] * vh[:rank], layer.weight)  # (r, in)
    second.weight = _as_param(u[:, :rank] * root[None, :], layer.weight)  # (out, r)
    if layer.bias is not None:
        second.bias = _as_param(layer.bias.detach().clone(), layer.bias)
    return nn.Sequential(first, second)


def _geometry(layer: nn.Conv2d) -> dict[str, Any]:
    """The stride, padding, dilation and padding mode of ``layer``, as ``nn.Conv2d`` keywords."""
    return {
        "stride": layer.stride,
        "padding": layer.padding,
        "dilation": layer.dilation,
        "padding_mode": layer.padding_mode,
    }


def svd_conv1x1(layer: nn.Conv2d, rank: int) -> nn.Sequential:
    """A pointwise ``Conv2d(in, out, 1)`` -> two 1x1 convs ``in->rank->out`` by truncated SVD.

    The first conv keeps the original stride and padding (a 1x1 conv is per-pixel, so
    they commute with it); the second carries the bias.
    """
    if layer.groups != 1 or tuple(layer.kernel_size) != (1, 1):
        raise ValueError("svd_conv1x1 needs a groups=1 Conv2d with a 1x1 kernel")
    o, i = layer.out_channels, layer.in_channels
    full = min(o, i)
    if not 1 <= rank <= full:
        raise ValueError(f"rank must be in [1, {full}] for a 1x1 Conv2d({i}, {o}), got {rank}")
    w = layer.weight.detach().double().reshape(o, i)
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    root = s[:rank].sqrt()
    first = nn.Conv2d(i, rank, 1, bias=False, **_geometry(layer))
    second = nn.Conv2d(rank, o, 1, bias=layer.bias is not None)
    first.weight = _as_param((root[:, None] * vh[:rank]).reshape(rank, i, 1, 1), layer.weight)
    second.weight = _as_param((u[:, :rank] * root[None, :]).reshape(o, rank, 1, 1), layer.weight)
    if layer.bias is not None:
        second.bias = _as_param(layer.bias.detach().clone(), layer.bias)
    return nn.Sequential(first, second)


def tucker2_conv(layer: nn.Conv2d, rank_in: int, rank_out: int) -> nn.Sequential:
    """``Conv2d(in, out, k)`` -> ``1x1 in->rank_in -> kxk rank_in->rank_out -> 1x1 rank_out->out`` (Tucker-2).

    Factors from the HOSVD: the leading left singular vectors of the output-channel unfolding
    ``(out, in*k*k)`` and of the input-channel unfolding ``(in, out*k*k)``; the core is the weight
    projected onto both. Exact (up to float rounding) at full ranks.

    Args:
        layer: a ``groups=1`` Conv2d (not mutated).
        rank_in: kept input-channel rank, in ``[1, min(in, out*k*k)]``.
        rank_out: kept output-channel rank, in ``[1, min(out, in*k*k)]``.

    Returns:
        The three-conv chain.
    """
    if layer.groups != 1:
        raise ValueError(f"Tucker-2 needs a groups=1 Conv2d, got groups={layer.groups}")
    w = layer.weight.detach().double()  # (O, I, kh, kw)
    o, i, kh, kw = w.shape
    full_out, full_in = min(o, i * kh * kw), min(i, o * kh * kw)
    if not (1 <= rank_in <= full_in and 1 <= rank_out <= full_out):
        raise ValueError(
            f"Tucker-2 ranks must be in [1, {full_in}] (input) and [1, {full_out}] (output) for "
            f"Conv2d({i}, {o}, {(kh, kw)}), got ({rank_in}, {rank_out})"
        )
    m0, m1 = _unfoldings(w)
    u_out = torch.linalg.svd(m0, full_matrices=False)[0][:, :rank_out]  # (O, r_out)
    u_in = torch.linalg.svd(m1, full_matrices=False)[0][:, :rank_in]  # (I, r_in)
    core = torch.einsum("oihw,oa,ib->abhw", w, u_out, u_in)  # (r_out, r_in, kh, kw)
    first = nn.Conv2d(i, rank_in, 1, bias=False)
    middle = nn.Conv2d(rank_in, rank_out, (kh, kw), bias=False, **_geometry(layer))
    last = nn.Conv2d(rank_out, o, 1, bias=layer.bias is not None)
    first.weight = _as_param(u_in.T.reshape(rank_in, i, 1, 1), layer.weight)
    middle.weight = _as_param(core, layer.weight)
    last.weight = _as_param(u_out.reshape(o, rank_out, 1, 1), layer.weight)
    if layer.bias is not None:
        last.bias = _as_param(layer.bias.detach().clone(), layer.bias)
    return nn.Sequential(first, middle, last)
