"""Size counters on hand-made tensors with known zeros, quantized storage and the counting rule."""
from __future__ import annotations

import copy
import zlib
from pathlib import Path

import pytest
import torch
from _measure_models import SmallCNN
from torch import nn
from torch.nn.utils import prune

from lwdash.measure.size import compressed_file_bytes, count_sizes, csr_bytes, file_bytes
from lwdash.measure.weights import collect_weight_tensors


def _linear_with_zeros() -> nn.Linear:
    """Linear(10 -> 10): weight has exactly 3 nonzeros, bias is all zeros."""
    lin = nn.Linear(10, 10)
    with torch.no_grad():
        lin.weight.zero_()
        lin.weight[0, 1] = 0.5
        lin.weight[4, 4] = -1.25
        lin.weight[9, 0] = 2.0
        lin.bias.zero_()
    return lin


def test_csr_bytes_formula() -> None:
    # 3 nonzeros * (4 value + 4 index) + (10 rows + 1) * 4 row pointers
    assert csr_bytes((10, 10), 3, 4) == 3 * 8 + 11 * 4
    assert csr_bytes((10,), 0, 4) == 2 * 4  # a 1-D tensor is one row
    assert csr_bytes((6, 2, 3, 3), 5, 1) == 5 * 5 + 7 * 4  # conv kernel: rows = out channels


def test_counts_and_sparse_bytes_on_known_zeros() -> None:
    counts = count_sizes(_linear_with_zeros())
    assert counts.params_count == 110
    assert counts.nonzero_params_count == 3
    assert counts.dense_bytes == 110 * 4
    # weight: CSR 3*8 + 11*4 = 68 < dense 400; bias: CSR 0 + 2*4 = 8 < dense 40
    assert counts.sparse_bytes == 68 + 8


def test_sparse_bytes_never_exceed_dense() -> None:
    torch.manual_seed(0)
    dense = nn.Linear(8, 4)  # no zeros: CSR would be larger, so dense bytes are used
    counts = count_sizes(dense)
    assert counts.nonzero_params_count == counts.params_count == 36
    assert counts.sparse_bytes == counts.dense_bytes == 36 * 4


def test_batchnorm_running_stats_are_not_counted(cnn: SmallCNN) -> None:
    counts = count_sizes(cnn)
    assert counts.params_count == sum(p.numel() for p in cnn.parameters())
    names = {w.name for w in collect_weight_tensors(cnn)}
    assert "features.1.weight" in names and "features.1.running_mean" not in names


def test_prune_mask_pair_counts_once_as_masked_weight() -> None:
    lin = nn.Linear(10, 10, bias=False)
    torch.manual_seed(0)
    prune.l1_unstructured(lin, "weight", amount=0.7)  # leaves weight_orig + weight_mask
    counts = count_sizes(lin)
    assert counts.params_count == 100
    assert counts.nonzero_params_count == 30
    assert counts.sparse_bytes == 30 * 8 + 11 * 4


def test_tied_weights_count_once() -> None:
    a, b = nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False)
    b.weight = a.weight
    assert count_sizes(nn.Sequential(a, b)).params_count == 16


def test_fp16_weights_count_two_bytes() -> None:
    lin = _linear_with_zeros().half()
    counts = count_sizes(lin)
    assert counts.dense_bytes == 110 * 2
    assert counts.sparse_bytes == (3 * 6 + 11 * 4) + 2 * 4  # value 2 bytes + int32 index


def test_torchao_int8_weight_counts_stored_bytes() -> None:
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    lin = _linear_with_zeros()
    model = nn.Sequential(copy.deepcopy(lin))
    quantize_(model, Int8WeightOnlyConfig())
    w = model[0].weight
    names, _ = w.__tensor_flatten__()
    aux = sum(getattr(w, n).numel() * getattr(w, n).element_size() for n in names if n != "qdata")
    counts = count_sizes(model)
    assert counts.params_count == 110
    assert counts.nonzero_params_count == 3  # exact zeros stay zero after symmetric int8
    assert counts.dense_bytes == 100 * 1 + aux + 10 * 4
    assert counts.sparse_bytes == (3 * 5 + 11 * 4) + aux + 2 * 4


def test_pt2e_graph_counts_only_weights_the_graph_reads(cnn: SmallCNN, pt2e_int8: torch.fx.GraphModule) -> None:
    base = count_sizes(cnn)
    quant = count_sizes(pt2e_int8)
    # BatchNorm was folded into the conv (its 2*8 affine params are gone); the dead fp32 copies
    # left in the converted graph's state_dict are not counted
    assert quant.params_count == base.params_count - 16
    assert sum(v.numel() for v in pt2e_int8.state_dict().values()) > 2 * quant.params_count
    kernels = {w.name: w for w in collect_weight_tensors(pt2e_int8) if w.is_kernel}
    assert set(kernels) == {"features.0.weight", "features.3.weight", "fc.weight"}
    assert all(w.stored_dtype == torch.int8 and w.aux_bytes > 0 for w in kernels.values())
    assert quant.dense_bytes < base.dense_bytes / 3


def test_file_and_compressed_bytes(tmp_path: Path) -> None:
    payload = b"lwdash" * 1000 + bytes(range(256))
    path = tmp_path / "blob.bin"
    path.write_bytes(payload)
    assert file_bytes(path) == len(payload)
    assert compressed_file_bytes(path) == len(zlib.compress(payload, 9))
    assert compressed_file_bytes(path) < len(payload)
    with pytest.raises(FileNotFoundError):
        file_bytes(tmp_path / "missing.onnx")


def test_graph_module_inside_a_wrapper_is_counted_through_its_graph(
    pt2e_int8: torch.fx.GraphModule,
) -> None:
    class Wrapper(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner
            self.head = nn.Linear(10, 2)

    direct = count_sizes(pt2e_int8)
    wrapped = count_sizes(Wrapper(pt2e_int8))
    assert wrapped.params_count == direct.params_count + 22
    assert wrapped.dense_bytes == direct.dense_bytes + 22 * 4
    assert "inner.fc.weight" in {w.name for w in collect_weight_tensors(Wrapper(pt2e_int8))}
