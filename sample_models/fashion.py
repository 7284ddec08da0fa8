"""Training and measuring the Fashion-MNIST sample models (used by ``sample_models/train.py``).

Each sample trains from scratch on the 55,000-image training split with a one-cycle schedule
(SGD with Nesterov momentum for the convnets, AdamW for the transformer) and light augmentation
(horizontal flips; random 28x28 crops of the image padded by 2 pixels where the recipe says so).
The saved weights are then loaded back into a fresh module and measured: top-1 accuracy on the
official 10,000-image test set and on the quick subset (``fashion_mnist_quick``), parameter count,
MACs (counted on the exported ONNX graph) and whether ONNX and ``.pt2`` export work.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from lwdash.data import Dataset, Split
from lwdash.data.bundled import load_bundled
from lwdash.data.fashion_mnist import load_fashion_mnist
from lwdash.measure.export import export_onnx, save_pt2
from lwdash.measure.macs import count_macs
from lwdash.models.registry import architecture_input_shape, build_architecture

__all__ = [
    "EVAL_BATCH",
    "FASHION_RECIPES",
    "QUICK_DATA",
    "FashionRecipe",
    "accuracy_on",
    "load_quick_fashion_mnist",
    "train_fashion_sample",
]

BATCH_SIZE = 128
EVAL_BATCH = 500
QUICK_DATA = "fashion_mnist_quick"


@dataclass(frozen=True)
class FashionRecipe:
    """What to train for one Fashion-MNIST sample and how.

    Attributes:
        name / title / description / arch / role: as in the manifest.
        epochs: passes over the 55,000 training images.
        optimizer: ``"sgd"`` (Nesterov momentum 0.9) or ``"adamw"``.
        lr: peak learning rate of the one-cycle schedule.
        weight_decay: decoupled (AdamW) or L2 (SGD) weight decay.
        crop: also train on random crops of the image zero-padded by 2 pixels (flips always).
    """

    name: str
    title: str
    description: str
    arch: str
    epochs: int
    optimizer: str
    lr: float
    weight_decay: float
    crop: bool = False
    role: str = ""


FASHION_RECIPES: tuple[FashionRecipe, ...] = (
    FashionRecipe(
        "fashion_resnet20",
        "Fashion ResNet-20 (teacher)",
        "A CIFAR-style ResNet-20 (16/32/64 channels, BatchNorm, residual blocks, ~31M MACs) on 28x28 "
        "Fashion-MNIST: the main sample for structured pruning and static int8, and the teacher of the "
        "distillation pair.",
        "fashion_resnet20",
        epochs=3,
        optimizer="sgd",
        lr=0.15,
        weight_decay=5e-4,
        role="teacher",
    ),
    FashionRecipe(
        "fashion_mobilenet_v2",
        "Fashion MobileNetV2 (width 0.5)",
        "torchvision's MobileNetV2 at width 0.5 with a 1-channel stem and two stride-2 stages set to "
        "stride 1 for 28x28 input: depthwise-separable blocks, as deployed on phones.",
        "fashion_mobilenet_v2",
        epochs=4,
        optimizer="sgd",
        lr=0.1,
        weight_decay=1e-4,
    ),
    FashionRecipe(
        "fashion_cnn",
        "Fashion CNN",
        "Two conv blocks and a 3136-128-10 Linear head (~4M MACs): a small CNN whose parameters sit mostly "
        "in one Linear layer, for pruning, int8 and low-rank.",
        "fashion_cnn",
        epochs=8,
        optimizer="sgd",
        lr=0.05,
        weight_decay=5e-4,
        crop=True,
    ),
    FashionRecipe(
        "fashion_vit",
        "Fashion ViT (patch 7, dim 128, depth 4)",
        "A small vision transformer: 16 patches of 7x7 pixels, 4 pre-norm blocks of 4-head attention and "
        "GELU MLPs, every projection an nn.Linear: where dynamic int8 and low-rank SVD matter.",
        "fashion_vit",
        epochs=10,
        optimizer="adamw",
        lr=2e-3,
        weight_decay=0.05,
    ),
    FashionRecipe(
        "fashion_student",
        "Fashion student (narrow CNN, trained alone)",
        "A narrow 8/16/32-channel CNN (~6K parameters) trained without a teacher: the no-distillation "
        "baseline of the pair whose teacher is the Fashion ResNet-20.",
        "fashion_student",
        epochs=10,
        optimizer="sgd",
        lr=0.1,
        weight_decay=5e-4,
        crop=True,
        role="student",
    ),
)


def load_quick_fashion_mnist() -> Dataset:
    """The bundled quick variant (``fashion_mnist_quick``): the manifest's ``test_acc_quick`` is on its test split."""
    return load_bundled(QUICK_DATA)


def accuracy_on(module: nn.Module, split: Split) -> float:
    """Top-1 accuracy of ``module`` (in eval mode) on ``split``, in batches of :data:`EVAL_BATCH`."""
    module.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(split), EVAL_BATCH):
            logits = module(split.x[start : start + EVAL_BATCH])
            correct += int((logits.argmax(dim=1) == split.y[start : start + EVAL_BATCH]).sum())
    return correct / len(split)


def _augment(x: torch.Tensor, crop: bool, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and (optionally) random crops of the image padded by 2 pixels."""
    b = x.shape[0]
    flip = torch.rand(b, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if crop:
        padded = F.pad(x, (2, 2, 2, 2))  # (B, 1, 32, 32)
        oy = torch.randint(0, 5, (b,), generator=generator)
        ox = torch.randint(0, 5, (b,), generator=generator)
        ar = torch.arange(28)
        rows = (oy[:, None] + ar)[:, :, None]  # (B, 28, 1)
        cols = (ox[:, None] + ar)[:, None, :]  # (B, 1, 28)
        x = padded[torch.arange(b)[:, None, None], 0, rows, cols].unsqueeze(1)  # (B, 1, 28, 28)
    return x


def _optimizer(recipe: FashionRecipe, model: nn.Module) -> torch.optim.Optimizer:
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=recipe.lr, momentum=0.9, nesterov=True, weight_decay=recipe.weight_decay
        )
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}; accepted: sgd, adamw")


def _train(recipe: FashionRecipe, train: Split, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = build_architecture(recipe.arch, num_classes=10).train()
    conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    if conv:  # channels_last measured ~20 % faster for the convnets here
        model = model.to(memory_format=torch.channels_last)
    optimizer = _optimizer(recipe, model)
    steps_per_epoch = len(train) // BATCH_SIZE  # the last partial batch is dropped
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=recipe.lr, total_steps=recipe.epochs * steps_per_epoch, pct_start=0.25
    )
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(recipe.epochs):
        order = torch.randperm(len(train), generator=generator)
        t0, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
        for step in range(steps_per_epoch):
            idx = order[step * BATCH_SIZE : (step + 1) * BATCH_SIZE]
            x = _augment(train.x[idx], recipe.crop, generator)
            if conv:
                x = x.contiguous(memory_format=torch.channels_last)
            y = train.y[idx]
            optimizer.zero_grad(set_to_none=True)
            logits = model(x)
            loss = loss_fn(logits, y)
            loss.backward()
            optimizer.step()
            scheduler.step()
            seen += len(idx)
            loss_sum += float(loss) * len(idx)
            correct += int((logits.argmax(dim=1) == y).sum())
            if (step + 1) % 50 == 0:
                rate = seen / (time.perf_counter() - t0)
                print(
                    f"  {recipe.name} epoch {epoch + 1}/{recipe.epochs} step {step + 1}/{steps_per_epoch} "
                    f"loss {loss_sum / seen:.4f} train acc {100 * correct / seen:.2f} % ({rate:.0f} img/s)",
                    flush=True,
                )
        print(
            f"  {recipe.name} epoch {epoch + 1} done: loss {loss_sum / seen:.4f}, train acc "
            f"{100 * correct / seen:.2f} %, {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
    return model.to(memory_format=torch.contiguous_format).eval()


def _exports(module: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, bool]:
    """MACs counted on the exported ONNX graph, and whether a ``.pt2`` export works."""
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(module, input_shape, Path(tmp) / "model.onnx")
        macs = count_macs(onnx_path)
        pt2_ok = save_pt2(module, input_shape, Path(tmp) / "model.pt2")
    return int(macs), bool(pt2_ok)


def train_fashion_sample(recipe: FashionRecipe, out_dir: Path, seed: int, threads: int) -> dict[str, Any]:
    """Train one Fashion-MNIST sample, save its weights and return its measured manifest entry.

    Args:
        recipe: what to train.
        out_dir: folder of the ``.safetensors`` file.
        seed: seed of the initialisation, the batch order and the augmentation.
        threads: torch intra-op threads used for training and measuring.

    Returns:
        The manifest entry (every number in it measured here).
    """
    import hashlib

    torch.set_num_threads(threads)
    data = load_fashion_mnist(seed=0)
    quick = load_quick_fashion_mnist()
    started = time.perf_counter()
    model = _train(recipe, data.train, seed)
    train_wall_s = time.perf_counter() - started
    file_name = f"{recipe.name}.safetensors"
    path = out_dir / file_name
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"arch": recipe.arch, "format": "lwdash-sample"})
    path.chmod(0o644)  # safetensors writes owner-only files
    # Measure the module as load_sample will build it: the saved weights in a fresh module.
    loaded = build_architecture(recipe.arch, num_classes=10)
    loaded.load_state_dict(load_file(str(path)), strict=True)
    loaded = loaded.float().eval()
    test_acc = accuracy_on(loaded, data.test)
    test_acc_quick = accuracy_on(loaded, quick.test)
    input_shape = tuple(architecture_input_shape(recipe.arch))
    macs, pt2_ok = _exports(loaded, input_shape)
    schedule = f"one-cycle (cosine annealing), peak lr {recipe.lr:g} at 25 % of {recipe.epochs} epochs"
    return {
        "name": recipe.name,
        "title": recipe.title,
        "description": recipe.description,
        "arch": recipe.arch,
        "input_shape": list(input_shape),
        "num_classes": 10,
        "params_count": sum(p.numel() for p in loaded.parameters()),
        "macs": macs,
        "test_acc": round(test_acc, 6),
        "test_acc_quick": round(test_acc_quick, 6),
        "role": recipe.role,
        "file": file_name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "exports": {"onnx": True, "pt2": pt2_ok},
        "trained_with": {
            "dataset": data.name,
            "train_samples": len(data.train),
            "test_samples": len(data.test),
            "quick_dataset": quick.name,
            "quick_test_samples": len(quick.test),
            "epochs": recipe.epochs,
            "batch_size": BATCH_SIZE,
            "optimizer": {"sgd": "SGD (Nesterov, momentum 0.9)", "adamw": "AdamW"}[recipe.optimizer],
            "lr": recipe.lr,
            "weight_decay": recipe.weight_decay,
            "schedule": schedule,
            "augmentation": "horizontal flip" + (", random crop (padding 2)" if recipe.crop else ""),
            "precision": "fp32",
            "threads": threads,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
            "seed": seed,
            "torch": torch.__version__,
            "train_wall_s": round(train_wall_s, 1),
        },
    }
