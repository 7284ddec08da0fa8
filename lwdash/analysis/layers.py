"""Per-layer measurements of a compression: MACs per layer and the weight error against the original.

:func:`layer_report` runs in the job (it needs both modules); its JSON-safe records are stored
with the result (``result.json["layers"]`` and ``compressed_weights["per_layer"]``).
:func:`layer_frame` joins them with the stored weight summaries into the table the per-layer
views draw: parameter and MAC shares, sparsity before and after, and the error (MSE, SQNR in dB).

Per-layer MACs are counted with forward hooks on the conv / linear modules of one batch-1 forward
pass (``out_elements * in_channels_per_group * kernel_elements``), the same rule as the ONNX
counter of :mod:`lwdash.measure.macs`; a graph without such modules (an exported or PT2E program)
has no per-layer count, and the record says so rather than guessing.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

__all__ = ["bn_folded_weights", "layer_frame", "layer_macs", "layer_report", "match_name"]


def match_name(name: str, names: Sequence[str]) -> str | None:
    """``name`` itself, else the one entry of ``names`` equal to it up to a wrapper prefix."""
    if name in names:
        return name
    hits = [n for n in names if n.endswith("." + name) or name.endswith("." + n)]
    return hits[0] if len(hits) == 1 else None


def layer_macs(module: nn.Module, input_shape: Sequence[int]) -> dict[str, int]:
    """MACs of one sample per conv / linear module, keyed by the module path (``features.0``).

    Args:
        module: a plain ``nn.Module`` (hooks see only ``call_module`` layers of a graph).
        input_shape: per-sample input shape (no batch dim).

    Returns:
        ``{module path: MACs}`` for every conv, transposed conv and linear module that ran.
    """
    out: dict[str, int] = {}
    hooks = []

    def hook(name: str) -> Any:
        def fn(mod: nn.Module, args: tuple[Any, ...], result: Any) -> None:
            w = getattr(mod, "weight", None)
            if w is None or not isinstance(result, torch.Tensor) or not hasattr(w, "shape") or len(w.shape) < 2:
                return
            per_out = int(w.shape[1]) * int(math.prod(w.shape[2:]))
            if isinstance(mod, nn.modules.conv._ConvTransposeNd):
                x = args[0] if args else None
                n = int(x[0].numel()) if isinstance(x, torch.Tensor) else 0
            else:
                n = int(result[0].numel())  # batch 1: elements of one output
            out[name] = out.get(name, 0) + n * per_out

        return fn

    for name, mod in module.named_modules():
        if isinstance(mod, (nn.modules.conv._ConvNd, nn.Linear)) or type(mod).__name__ == "Linear":
            hooks.append(mod.register_forward_hook(hook(name)))
    try:
        with torch.inference_mode():
            module(torch.zeros(1, *input_shape))
    except Exception:  # a module that cannot run with hooks: no per-layer counts
        out.clear()
    finally:
        for h in hooks:
            h.remove()
    return out


def _module_path(weight_name: str) -> str:
    return weight_name.rsplit(".", 1)[0] if "." in weight_name else ""


def _macs_under(macs: Mapping[str, int], path: str) -> int | None:
    """MACs of the module at ``path`` plus any modules that replaced it below it (low-rank splits)."""
    hits = [v for k, v in macs.items() if k == path or k.startswith(path + ".") or (path and k.endswith("." + path))]
    return int(sum(hits)) if hits else None


def bn_folded_weights(module: nn.Module) -> dict[str, torch.Tensor]:
    """Conv weights with the BatchNorm that directly follows them folded in, by weight name.

    Quantized graphs (PT2E, ONNX Runtime) fold each ``Conv -> BatchNorm`` pair into one conv, so
    their conv weights are ``W * gamma / sqrt(running_var + eps)`` per output channel: the weight
    error of such a layer is measured against this folded form, not against the raw ``W``. A pair
    is two consecutive children of one module (``Sequential(conv, bn, ...)``, ``conv1`` then ``bn1``).
    """
    out: dict[str, torch.Tensor] = {}
    for parent_name, parent in module.named_modules():
        children = list(parent.named_children())
        for (name, conv), (_, bn) in itertools.pairwise(children):
            if not (isinstance(conv, nn.modules.conv._ConvNd) and isinstance(bn, nn.modules.batchnorm._BatchNorm)):
                continue
            if bn.running_var is None or not isinstance(conv.weight, torch.Tensor):
                continue
            scale = bn.running_var.detach().double().add(bn.eps).rsqrt()
            if bn.weight is not None:
                scale = scale * bn.weight.detach().double()
            w = conv.weight.detach().double()
            prefix = f"{parent_name}.{name}" if parent_name else name
            out[f"{prefix}.weight"] = w * scale.reshape(-1, *([1] * (w.ndim - 1)))
    return out


def layer_report(baseline: nn.Module, compressed: nn.Module, input_shape: Sequence[int]) -> list[dict[str, Any]]:
    """One JSON-safe record per weight kernel of the original: MACs before / after and the weight error.

    Args:
        baseline: the original model.
        compressed: the compressed model (plain, exported, quantized...).
        input_shape: per-sample input shape.

    Returns:
        ``[{"name", "macs", "compressed_macs", "mse", "sqnr_db", "max_abs_error", "note"}, ...]``
        in the original's layer order. ``mse`` / ``sqnr_db`` compare the compressed weights (as
        the model computes with them, dequantized) with the original's; they are ``None`` where
        the layer was removed or reshaped (``note`` says which). ``sqnr_db`` is ``None`` with
        ``mse == 0`` when the weights are unchanged. A conv whose compressed weights are closer to
        the original with its BatchNorm folded in (:func:`bn_folded_weights`) is compared with that
        folded form, and ``note`` says so.
    """
    from lwdash.measure.weights import collect_weight_tensors

    base_w = [w for w in collect_weight_tensors(baseline) if w.is_kernel]
    comp_w = {w.name: w for w in collect_weight_tensors(compressed) if w.is_kernel}
    base_macs = layer_macs(baseline, input_shape)
    comp_macs = layer_macs(compressed, input_shape)
    names = list(comp_w)
    folded = bn_folded_weights(baseline)
    records: list[dict[str, Any]] = []
    for w in base_w:
        path = _module_path(w.name)
        rec: dict[str, Any] = {
            "name": w.name,
            "macs": _macs_under(base_macs, path),
            "compressed_macs": _macs_under(comp_macs, path) if comp_macs else None,
            "mse": None,
            "sqnr_db": None,
            "max_abs_error": None,
            "note": "",
        }
        match = match_name(w.name, names)
        if match is None:
            rec["note"] = "not in the compressed model (replaced or removed)"
        elif tuple(comp_w[match].shape) != tuple(w.shape):
            rec["note"] = f"shape changed {tuple(w.shape)} -> {tuple(comp_w[match].shape)}"
        else:
            b = comp_w[match].values.double().reshape(-1)
            refs = [(w.values.double().reshape(-1), "")]
            if w.name in folded:
                refs.append((folded[w.name].reshape(-1), "vs the original with its BatchNorm folded in"))
            best = None
            for a, why in refs:
                err = b - a
                mse = float(torch.mean(err * err))
                if best is None or mse < best[0]:
                    best = (mse, float(torch.mean(a * a)), float(err.abs().max()) if err.numel() else 0.0, why)
            assert best is not None
            mse, signal, max_err, why = best
            rec["mse"] = mse
            rec["max_abs_error"] = max_err
            rec["sqnr_db"] = 10.0 * math.log10(signal / mse) if mse > 0 and signal > 0 else None
            rec["note"] = "unchanged" if mse == 0 else why
        records.append(rec)
    return records


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def layer_frame(
    baseline_weights: Mapping[str, Any],
    compressed_weights: Mapping[str, Any] | None,
) -> pd.DataFrame:
    """The per-layer table of one result: shares, sparsity and error per weight kernel of the original.

    Args:
        baseline_weights: the original's weight summary (``ResultRecord.baseline_weights``).
        compressed_weights: the compressed model's (may hold ``"per_layer"`` records from
            :func:`layer_report`; older results without them get NaN MACs and errors).

    Returns:
        One row per original layer, columns ``layer, kind, shape, params, params_share, macs,
        macs_share, compressed_params, compressed_macs, sparsity_before, sparsity_after, unique_after,
        dtype_after, mse, sqnr_db, note``; shares are fractions of the original's total, sparsity the
        fraction of exact zeros.
    """
    cols = ["layer", "kind", "shape", "params", "params_share", "macs", "macs_share", "compressed_params",
            "compressed_macs", "sparsity_before", "sparsity_after", "unique_after", "dtype_after", "mse",
            "sqnr_db", "note"]
    base_layers = list((baseline_weights or {}).get("layers", []))
    if not base_layers:
        return pd.DataFrame(columns=cols)
    comp = compressed_weights or {}
    comp_layers = {str(layer["name"]): layer for layer in comp.get("layers", [])}
    per_layer = {str(r["name"]): r for r in comp.get("per_layer", []) or []}
    comp_names = list(comp_layers)
    rows = []
    for b in base_layers:
        name = str(b["name"])
        match = match_name(name, comp_names)
        c = comp_layers.get(match) if match else None
        rec = per_layer.get(name, {})
        numel = int(b.get("numel", 0))
        rows.append(
            {
                "layer": name,
                "kind": b.get("kind", ""),
                "shape": "x".join(str(d) for d in (b.get("shape") or [])),
                "params": numel,
                "macs": _num(rec.get("macs")),
                "compressed_params": int(c["numel"]) if c else math.nan,
                "compressed_macs": _num(rec.get("compressed_macs")),
                "sparsity_before": int(b.get("zeros", 0)) / numel if numel else math.nan,
                "sparsity_after": (int(c.get("zeros", 0)) / int(c["numel"]) if c and int(c["numel"]) else math.nan),
                "unique_after": _num(c.get("unique_count")) if c else math.nan,
                "dtype_after": str(c.get("dtype", "")) if c else "",
                "mse": _num(rec.get("mse")),
                "sqnr_db": _num(rec.get("sqnr_db")),
                "note": rec.get("note", "" if c else "not in the compressed model"),
            }
        )
    frame = pd.DataFrame(rows)
    total_params = frame["params"].sum()
    frame["params_share"] = frame["params"] / total_params if total_params else np.nan
    total_macs = frame["macs"].sum(min_count=1)
    frame["macs_share"] = frame["macs"] / total_macs if total_macs and not math.isnan(total_macs) else np.nan
    return frame[cols]
