"""Shared fixtures: the real digits data, a small CNN trained on it once per session, and a
memo of every technique applied at its default config (so several contract tests share one run)."""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

import onnx
import pytest
import torch
from _tech_helpers import Applied, SmallCNN, SmallMLP, flags, train
from torch import nn

from lwdash.data import Dataset
from lwdash.techniques import RunContext, get_technique
from lwdash.techniques._common import export_onnx_proto

try:
    from lwdash.data import load_digits  # type: ignore[attr-defined]
except ImportError:
    from lwdash.data.digits import load_digits


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> Iterator[None]:
    # 2-core CI boxes run several suites at once: one intra-op thread keeps timings and runs stable.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_digits(seed=0)


@pytest.fixture(scope="session")
def trained_cnn(digits: Dataset) -> nn.Module:
    torch.manual_seed(0)
    return train(SmallCNN(), digits, epochs=10, lr=1e-2)


@pytest.fixture(scope="session")
def trained_mlp(digits: Dataset) -> nn.Module:
    torch.manual_seed(0)
    return train(SmallMLP(), digits, epochs=10, lr=3e-3)


@pytest.fixture(scope="session")
def cnn_logits(trained_cnn: nn.Module, digits: Dataset) -> torch.Tensor:
    with torch.no_grad():
        return trained_cnn(digits.test.x)


@pytest.fixture(scope="session")
def baseline_onnx(trained_cnn: nn.Module, digits: Dataset) -> onnx.ModelProto:
    return export_onnx_proto(copy.deepcopy(trained_cnn), digits.input_shape)


@pytest.fixture
def ctx(digits: Dataset) -> RunContext:
    return RunContext(data=digits, seed=0, threads=1)


@pytest.fixture(scope="session")
def apply_default(trained_cnn: nn.Module, digits: Dataset) -> Callable[[str], Applied]:
    cache: dict[str, Applied] = {}

    def run(key: str) -> Applied:
        if key not in cache:
            tech = get_technique(key)
            cfg = tech.config_type()
            before = {k: v.detach().clone() for k, v in trained_cnn.state_dict().items()}
            flags_before = flags(trained_cnn)
            seen: list[tuple[float, str]] = []
            ctx = RunContext(data=digits, seed=0, threads=1, progress=lambda f, m: seen.append((f, m)))
            out, rejected = None, ""
            try:
                cfg.validate_for(trained_cnn, digits.input_shape)
            except ValueError as e:
                rejected = str(e)
            if not rejected:
                out = tech.apply(trained_cnn, cfg, ctx)
                out.module.eval()
            cache[key] = Applied(
                key=key,
                out=out,
                rejected=rejected,
                state_before=before,
                state_after={k: v.detach().clone() for k, v in trained_cnn.state_dict().items()},
                flags_before=flags_before,
                flags_after=flags(trained_cnn),
                progress=seen,
            )
        return cache[key]

    return run
