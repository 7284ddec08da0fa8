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

The rank planning lives in :mod:`lwdash.techniques.low_rank_plan`, the factorization kernels in
:mod:`lwdash.techniques.low_rank_factors`; both are re-exported here.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from lwdash.techniques._common import classifier_name, no_layers_message, weight_layers
from lwdash.techniques.base import CompressedModel, RunContext, knob, register
from lwdash.techniques.low_rank_factors import svd_conv1x1, svd_linear, tucker2_conv
from lwdash.techniques.low_rank_plan import (
    LayerPlan,
    _full_rank,
    choose_rank,
    factorizable_layers,
    plan_layer,
)
from lwdash.techniques.low_rank_plan import RankMode as RankMode
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
