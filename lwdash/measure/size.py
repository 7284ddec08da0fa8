"""Size counters: artifact bytes, parameter counts, a sparse encoding's bytes, compressed bytes.

Which tensors are counted is decided by :func:`lwdash.measure.weights.collect_weight_tensors`
(parameters and weight buffers; not BatchNorm running statistics; quantized weights at their
stored width). Zeros left by unstructured pruning do not shrink the dense artifact: the sparse
encoding below shows what an index + value format would take.

Sparse encoding (per tensor, CSR-style): a tensor is viewed as ``rows = shape[0]`` rows of
``numel / rows`` columns (a 1-D tensor or scalar is one row); it costs
``nnz * (value_bytes + 4) + (rows + 1) * 4`` bytes (int32 column index per nonzero, int32 row
pointers), or its dense bytes ``numel * value_bytes`` if that is smaller. ``value_bytes`` is the
stored dtype's real item size (1 for int8, 2 for fp16 / bf16, 4 for fp32). Scales and zero points
of quantized tensors are added densely.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lwdash.measure.weights import WeightTensor, collect_weight_tensors

__all__ = [
    "INDEX_BYTES",
    "SizeCounts",
    "compressed_file_bytes",
    "count_sizes",
    "csr_bytes",
    "file_bytes",
    "tensor_sparse_bytes",
]

INDEX_BYTES = 4  # int32 column indices and row pointers


@dataclass(frozen=True)
class SizeCounts:
    """Parameter counts and encoded sizes of a model's weights.

    Attributes:
        params_count: number of counted weight values.
        nonzero_params_count: those whose (dequantized) value is not exactly zero.
        dense_bytes: stored bytes of the counted tensors (values at their stored width + scales).
        sparse_bytes: bytes under the CSR-style encoding (dense where that is smaller).
    """

    params_count: int
    nonzero_params_count: int
    dense_bytes: int
    sparse_bytes: int


def csr_bytes(shape: tuple[int, ...], nonzeros: int, value_bytes: int) -> int:
    """Bytes of a CSR encoding of a tensor of ``shape`` with ``nonzeros`` nonzero values.

    Args:
        shape: logical shape; ``shape[0]`` rows (one row for 0-D / 1-D tensors).
        nonzeros: count of stored (nonzero) values.
        value_bytes: bytes per stored value.

    Returns:
        ``nonzeros * (value_bytes + 4) + (rows + 1) * 4``.
    """
    rows = int(shape[0]) if len(shape) >= 2 else 1
    return int(nonzeros) * (int(value_bytes) + INDEX_BYTES) + (rows + 1) * INDEX_BYTES


def tensor_sparse_bytes(w: WeightTensor) -> int:
    """The smaller of dense and CSR bytes of one weight tensor, plus its scales / zero points."""
    nnz = int(torch.count_nonzero(w.values))
    dense = w.numel * w.itemsize_bytes
    return min(dense, csr_bytes(w.shape, nnz, w.itemsize_bytes)) + w.aux_bytes


def count_sizes(module: nn.Module) -> SizeCounts:
    """Count the weights of ``module`` (see the module docstring for the rule and the encoding).

    Args:
        module: a plain, GraphModule or torchao-quantized model.

    Returns:
        The :class:`SizeCounts` of its weights.
    """
    params = nonzero = dense = sparse = 0
    for w in collect_weight_tensors(module):
        nnz = int(torch.count_nonzero(w.values))
        params += w.numel
        nonzero += nnz
        dense += w.numel * w.itemsize_bytes + w.aux_bytes
        sparse += min(w.numel * w.itemsize_bytes, csr_bytes(w.shape, nnz, w.itemsize_bytes)) + w.aux_bytes
    return SizeCounts(params_count=params, nonzero_params_count=nonzero, dense_bytes=dense, sparse_bytes=sparse)


def file_bytes(path: Path) -> int:
    """Size of a file in bytes.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    return int(Path(path).stat().st_size)


def compressed_file_bytes(path: Path, level: int = 9) -> int:
    """Length of the file's bytes after ``zlib.compress`` at ``level`` (default 9, the smallest)."""
    return len(zlib.compress(Path(path).read_bytes(), level))
