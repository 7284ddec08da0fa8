"""Architectures of the Fashion-MNIST sample models (``(B, 1, 28, 28)`` float32 in ``[0, 1]`` -> ``(B, 10)`` logits).

Five architectures whose compression trade-offs differ: a CIFAR-style ResNet-20 (tens of millions
of MACs, BatchNorm, residual blocks), torchvision's MobileNetV2 adapted to 28x28 (depthwise-separable
blocks), a small CNN (a few million MACs, a Linear-heavy head), a small vision transformer (almost all
of its compute in ``nn.Linear`` layers, where dynamic int8 and low-rank SVD act) and a narrow student
CNN for distillation from the ResNet-20 teacher. The trained weights are in ``sample_models/``
(``python sample_models/train.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from lwdash.models.grey_mobilenet import grey_mobilenet_v2

__all__ = [
    "FASHION_INPUT_SHAPE",
    "FashionCNN",
    "FashionStudent",
    "FashionViT",
    "ResNet20",
    "fashion_mobilenet_v2",
]

FASHION_INPUT_SHAPE: tuple[int, int, int] = (1, 28, 28)


# --------------------------------------------------------------------------------------------
# ResNet-20 (He et al., 2016, the CIFAR variant: 3 stages of 3 basic blocks, 16/32/64 channels)
# --------------------------------------------------------------------------------------------
class BasicBlock(nn.Module):
    """Two 3x3 conv + BatchNorm layers with an identity (or 1x1-conv projection) shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    """CIFAR-style ResNet-20 for 1x28x28 input (~272K params, ~31M MACs).

    Spatially 28 -> 28 (16 ch) -> 14 (32 ch) -> 7 (64 ch) -> global average pool -> Linear.
    """

    def __init__(self, num_classes: int = 10, widths: tuple[int, int, int] = (16, 32, 64), blocks: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        stages: list[nn.Module] = []
        in_ch = widths[0]
        for i, width in enumerate(widths):
            layers = [BasicBlock(in_ch if j == 0 else width, width, 2 if (i > 0 and j == 0) else 1) for j in range(blocks)]
            stages.append(nn.Sequential(*layers))
            in_ch = width
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(widths[-1], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))  # (B, 16, 28, 28)
        x = self.layer3(self.layer2(self.layer1(x)))  # (B, 64, 7, 7)
        return self.fc(self.flatten(self.pool(x)))  # (B, num_classes)


# --------------------------------------------------------------------------------------------
# MobileNetV2 (torchvision), adapted to 1x28x28
# --------------------------------------------------------------------------------------------
def fashion_mobilenet_v2(num_classes: int = 10) -> nn.Module:
    """torchvision's MobileNetV2 at width 0.5, adapted to ``(1, 28, 28)`` input.

    The stem is a 1-channel conv, and the 24- and 160-channel stages run at stride 1 (the ImageNet
    model halves the map five times, which would leave 1x1 here), so the feature map goes
    28 -> 14 (stem, 16 and 24 ch) -> 7 (32 ch) -> 4 (64, 96, 160, 320 ch).

    Args:
        num_classes: number of output logits.

    Returns:
        The model (random weights; no download).
    """
    return grey_mobilenet_v2(num_classes, stem_stride=2, unstrided=(2, 14))  # first blocks of the 24- and 160-channel stages


# --------------------------------------------------------------------------------------------
# Small CNN and the distillation student
# --------------------------------------------------------------------------------------------
def _conv_bn_relu(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class FashionCNN(nn.Module):
    """Two conv blocks and a two-layer Linear head (~420K params, ~4M MACs; most parameters in ``fc1``)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv_bn_relu(1, 32),  # (B, 32, 28, 28)
            nn.MaxPool2d(2),  # (B, 32, 14, 14)
            _conv_bn_relu(32, 64),  # (B, 64, 14, 14)
            nn.MaxPool2d(2),  # (B, 64, 7, 7)
        )
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(0.3)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(self.features(x))  # (B, 3136)
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


class FashionStudent(nn.Module):
    """A narrow CNN (~6K params): the student of the ResNet-20 teacher."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv_bn_relu(1, 8),  # (B, 8, 28, 28)
            nn.MaxPool2d(2),  # (B, 8, 14, 14)
            _conv_bn_relu(8, 16),  # (B, 16, 14, 14)
            nn.MaxPool2d(2),  # (B, 16, 7, 7)
            _conv_bn_relu(16, 32),  # (B, 32, 7, 7)
            nn.AdaptiveAvgPool2d(1),  # (B, 32, 1, 1)
        )
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.features(x)))


# --------------------------------------------------------------------------------------------
# A small vision transformer
# --------------------------------------------------------------------------------------------
class Attention(nn.Module):
    """Multi-head self-attention with ``nn.Linear`` projections (visible to dynamic int8 and SVD)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be a multiple of heads {heads}")
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, H, N, hd)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * (self.head_dim**-0.5)  # (B, H, N, N)
        out = attn.softmax(dim=-1) @ v  # (B, H, N, hd)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: attention and a GELU MLP, each with a residual connection."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp_ratio * dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(mlp_ratio * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class FashionViT(nn.Module):
    """A small ViT: 7x7-pixel patches (16 tokens), dim 128, 4 blocks, 4 heads, mean-pooled tokens.

    The patch embedding is an ``nn.Linear`` on the flattened patches, so every weight matrix of the
    model but the LayerNorms and the position embedding sits in an ``nn.Linear``.
    """

    def __init__(
        self, num_classes: int = 10, patch: int = 7, dim: int = 128, depth: int = 4, heads: int = 4, mlp_ratio: int = 2
    ) -> None:
        super().__init__()
        side = FASHION_INPUT_SHAPE[1]
        if side % patch:
            raise ValueError(f"patch {patch} must divide the image side {side}")
        self.patch = patch
        self.grid = side // patch
        self.patch_embed = nn.Linear(patch * patch, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.Sequential(*[TransformerBlock(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        p, g = self.patch, self.grid
        x = x.reshape(b, g, p, g, p).permute(0, 1, 3, 2, 4).reshape(b, g * g, p * p)  # (B, N, p*p)
        x = self.blocks(self.patch_embed(x) + self.pos_embed)  # (B, N, dim)
        return self.head(self.norm(x).mean(dim=1))  # (B, num_classes)
