"""``measure_model``: every figure of one model, measured the same way for a baseline and its compressed form."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from lwdash.data import Dataset
from lwdash.measure.accuracy import evaluate_onnx, evaluate_torch, make_session
from lwdash.measure.export import runnable_form
from lwdash.measure.latency import DEFAULT_POLICY, TimingPolicy
from lwdash.measure.macs import count_macs
from lwdash.measure.metrics import Metrics
from lwdash.measure.runtime_timing import measure_latencies
from lwdash.measure.size import compressed_file_bytes, count_sizes, file_bytes
from lwdash.runtimes import LATENCY_BATCHES

__all__ = ["LARGE_BATCH", "measure_model"]

LARGE_BATCH = max(LATENCY_BATCHES)  # the "larger batch" of the latency figures (``*_b32_*``)


def measure_model(
    module: nn.Module,
    onnx_path: Path,
    pt2_path: Path | None,
    data: Dataset,
    *,
    reference_preds: torch.Tensor | None,
    threads: int = 1,
    timing: TimingPolicy = DEFAULT_POLICY,
    runtimes: Sequence[str] | str | None = None,
) -> tuple[Metrics, torch.Tensor]:
    """Measure accuracy, size, MACs and latency of a model's two forms.

    * accuracy, loss, predictions: the ONNX artifact in ONNX Runtime on ``data.test``; the
      PyTorch form's top-1 too (they can differ, e.g. bf16 or int4 artifacts);
    * ``agreement``: fraction of test predictions equal to ``reference_preds`` (1.0 when it is
      None, i.e. for the baseline itself);
    * sizes: file bytes of both artifacts, zlib-9 bytes of the ONNX file, and the parameter
      counts and sparse-encoding bytes of the PyTorch form's weights (:mod:`lwdash.measure.size`);
    * MACs: counted from the ONNX graph for one sample (:mod:`lwdash.measure.macs`);
    * latency: median, p90 and compile time for batch 1 and batch 32 of real test samples on
      every selected runtime (:mod:`lwdash.runtimes`: ONNX Runtime on the ONNX file with fusion
      on and off, OpenVINO, PyTorch eager on the PyTorch form, torch.compile on the ``.pt2``,
      TVM, ...), at ``threads`` threads, one :class:`TimingPolicy` for all
      (:func:`lwdash.measure.runtime_timing.measure_latencies`); a runtime that is not selected,
      cannot run here, cannot take the artifact, fails, crashes or hangs is left out with its
      reason in ``Metrics.latency_notes``.

    Args:
        module: the PyTorch form (float32 input ``(B, *data.input_shape)``); not modified.
        onnx_path: the ONNX artifact (self-contained file).
        pt2_path: the ``.pt2`` artifact, or None / a missing file when it could not be exported
            (``pt2_bytes`` is then 0).
        data: the data set; its test split is used.
        reference_preds: the baseline's ONNX predictions on the same test split, or None.
        threads: every runtime's intra-op threads.
        timing: the latency stopping rule.
        runtimes: the runtime keys to time (``None`` or empty: the ``LWDASH_RUNTIMES`` setting,
            else the runtimes registered as defaults); see :func:`~lwdash.measure.selected_runtimes`.

    Returns:
        ``(metrics, preds)`` where ``preds`` are the ONNX artifact's int64 test predictions.

    Raises:
        ValueError: ``threads`` < 1, the test split is empty, ``reference_preds`` does not
            match the test split's length, or an unknown runtime key.
        FileNotFoundError: ``onnx_path`` does not exist.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    test = data.test
    if len(test) == 0:
        raise ValueError(f"data set {data.name!r} has an empty test split; nothing to measure on")
    if reference_preds is not None and tuple(reference_preds.shape) != (len(test),):
        raise ValueError(
            f"reference_preds has shape {tuple(reference_preds.shape)}, expected ({len(test)},) for the test split"
        )
    onnx_path = Path(onnx_path)
    module = runnable_form(module)  # an exported graph traced at a fixed batch cannot run batch 1 and 32
    session = make_session(onnx_path, threads)
    ort_eval = evaluate_onnx(session, test)
    del session  # the ONNX Runtime entry of the runtime registry times its own session, made the same way
    torch_eval = evaluate_torch(module, test, threads=threads)
    preds = ort_eval.preds
    agreement = 1.0 if reference_preds is None else int((preds == reference_preds.to(preds.dtype)).sum()) / len(test)

    sizes = count_sizes(module)
    has_pt2 = pt2_path is not None and Path(pt2_path).is_file()
    latency, latency_notes = measure_latencies(
        {"onnx": onnx_path, "pytorch": module, "pt2": Path(pt2_path) if has_pt2 else None},  # type: ignore[arg-type]
        test, threads=threads, policy=timing, runtimes=runtimes,
    )

    pt2_bytes = file_bytes(pt2_path) if has_pt2 else 0  # type: ignore[arg-type]
    metrics = Metrics(
        top1_acc=ort_eval.top1_acc,
        torch_top1_acc=torch_eval.top1_acc,
        loss=ort_eval.loss,
        agreement=agreement,
        onnx_bytes=file_bytes(onnx_path),
        pt2_bytes=pt2_bytes,
        params_count=sizes.params_count,
        nonzero_params_count=sizes.nonzero_params_count,
        sparse_bytes=sizes.sparse_bytes,
        compressed_bytes=compressed_file_bytes(onnx_path),
        macs=count_macs(onnx_path),
        threads=int(threads),
        test_samples=len(test),
        latency=latency,
        latency_notes=latency_notes,
    )
    return metrics, preds
