"""Pipelines: ordered technique steps in one job, each step's metrics kept; and the fine-tune step.

A pipeline's typed config holds an ordered tuple of :class:`~lwdash.techniques.base.PipelineStep`
(a registered technique key plus that technique's own validated config). Each step receives the
previous step's PyTorch form; the last step's artifacts are the job's artifacts. After every
step the intermediate model is measured on the test split (top-1 in PyTorch and, on its ONNX
export, in ONNX Runtime; parameters, non-zeros, dense/sparse/ONNX/zlib bytes, MACs) and kept in
``CompressedModel.steps``, which the runner writes to ``result.json`` as ``"steps"``.

Quantization steps (int8, fp16/bf16, weight-only) produce forms no other technique can take
(int8 graphs, half-precision wrappers, tensor subclasses): they may only come last.

``fine_tune`` is also a technique on its own: a control that shows what the extra training alone
does to the uncompressed model (same epochs and learning rate as a pruning fine-tune).
"""
from __future__ import annotations

import dataclasses
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from lwdash.techniques._common import export_onnx_proto, weight_layers
from lwdash.techniques.base import (
    CompressedModel,
    PipelineStep,
    RunContext,
    TechniqueConfig,
    get_technique,
    knob,
    knob_fields,
    register,
)
from lwdash.techniques.quantization import Int8StaticConfig
from lwdash.techniques.recovery import RecoveryRecipe, recover_after
from lwdash.techniques.structured import StructuredPruningConfig

if TYPE_CHECKING:
    import onnx

    from lwdash.data import Dataset

__all__ = [
    "DEFAULT_STEPS",
    "MAX_STEPS",
    "FineTuneConfig",
    "PipelineConfig",
    "apply_fine_tune",
    "apply_pipeline",
    "describe_step_dict",
    "describe_steps",
    "measure_step",
]

#: The most steps one pipeline may hold.
MAX_STEPS = 6
#: Families whose output only a runtime can take, never another technique: last step only.
LAST_ONLY_FAMILIES = frozenset({"quantization"})


# ---------------------------------------------------------------------------------------------
# fine_tune: a step (and a control technique) that trains with the current zeros held


@dataclass(frozen=True)
class FineTuneConfig(RecoveryRecipe):
    """Fine-tune on the training split with every exactly-zero weight held at zero (no compression by itself).

    In a pipeline it recovers accuracy after a pruning or factorization step (pruning masks
    survive because zeros stay zero). On its own it is a control: what the same extra training
    does to the uncompressed model.
    """

    epochs: int = knob(2, ge=1, le=50, help="Epochs of fine-tuning on the training split")
    lr: float = knob(0.01, gt=0.0, le=1.0, label="Learning rate",
                     help="Peak learning rate (after warm-up, then cosine decay); with recipe=plain, Adam's constant rate")


_WHEN_FINE_TUNE = (
    "As a pipeline step after pruning or factorization, or on its own as the control that shows what "
    "extra training alone does to the uncompressed model."
)


@register(
    "fine_tune", FineTuneConfig, family="training", title="Fine-tune only (control / pipeline step)",
    when=_WHEN_FINE_TUNE,
)
def apply_fine_tune(model: nn.Module, cfg: FineTuneConfig, ctx: RunContext) -> CompressedModel:
    """Fine-tune a copy of ``model``, keeping its zero weights at zero.

    Args:
        model: fp32 classifier (not mutated).
        cfg: epochs and learning rate.
        ctx: data (training split), seed and progress.

    Returns:
        The fine-tuned copy with a note on the zeros held.

    Raises:
        ValueError: the training split is empty.
    """
    import copy

    out = copy.deepcopy(model).eval()
    layers = weight_layers(out)
    masks = [(m, _weight(m) != 0) for _, m in layers]
    masks = [(m, k) for m, k in masks if not bool(k.all())]  # only layers that hold zeros need a mask

    def hold_zeros() -> None:
        with torch.no_grad():
            for m, keep in masks:
                _weight(m).mul_(keep)

    recovered = recover_after(out, model, cfg, ctx, epochs=cfg.epochs, lr=cfg.lr, start=0.0, label="Fine-tune",
                              after_step=hold_zeros if masks else None)
    notes = [f"Fine-tuned {cfg.epochs} epoch(s) on the training split ({len(ctx.data.train)} samples).",
             *([recovered] if recovered else [])]
    if masks:
        zeros = sum(int((~k).sum()) for _, k in masks)
        notes.append(f"{zeros} zero weights in {len(masks)} layer(s) were held at zero (pruning masks kept).")
    else:
        notes.append("No compression by itself: size and latency stay those of the input model.")
    return CompressedModel(module=out, notes=tuple(notes))


def _weight(mod: nn.Module) -> torch.Tensor:
    w = mod.weight
    assert isinstance(w, torch.Tensor)
    return w


# ---------------------------------------------------------------------------------------------
# pipeline


DEFAULT_STEPS: tuple[PipelineStep, ...] = (
    PipelineStep("structured_pruning", StructuredPruningConfig(ratio=0.5, fine_tune_epochs=0)),
    PipelineStep("fine_tune", FineTuneConfig(epochs=2)),
    PipelineStep("int8_static", Int8StaticConfig()),
)


def describe_steps(steps: tuple[PipelineStep, ...]) -> str:
    """A short label: ``"structured_pruning(ratio=0.5) > fine_tune > int8_static"`` (non-default knobs only)."""
    parts = []
    for s in steps:
        defaults = type(s.config)()
        changed = [
            f"{f.name}={_fmt(getattr(s.config, f.name))}"
            for f in knob_fields(s.config)
            if getattr(s.config, f.name) != getattr(defaults, f.name)
        ]
        parts.append(f"{s.technique}({', '.join(changed)})" if changed else s.technique)
    return " > ".join(parts)


def describe_step_dict(step: dict[str, Any]) -> str:
    """:func:`describe_steps` of one flat step dict (``{"technique": key, **knobs}``); its key if it does not parse."""
    try:
        return describe_steps((PipelineStep.from_dict(step),))
    except (ValueError, TypeError):
        return str(step.get("technique", "?"))


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


@dataclass(frozen=True)
class PipelineConfig(TechniqueConfig):
    """Ordered steps in one job (e.g. structured prune 50% > fine-tune > static int8), each step's metrics kept.

    Each step is a registered technique with its own config; a step gets the previous step's
    model. Quantization steps (int8, fp16/bf16, weight-only) may only be the last step.
    """

    steps: tuple[PipelineStep, ...] = knob(
        DEFAULT_STEPS,
        help=(
            "Ordered steps, each a technique and its knobs, as JSON: "
            '[{"technique": "structured_pruning", "ratio": 0.5}, {"technique": "fine_tune", "epochs": 2}, '
            '{"technique": "int8_static"}]. Quantization steps only last; at most '
            f"{MAX_STEPS} steps."
        ),
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        steps = self.steps
        if not isinstance(steps, tuple) or not all(isinstance(s, PipelineStep) for s in steps):
            raise ValueError("steps must be a tuple of PipelineStep (use build_config to parse dicts or JSON)")
        if not steps:
            raise ValueError("steps: a pipeline needs at least one step")
        if len(steps) > MAX_STEPS:
            raise ValueError(f"steps: at most {MAX_STEPS} steps, got {len(steps)}")
        for i, s in enumerate(steps, 1):
            if s.technique == "pipeline":
                raise ValueError(f"steps: step {i} is a pipeline; pipelines do not nest (list its steps instead)")
            try:
                tech = get_technique(s.technique)
            except KeyError as e:
                raise ValueError(f"steps: step {i}: {e.args[0]}") from None
            if type(s.config) is not tech.config_type:
                raise ValueError(
                    f"steps: step {i} ({s.technique}) needs a {tech.config_type.__name__}, got {type(s.config).__name__}"
                )
            if tech.family in LAST_ONLY_FAMILIES and i != len(steps):
                raise ValueError(
                    f"steps: step {i} ({s.technique}) is a quantization step and must be the last step: "
                    "no other technique can take a quantized model (put pruning, low-rank, distillation "
                    "and fine-tune steps before it)"
                )

    def validate_for(self, model: nn.Module, input_shape: tuple[int, ...]) -> None:
        """Check every step against ``model`` (steps are checked again on their real input when they run).

        Raises:
            ValueError: naming the first step the model cannot take and why.
        """
        for i, s in enumerate(self.steps, 1):
            try:
                s.config.validate_for(model, input_shape)
            except ValueError as e:
                raise ValueError(f"pipeline step {i} ({s.technique}): {e}") from None


def _onnx_of(module: nn.Module, onnx_model: onnx.ModelProto | None, input_shape: tuple[int, ...]) -> onnx.ModelProto:
    return onnx_model if onnx_model is not None else export_onnx_proto(module, input_shape)


def measure_step(
    module: nn.Module, onnx_model: onnx.ModelProto | None, data: Dataset, *, threads: int = 1
) -> dict[str, Any]:
    """Measure one intermediate model on the test split (no latency: see the module docstring).

    Args:
        module: the step's PyTorch form.
        onnx_model: the step's own ONNX artifact, or ``None`` to export ``module``.
        data: the evaluation data (its test split is used).
        threads: ONNX Runtime / PyTorch threads.

    Returns:
        JSON-safe figures: ``torch_top1_acc``, ``top1_acc`` (ONNX Runtime), ``params_count``,
        ``nonzero_params_count``, ``dense_bytes``, ``sparse_bytes``, ``onnx_bytes``,
        ``compressed_bytes`` (zlib of the ONNX file), ``macs``; a figure that could not be
        measured is ``None`` and ``measure_error`` says why.
    """
    import onnxruntime as ort

    from lwdash.measure import count_macs, count_sizes, evaluate_onnx, evaluate_torch

    rec: dict[str, Any] = {}
    errors: list[str] = []
    rec["torch_top1_acc"] = round(evaluate_torch(module, data.test, threads=threads).top1_acc, 6)
    sizes = count_sizes(module)
    rec.update(
        params_count=sizes.params_count,
        nonzero_params_count=sizes.nonzero_params_count,
        dense_bytes=sizes.dense_bytes,
        sparse_bytes=sizes.sparse_bytes,
    )
    rec.update(top1_acc=None, onnx_bytes=None, compressed_bytes=None, macs=None)
    try:
        proto = _onnx_of(module, onnx_model, tuple(data.input_shape))
        raw = proto.SerializeToString()
        rec["onnx_bytes"] = len(raw)
        rec["compressed_bytes"] = len(zlib.compress(raw, 9))
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        session = ort.InferenceSession(raw, so, providers=["CPUExecutionProvider"])
        rec["top1_acc"] = round(evaluate_onnx(session, data.test).top1_acc, 6)
        try:
            rec["macs"] = int(count_macs(proto))
        except Exception as e:  # MacsError and shape-inference failures: say so, keep the rest
            errors.append(f"MACs: {type(e).__name__}: {e}"[:200])
    except Exception as e:  # an intermediate model that does not export is reported, not fatal
        errors.append(f"ONNX: {type(e).__name__}: {e}"[:200])
    if errors:
        rec["measure_error"] = "; ".join(errors)
    return rec


_WHEN_PIPELINE = (
    "To stack savings: for example structured pruning for speed, then fine-tuning, then static int8 for a "
    "further speed-up and a quarter of the size. Each step's metrics are kept, so you see which step cost "
    "what."
)


@register("pipeline", PipelineConfig, family="pipeline", title="Pipeline (ordered steps)", when=_WHEN_PIPELINE)
def apply_pipeline(model: nn.Module, cfg: PipelineConfig, ctx: RunContext) -> CompressedModel:
    """Run the steps in order on a copy of ``model``, measuring the model after each step.

    Args:
        model: fp32 classifier (not mutated: every technique works on its own copy).
        cfg: the ordered steps.
        ctx: data, seed, threads and progress (shared by the steps; progress split evenly).

    Returns:
        The last step's model and artifact; ``notes`` gathers every step's notes (prefixed with
        the step) and ``steps`` holds one record per step: ``step``, ``technique``, ``config``,
        ``wall_s``, the :func:`measure_step` figures and the step's ``notes``.

    Raises:
        ValueError: a step cannot take the model it receives (the message names the step).
    """
    cfg.validate_for(model, ctx.input_shape)
    n = len(cfg.steps)
    current = model
    records: list[dict[str, Any]] = []
    notes: list[str] = []
    out: CompressedModel | None = None
    for i, s in enumerate(cfg.steps, 1):
        lo, hi = (i - 1) / n, i / n
        ctx.progress(lo, f"pipeline step {i}/{n}: {s.technique}")
        step_ctx = dataclasses.replace(ctx, progress=_sub_progress(ctx.progress, lo, lo + 0.85 * (hi - lo), i, n),
                                       source_onnx=ctx.source_onnx if i == 1 else None)  # later steps: not the upload
        t0 = time.perf_counter()
        try:
            s.config.validate_for(current, ctx.input_shape)
            out = get_technique(s.technique).apply(current, s.config, step_ctx)
        except ValueError as e:
            raise ValueError(f"pipeline step {i} ({s.technique}): {e}") from None
        out.module.eval()
        wall = time.perf_counter() - t0
        ctx.progress(lo + 0.85 * (hi - lo), f"pipeline step {i}/{n}: measuring {s.technique}")
        figures = measure_step(out.module, out.onnx_model, ctx.data, threads=ctx.threads)
        records.append({
            "step": i,
            "technique": s.technique,
            "config": s.to_dict(),
            "wall_s": round(wall, 3),
            **figures,
            "notes": list(out.notes),
        })
        notes += [f"step {i} ({s.technique}): {note}" for note in out.notes]
        current = out.module
    assert out is not None
    notes.append(
        f"{n} steps: {describe_steps(cfg.steps)}. Each step's accuracy, parameters, non-zeros, bytes and MACs "
        "are kept in result.json 'steps' (latency is measured for the final model only)."
    )
    ctx.progress(1.0, "pipeline: done")
    return CompressedModel(module=out.module, onnx_model=out.onnx_model, notes=tuple(notes), steps=tuple(records))


def _sub_progress(
    progress: Callable[[float, str], None], lo: float, hi: float, i: int, n: int
) -> Callable[[float, str], None]:
    def report(fraction: float, message: str) -> None:
        f = min(max(float(fraction), 0.0), 1.0) if fraction == fraction else 0.0
        progress(lo + (hi - lo) * f, f"step {i}/{n}: {message}")

    return report
