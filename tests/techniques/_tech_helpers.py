"""Models, training and measuring helpers shared by the technique tests (imported by conftest and tests)."""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from lwdash.data import Dataset
from lwdash.techniques import CompressedModel


class SmallCNN(nn.Module):
    """Conv-BN-ReLU x2, max-pool, then a two-layer MLP head; input (B, 1, 8, 8), 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 32, 4, 4)
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 16, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class SmallMLP(nn.Module):
    """Linear-only classifier for the dynamic int8 tests; input (B, 1, 8, 8)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def train(model: nn.Module, data: Dataset, *, epochs: int, lr: float, seed: int = 0) -> nn.Module:
    """Plain seeded Adam training on the train split; returns the model in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(data.train), generator=gen)
        for i in range(0, len(order), 32):
            idx = order[i : i + 32]
            opt.zero_grad()
            nn.functional.cross_entropy(model(data.train.x[idx]), data.train.y[idx]).backward()
            opt.step()
    return model.eval()


def accuracy(logits: torch.Tensor | np.ndarray, y: torch.Tensor) -> float:
    pred = torch.as_tensor(np.asarray(logits)).argmax(dim=1)
    return float((pred == y).float().mean())


def ort_logits(model: onnx.ModelProto, x: torch.Tensor) -> np.ndarray:
    """Run an ONNX model in ONNX Runtime (one thread) on ``x``."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0])


def zlib_bytes(model: onnx.ModelProto) -> int:
    return len(zlib.compress(model.SerializeToString(), 6))


@dataclass
class Applied:
    """One technique applied at its default config to the session CNN, with before/after snapshots."""

    key: str
    out: CompressedModel | None
    rejected: str  # validate_for's ValueError message when the default config does not fit the CNN
    state_before: dict[str, torch.Tensor]
    state_after: dict[str, torch.Tensor]
    flags_before: tuple[object, ...]
    flags_after: tuple[object, ...]
    progress: list[tuple[float, str]]


def flags(model: nn.Module) -> tuple[object, ...]:
    """Everything besides the weights that apply() could disturb: modes, grad flags, hooks."""
    return (
        tuple(m.training for m in model.modules()),
        tuple(p.requires_grad for p in model.parameters()),
        tuple(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()),
        tuple(name for name, _ in model.named_parameters()),
    )
