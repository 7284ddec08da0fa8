"""Small inline models and synthetic data for the measurement tests (no other helper's code)."""
from __future__ import annotations

import torch
from torch import nn

from lwdash.data import Dataset, Split

INPUT_SHAPE = (1, 8, 8)
NUM_CLASSES = 10


class SmallCNN(nn.Module):
    """conv(1->8) + BN + ReLU, conv(8->16, stride 2) + ReLU, flatten, linear(16*4*4 -> 10)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.fc = nn.Linear(16 * 4 * 4, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.features(x), 1))


# MACs of one sample, by hand: conv1 8 out ch * 8*8 positions * (1*3*3); conv2 16 * 4*4 * (8*3*3); fc 256*10
SMALL_CNN_MACS = 8 * 64 * 9 + 16 * 16 * 72 + 256 * 10


def make_split(n: int, seed: int) -> Split:
    """Synthetic digits-like samples with a learnable label (the brightest 8x8 row band, mod 10)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, *INPUT_SHAPE, generator=gen)
    y = (x.sum(dim=(1, 3)).argmax(dim=1) + (x[:, 0, 0, 0] > 0.5).long() * 2) % NUM_CLASSES
    return Split(x=x.float(), y=y.to(torch.int64))


def make_cnn(seed: int = 0) -> SmallCNN:
    torch.manual_seed(seed)
    model = SmallCNN()
    with torch.no_grad():  # non-trivial BN statistics, so folding / export mistakes would show
        bn = model.features[1]
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.1, 0.1)
    return model.eval()


def make_dataset() -> Dataset:
    return Dataset(
        name="synthetic",
        input_shape=INPUT_SHAPE,
        num_classes=NUM_CLASSES,
        train=make_split(64, 1),
        calib=make_split(32, 2),
        test=make_split(120, 3),
    )
