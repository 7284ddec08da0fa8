"""Per-layer sensitivity scan: damage one layer at a time, measure test accuracy, keep the curves.

For every conv / linear weight kernel of the model and every level of the scan, one copy of the
model has only that layer changed:

* ``prune``: the layer's smallest-magnitude weights are zeroed, ``level`` = the fraction removed
  (e.g. 0.3 / 0.5 / 0.7 / 0.9);
* ``quantize``: the layer's weights are fake-quantized to ``level`` bits (symmetric, one scale per
  output channel, round to nearest), e.g. 8 / 6 / 4.

Accuracy is top-1 of the PyTorch form on the test split (no fine-tuning), the same split and
thread count for the unchanged model, so each point reads "how much does this layer alone cost".
Layers whose curves drop first are the ones to leave alone (or compress least).

The scan runs as a background job (``JobSpec(kind="sensitivity")``); :func:`run_scan` returns a
JSON-safe dict the store keeps as an analysis.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

__all__ = [
    "SCAN_TYPE",
    "ScanConfig",
    "fake_quantize",
    "magnitude_prune",
    "most_sensitive",
    "run_scan",
    "scan_targets",
    "scan_technique",
]

#: The ``technique["type"]`` of a sensitivity job's spec.
SCAN_TYPE = "sensitivity_scan"
_DEFAULT_LEVELS = {"prune": (0.3, 0.5, 0.7, 0.9), "quantize": (8.0, 6.0, 4.0)}

ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class ScanConfig:
    """What a scan does.

    Attributes:
        mode: ``"prune"`` (levels are fractions removed, in (0, 1)) or ``"quantize"`` (levels are
            bit widths, integers in [2, 16]).
        levels: the levels, each applied to one layer at a time.
        max_layers: scan at most this many layers (the largest by parameter count), to bound the
            run time on big models; 0 means all.
    """

    mode: Literal["prune", "quantize"] = "prune"
    levels: tuple[float, ...] = field(default_factory=lambda: _DEFAULT_LEVELS["prune"])
    max_layers: int = 0

    def __post_init__(self) -> None:
        if self.mode not in _DEFAULT_LEVELS:
            raise ValueError(f"scan mode must be 'prune' or 'quantize', got {self.mode!r}")
        if not self.levels:
            raise ValueError("a scan needs at least one level")
        for v in self.levels:
            if self.mode == "prune" and not 0.0 < float(v) < 1.0:
                raise ValueError(f"prune levels are fractions of weights removed, in (0, 1); got {v}")
            if self.mode == "quantize" and (float(v) != int(v) or not 2 <= int(v) <= 16):
                raise ValueError(f"quantize levels are bit widths, integers from 2 to 16; got {v}")
        if self.max_layers < 0:
            raise ValueError(f"max_layers must be >= 0 (0 = all layers), got {self.max_layers}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScanConfig:
        """Build from a spec's ``technique["data"]`` (missing levels: the mode's defaults)."""
        mode = str(data.get("mode", "prune"))
        levels = data.get("levels") or _DEFAULT_LEVELS.get(mode, ())
        if isinstance(levels, (int, float)):
            levels = (levels,)
        try:
            parsed = tuple(sorted({float(v) for v in levels}))
        except (TypeError, ValueError):
            raise ValueError(f"scan levels must be numbers, got {levels!r}") from None
        return cls(mode=mode, levels=parsed, max_layers=int(data.get("max_layers", 0)))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "levels": list(self.levels), "max_layers": self.max_layers}


def scan_technique(cfg: ScanConfig) -> dict[str, Any]:
    """The ``JobSpec.technique`` dict of a scan job."""
    return {"type": SCAN_TYPE, "version": 1, "data": cfg.to_dict()}


def scan_targets(module: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """The layers a scan can change: ``(weight name, owning module, parameter name)`` of every
    float conv / linear weight with ``ndim >= 2``, in model order."""
    out: list[tuple[str, nn.Module, str]] = []
    for mod_name, mod in module.named_modules():
        if not isinstance(mod, (nn.modules.conv._ConvNd, nn.Linear)):
            continue
        w = mod._parameters.get("weight")
        if isinstance(w, nn.Parameter) and w.ndim >= 2 and w.is_floating_point():
            out.append((f"{mod_name}.weight" if mod_name else "weight", mod, "weight"))
    return out


def magnitude_prune(w: torch.Tensor, fraction: float) -> torch.Tensor:
    """``w`` with its ``round(fraction * numel)`` smallest-magnitude entries set to zero."""
    k = round(float(fraction) * w.numel())
    if k <= 0:
        return w.clone()
    flat = w.abs().reshape(-1)
    threshold = torch.kthvalue(flat, k).values
    out = w.clone()
    out[w.abs() <= threshold] = 0.0
    return out


def fake_quantize(w: torch.Tensor, bits: int) -> torch.Tensor:
    """``w`` rounded to a symmetric ``bits``-bit grid with one scale per output channel (dim 0)."""
    qmax = 2 ** (int(bits) - 1) - 1
    amax = w.abs().reshape(w.shape[0], -1).amax(dim=1).clamp_min(1e-12)  # (C_out,)
    scale = (amax / qmax).reshape(-1, *([1] * (w.ndim - 1)))
    return torch.clamp(torch.round(w / scale), -qmax, qmax) * scale


def _accuracy(module: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 512) -> float:
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(y), batch):
            logits = module(x[start : start + batch])
            correct += int((logits.argmax(dim=1) == y[start : start + batch]).sum())
    return correct / max(1, len(y))


def run_scan(
    module: nn.Module,
    data: Any,
    technique: Mapping[str, Any],
    progress: ProgressFn | None = None,
    *,
    threads: int = 1,
) -> dict[str, Any]:
    """Scan every layer of ``module`` at every level; returns the curves as a JSON-safe dict.

    Args:
        module: the model (not changed: the scan works on a copy and restores each layer).
        data: a :class:`lwdash.data.Dataset`; its test split is used.
        technique: the job's technique dict (``scan_technique(...)``) or just its ``data`` part.
        progress: called with (fraction 0..1, message).
        threads: PyTorch threads for the evaluations.

    Returns:
        ``{"mode", "levels", "level_unit", "metric", "baseline_acc", "test_samples", "threads",
        "wall_s", "layers": [{"name", "kind", "shape", "params", "acc": [...], "drop_pts": [...]}]}``
        with one accuracy per level, in the order of ``levels``.

    Raises:
        ValueError: a bad scan config, or a model with no float conv / linear weights to scan.
    """
    from lwdash.measure.environment import torch_threads

    report = progress or (lambda f, m: None)
    cfg = ScanConfig.from_dict(technique.get("data", technique) if "type" in technique else technique)
    t0 = time.perf_counter()
    work = _copy(module)
    work.eval()
    targets = scan_targets(work)
    if not targets:
        raise ValueError(
            "this model has no float Conv/Linear weights the scan can change (an exported or quantized "
            "graph); scan the original model instead"
        )
    if cfg.max_layers and len(targets) > cfg.max_layers:
        keep = sorted(targets, key=lambda t: -getattr(t[1], t[2]).numel())[: cfg.max_layers]
        targets = [t for t in targets if t in keep]
    x, y = data.test.x, data.test.y.to(torch.int64)
    total = 1 + len(targets) * len(cfg.levels)
    done = 0
    layers = []
    with torch_threads(threads):
        report(0.0, "measuring the unchanged model")
        base_acc = _accuracy(work, x, y)
        done += 1
        for name, mod, pname in targets:
            param: nn.Parameter = getattr(mod, pname)
            original = param.detach().clone()
            accs = []
            for level in cfg.levels:
                report(done / total, f"{name}: {_level_text(cfg.mode, level)}")
                new = magnitude_prune(original, level) if cfg.mode == "prune" else fake_quantize(original, int(level))
                with torch.no_grad():
                    param.copy_(new)
                accs.append(_accuracy(work, x, y))
                done += 1
            with torch.no_grad():
                param.copy_(original)
            layers.append(
                {
                    "name": name,
                    "kind": "conv" if isinstance(mod, nn.modules.conv._ConvNd) else "linear",
                    "shape": list(original.shape),
                    "params": int(original.numel()),
                    "acc": accs,
                    "drop_pts": [100.0 * (base_acc - a) for a in accs],
                }
            )
    report(1.0, "scan done")
    return {
        "mode": cfg.mode,
        "levels": list(cfg.levels),
        "level_unit": "fraction of the layer's weights removed" if cfg.mode == "prune" else "bits per weight",
        "metric": "top-1 accuracy, PyTorch, test split",
        "baseline_acc": base_acc,
        "test_samples": len(y),
        "threads": int(threads),
        "wall_s": round(time.perf_counter() - t0, 3),
        "layers": layers,
    }


def _level_text(mode: str, level: float) -> str:
    return f"prune {level:g}" if mode == "prune" else f"int{int(level)} fake-quant"


def _copy(module: nn.Module) -> nn.Module:
    import copy

    try:
        return copy.deepcopy(module)
    except Exception as e:
        raise ValueError(f"the model cannot be copied for a scan: {type(e).__name__}: {e}") from e


def most_sensitive(scan: Mapping[str, Any], n: int = 3) -> list[tuple[str, float]]:
    """The ``n`` layers with the largest accuracy drop at the strongest level, largest first."""
    rows = [(str(r["name"]), float(r["drop_pts"][-1] if scan["mode"] == "prune" else r["drop_pts"][0]))
            for r in scan.get("layers", []) if r.get("drop_pts")]
    rows.sort(key=lambda t: -t[1] if math.isfinite(t[1]) else 0.0)
    return rows[:n]

