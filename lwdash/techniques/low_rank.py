"""Low-rank factorization: truncated SVD of Linear layers, Tucker-2 of convolutions.

A ``Linear(in, out)`` becomes ``Linear(in, r, bias=False) -> Linear(r, out)`` from the truncated
SVD ``W ~= U_r S_r V_r^T`` (the singular values split evenly, ``sqrt(S)``, between the two).

A ``Conv2d(in, out, k)`` with ``groups=1`` and ``k > 1`` becomes the Tucker-2 chain
``1x1 conv in->r_in  ->  kxk conv r_in->r_out  ->  1x1 conv r_out->out``: the factor matrices
are the leading left singular vectors of the weight's output-channel and input-channel
unfoldings (HOSVD), the core is the weight projected onto them. The kxk conv keeps the original
stride, padding, dilation and padding mode; the last 1x1 conv carries the bias. A pointwise
(1x1) conv is factorized like a Linear, into two 1x1 convs.

A layer is left as it is when the factorization would not reduce its parameter count.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from lwdash.techniques._common import classifier_name, no_layers_message, weight_layers
from lwdash.techniques.base import CompressedModel, RunContext, knob, register
from lwdash.techniques.recovery import RecoveryKnobs, recover_after, recovery_default

__all__ = [
    "LayerPlan",
    "LowRankConfig",
    "apply_low_rank",
    "choose_rank",
    "factorizable_layers",
    "plan_layer",
    "svd_conv1x1",
    "svd_linear",
    "tucker2_conv",
]

RankMode = Literal["rank_ratio", "energy", "fixed_rank"]


@dataclass(frozen=True)
class LowRankConfig(RecoveryKnobs):
    """Factorize Linear layers by truncated SVD and convolutions by Tucker-2, keeping a fraction of the rank.

    ``choice="rank_ratio"`` keeps ``ratio`` of each layer's full rank (per mode for convs);
    ``"energy"`` keeps the fewest singular values holding ``ratio`` of the squared singular-value
    energy; ``"fixed_rank"`` keeps ``rank`` in every layer (layers whose full rank is not above it
    are left as they are). Layers whose factorization would not be smaller are left as they are.
    """

    choice: Literal["rank_ratio", "energy", "fixed_rank"] = knob(
        "rank_ratio",
        help="How ranks are chosen: a fraction of the full rank, of the singular-value energy, or a fixed rank",
    )
    ratio: float = knob(
        0.5,
        gt=0.0,
        le=1.0,
        step=0.05,
        sweepable=True,
        help="Fraction of the full rank kept (rank_ratio), or of the squared singular-value energy retained (energy)",
    )
    rank: int = knob(
        8, ge=1, le=65536, help="choice=fixed_rank: the rank kept in every factorized layer (ignored otherwise)"
    )
    layers: Literal["linear", "conv", "all"] = knob(
        "all", help="Which layers to factorize: Linear (SVD), Conv2d (Tucker-2; 1x1 by SVD) or both"
    )
    # 3 epochs: on digits_cnn at ratio 0.5, 1 epoch recovers to 92.2 % and 3 epochs to 98.9 % (baseline 99.4 %).
    fine_tune_epochs: int = knob(
        3, ge=0, le=20, group="recovery",
        help="Epochs of recovery training on the training split afterwards (0: none)",
    )
    # Plain Adam at 1e-3 by measurement (bench/techniques.py, digits MobileNetV2): the recover recipe cost low rank
    # far more accuracy than plain Adam here (docs/recovery.md); structured pruning gains from it.
    recipe: Literal["recover", "plain"] = recovery_default("recipe", "plain")
    optimizer: Literal["sgd", "adam"] = recovery_default("optimizer", "adam")
    lr: float = recovery_default("lr", 1e-3)
    factorize_classifier: bool = knob(
        False,
        help="Also factorize the final classifier (left as is by default: a low-rank classifier merges classes)",
    )

    def validate_for(self, model: nn.Module, input_shape: tuple[int, ...]) -> None:
        """Reject models with no layer this config can factorize.

        Raises:
            ValueError: no Conv/Linear layer modules; no layer of the chosen kind (``layers``); or,
                with ``choice="rank_ratio"``, no layer that would get smaller at this ratio.
        """
        del input_shape
        if not weight_layers(model):
            raise ValueError(no_layers_message("low_rank", model))
        eligible = factorizable_layers(model, self.layers, factorize_classifier=self.factorize_classifier)
        if not eligible:
            what = {"linear": "Linear", "conv": "Conv2d (groups=1)", "all": "Linear or Conv2d (groups=1)"}[self.layers]
            hint = (
                "" if self.factorize_classifier else "; the final classifier counts only with factorize_classifier=True"
            )
            raise ValueError(
                f"low_rank: the model has no {what} layer to factorize (layers={self.layers!r}){hint}. "
                "Accepted: layers='linear', 'conv' or 'all'"
            )
        if self.choice == "fixed_rank":
            fulls = {name: _full_rank(mod) for name, mod in eligible}
            if all(self.rank >= full for full in fulls.values()):
                sizes = ", ".join(f"{n} (full rank {f})" for n, f in list(fulls.items())[:8])
                raise ValueError(
                    f"low_rank: rank {self.rank} is not below the full rank of any eligible layer, so nothing would "
                    f"be factorized. Layers: {sizes}. Accepted: a rank below a layer's full rank "
                    f"(at most {max(fulls.values()) - 1} here)"
                )
        if self.choice in ("rank_ratio", "fixed_rank"):
            plans = [plan_layer(mod, self.choice, self.ratio, rank=self.rank) for _, mod in eligible]
            if not any(p.reduces for p in plans):
                what = f"rank {self.rank}" if self.choice == "fixed_rank" else f"ratio {self.ratio}"
                raise ValueError(
                    f"low_rank: at {what} no eligible layer gets fewer parameters "
                    f"({len(eligible)} checked); choose a smaller {what.split()[0]}"
                )


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


def _unfoldings(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mode-0 ``(O, I*k*k)`` and mode-1 ``(I, O*k*k)`` unfoldings of a conv weight ``(O, I, kh, kw)``."""
    o, i = w.shape[:2]
    return w.reshape(o, -1), w.transpose(0, 1).reshape(i, -1)


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


def _factorize(mod: nn.Module, plan: LayerPlan) -> nn.Sequential:
    if isinstance(mod, nn.Linear):
        return svd_linear(mod, plan.ranks[0])
    assert isinstance(mod, nn.Conv2d)
    if plan.kind == "svd":
        return svd_conv1x1(mod, plan.ranks[0])
    return tucker2_conv(mod, plan.ranks[0], plan.ranks[1])


def _layers(count: int) -> str:
    return f"{count} layer" + ("" if count == 1 else "s")


def _names_of(root: nn.Module, target: nn.Module) -> list[str]:
    """Every name under which ``target`` is registered (a shared layer has several)."""
    return [n for n, m in root.named_modules(remove_duplicate=False) if m is target and n]


_WHEN_LOW_RANK = (
    "For large Linear layers (transformers, MLP heads) and wide convolutions: each layer becomes two "
    "thinner ones, cutting parameters and MACs; the recovery training after it wins back some accuracy. "
    "Layers that would not get smaller are left alone."
)


@register(
    "low_rank", LowRankConfig, family="low_rank", title="Low-rank factorization (SVD / Tucker-2)",
    when=_WHEN_LOW_RANK,
)
def apply_low_rank(model: nn.Module, cfg: LowRankConfig, ctx: RunContext) -> CompressedModel:
    """Factorize every eligible layer that gets smaller, then optionally fine-tune.

    Args:
        model: fp32 classifier (not mutated).
        cfg: the low-rank config.
        ctx: data (training split for fine-tuning), seed and progress.

    Returns:
        The factorized copy, with notes listing each layer's kept ranks and the skipped layers.

    Raises:
        ValueError: nothing to factorize (see :meth:`LowRankConfig.validate_for`), or, in energy
            mode, no layer gets smaller at this energy fraction.
    """
    cfg.validate_for(model, ctx.input_shape)
    ctx.progress(0.0, "low rank: choosing ranks")
    out = copy.deepcopy(model).eval()
    eligible = factorizable_layers(out, cfg.layers, factorize_classifier=cfg.factorize_classifier)
    done: list[str] = []
    skipped: list[str] = []
    params_before = params_after = 0
    with torch.no_grad():
        for idx, (name, mod) in enumerate(eligible):
            plan = plan_layer(mod, cfg.choice, cfg.ratio, rank=cfg.rank)
            if not plan.reduces:
                skipped.append(name)
                continue
            chain = _factorize(mod, plan)
            chain.train(mod.training)
            for alias in _names_of(out, mod):
                out.set_submodule(alias, chain)
            params_before += plan.params_before
            params_after += plan.params_after
            if plan.kind == "svd":
                done.append(f"{name} SVD rank {plan.ranks[0]}/{plan.full_ranks[0]}")
            else:
                done.append(
                    f"{name} Tucker-2 rank in {plan.ranks[0]}/{plan.full_ranks[0]}, "
                    f"out {plan.ranks[1]}/{plan.full_ranks[1]}"
                )
            ctx.progress(0.1 * (idx + 1) / len(eligible), f"low rank: factorized {name}")
    if not done:
        setting = f"rank {cfg.rank}" if cfg.choice == "fixed_rank" else f"{cfg.choice} {cfg.ratio}"
        raise ValueError(
            f"low_rank: at {setting} no eligible layer gets fewer parameters "
            f"({len(eligible)} checked); choose a smaller ratio"
        )

    recovered = recover_after(out, model, cfg, ctx, epochs=cfg.fine_tune_epochs, lr=cfg.lr, start=0.1, label="Recovery after low-rank factorization")

    kept = {
        "rank_ratio": f"{cfg.ratio:.0%} of the full rank",
        "energy": f"{cfg.ratio:.0%} of the singular-value energy",
        "fixed_rank": f"rank {cfg.rank} (or the full rank where smaller)",
    }[cfg.choice]
    notes = [
        f"Factorized {_layers(len(done))} keeping {kept}: their parameters "
        f"{params_before} -> {params_after} ({params_after / max(params_before, 1):.1%}).",
        "Ranks kept/full: " + "; ".join(done[:12]) + (f"; and {len(done) - 12} more" if len(done) > 12 else "") + ".",
    ]
    if skipped:
        notes.append(
            f"Skipped {_layers(len(skipped))} whose factorization would not reduce their parameters: "
            + ", ".join(skipped[:8])
            + (f" and {len(skipped) - 8} more" if len(skipped) > 8 else "")
            + "."
        )
    last = classifier_name(model)
    if not cfg.factorize_classifier and last is not None:
        notes.append(f"The final classifier {last!r} was left as is (factorize_classifier is off).")
    if recovered is not None:
        notes.append(recovered)
    ctx.progress(1.0, "low rank: done")
    return CompressedModel(module=out, notes=tuple(notes))
