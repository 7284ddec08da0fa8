"""Accuracy of the ONNX artifact (ONNX Runtime) and of the PyTorch form on a data split."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lwdash.data import Split
from lwdash.measure.environment import torch_threads
from lwdash.measure.export import eval_mode
from lwdash.measure.ort_io import onnx_batch_runner

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = [
    "EVAL_BATCH",
    "EvalResult",
    "as_logits",
    "evaluate_onnx",
    "evaluate_torch",
    "make_session",
    "onnx_batch_runner",
]

EVAL_BATCH = 256


@dataclass(frozen=True)
class EvalResult:
    """Accuracy of one model form on one split.

    Attributes:
        top1_acc: fraction of samples whose argmax equals the label, in [0, 1].
        top5_acc: same for the 5 highest logits; None when the model has <= 5 classes.
        loss: mean cross-entropy of the logits (float32) against the labels.
        preds: int64 ``(N,)`` argmax predictions.
        samples: N.
    """

    top1_acc: float
    top5_acc: float | None
    loss: float
    preds: torch.Tensor
    samples: int


def make_session(path: Path, threads: int = 1) -> ort.InferenceSession:
    """An ONNX Runtime CPU session with ``threads`` intra-op threads and one inter-op thread.

    Raises:
        ValueError: ``threads`` < 1.
        FileNotFoundError: ``path`` does not exist.
    """
    from lwdash.runtimes.onnx_runtime import make_ort_session

    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    return make_ort_session(path, threads)  # the session the ONNX Runtime latency row is timed with (fusion on)


def as_logits(out: Any) -> torch.Tensor:
    """The logits tensor of a model output (a tensor, the first element of a tuple/list, or ``out["logits"]``).

    Raises:
        TypeError: no tensor can be found in ``out``.
    """
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict) and isinstance(out.get("logits"), torch.Tensor):
        logits: torch.Tensor = out["logits"]
        return logits
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise TypeError(f"the model returned {type(out).__name__}; expected a logits tensor of shape (batch, classes)")


def _summarize(logits: torch.Tensor, y: torch.Tensor) -> EvalResult:
    n = int(y.shape[0])
    if logits.ndim != 2 or logits.shape[0] != n:
        raise ValueError(f"expected logits of shape ({n}, classes), got {tuple(logits.shape)}")
    logits = logits.float()
    preds = logits.argmax(dim=1).to(torch.int64)
    top1 = int((preds == y).sum()) / n if n else 0.0  # exact fraction, not a float32 mean
    top5: float | None = None
    if logits.shape[1] > 5 and n:
        top5_idx = logits.topk(5, dim=1).indices
        top5 = int((top5_idx == y[:, None]).any(dim=1).sum()) / n
    if n and int(y.max()) >= logits.shape[1]:
        raise ValueError(f"labels go up to {int(y.max())} but the model has only {logits.shape[1]} outputs")
    loss = float(F.cross_entropy(logits, y, reduction="mean")) if n else 0.0
    return EvalResult(top1_acc=top1, top5_acc=top5, loss=loss, preds=preds, samples=n)


def evaluate_onnx(
    model: Path | ort.InferenceSession,
    split: Split,
    *,
    threads: int = 1,
    batch_size: int = EVAL_BATCH,
) -> EvalResult:
    """Run an ONNX model in ONNX Runtime over ``split`` in batches.

    Args:
        model: an ``.onnx`` path (a session is made with ``threads``) or an existing session.
        split: the samples and labels.
        threads: intra-op threads when a session is made here.
        batch_size: samples per run; a model with a fixed batch dim is run at that size (the
            last batch is padded by repetition and the padding dropped).

    Returns:
        The :class:`EvalResult` (top-1, top-5, mean cross-entropy, predictions).
    """
    session = make_session(Path(model), threads) if isinstance(model, (str, Path)) else model
    run, fixed = onnx_batch_runner(session)
    step = fixed or max(1, int(batch_size))
    chunks: list[torch.Tensor] = []
    n = len(split)
    for start in range(0, n, step):
        xb = split.x[start : start + step]
        real = int(xb.shape[0])
        if fixed is not None and real < fixed:
            reps = -(-fixed // real)
            xb = xb.repeat(reps, *([1] * (xb.ndim - 1)))[:fixed]
        chunks.append(torch.from_numpy(np.ascontiguousarray(run(xb)[:real])).float())
    logits = torch.cat(chunks) if chunks else torch.empty(0, 0)
    return _summarize(logits, split.y.to(torch.int64))


def evaluate_torch(
    module: nn.Module,
    split: Split,
    *,
    threads: int = 1,
    batch_size: int = EVAL_BATCH,
) -> EvalResult:
    """Run the PyTorch form over ``split`` under ``torch.inference_mode()`` with ``threads`` threads.

    The module is put in eval mode for the run and its modes are restored after; the previous
    PyTorch thread count is restored too.
    """
    chunks: list[torch.Tensor] = []
    with torch_threads(threads), eval_mode(module), torch.inference_mode():
        for start in range(0, len(split), max(1, int(batch_size))):
            chunks.append(as_logits(module(split.x[start : start + batch_size])).detach().float().cpu())
    logits = torch.cat(chunks) if chunks else torch.empty(0, 0)
    return _summarize(logits, split.y.to(torch.int64))
