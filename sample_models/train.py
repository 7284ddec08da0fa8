"""Train the bundled sample models and write their weights, manifest and README.

The Fashion-MNIST samples (the default gallery entries) train on the 55,000-image training split
and are measured on the official 10,000-image test set and on the quick subset
(``fashion_mnist_quick``); the digits samples (for quick runs) train on the digits train split.
Run from the repository root:

    python sample_models/train.py                          # every sample
    python sample_models/train.py --only fashion_resnet20  # just these; the others keep their entry

It writes, next to this script, one ``<name>.safetensors`` per sample (a plain fp32 state dict),
``manifest.json`` (architecture, measured test accuracy, parameter count, MACs, sha256, training
settings and wall time) and ``README.md`` (generated from the manifest). Every number in them is
measured here. The Fashion-MNIST training code is in ``sample_models/fashion.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Before torch starts OpenMP: on a busy shared machine, threads that spin while they wait for each
# other measured 3x slower than one thread; sleeping (passive) waiters made two threads 1.7x faster.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
from safetensors.torch import save_file
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lwdash.data import Dataset, Split  # noqa: E402
from lwdash.data.digits import load_digits  # noqa: E402
from lwdash.models.registry import architecture_input_shape, build_architecture  # noqa: E402
from sample_models.fashion import FASHION_RECIPES, FashionRecipe, train_fashion_sample  # noqa: E402

OUT_DIR = Path(__file__).resolve().parent
SEED = 0
BATCH_SIZE = 64


@dataclass(frozen=True)
class SampleRecipe:
    """What to train for one sample and how."""

    name: str
    title: str
    description: str
    arch: str
    epochs: int
    lr: float
    role: str = ""


RECIPES: tuple[SampleRecipe, ...] = (
    SampleRecipe(
        "digits_mlp",
        "Digits MLP",
        "A 64-128-64-10 multilayer perceptron on the flattened 8x8 image: Linear layers only, "
        "the natural target for dynamic int8 quantization and low-rank SVD.",
        "digits_mlp",
        epochs=30,
        lr=3e-3,
    ),
    SampleRecipe(
        "digits_cnn",
        "Digits CNN",
        "Three conv blocks with BatchNorm and a Linear head: a compact CNN for pruning, "
        "static int8 quantization and Tucker factorization.",
        "digits_cnn",
        epochs=12,
        lr=3e-3,
    ),
    SampleRecipe(
        "digits_mobilenet_v2",
        "Digits MobileNetV2 (width 0.5)",
        "torchvision's MobileNetV2 at width 0.5 with a 1-channel stride-1 stem for 8x8 input: "
        "depthwise-separable blocks, as deployed on phones.",
        "digits_mobilenet_v2",
        epochs=10,
        lr=3e-3,
    ),
    SampleRecipe(
        "digits_teacher",
        "Digits teacher (wide CNN)",
        "A wide CNN (~0.5M parameters), the teacher of the distillation pair.",
        "digits_teacher",
        epochs=15,
        lr=2e-3,
        role="teacher",
    ),
    SampleRecipe(
        "digits_student",
        "Digits student (tiny CNN, trained alone)",
        "A tiny CNN (~2K parameters) trained without a teacher: the no-distillation baseline "
        "of the teacher/student pair.",
        "digits_student",
        epochs=8,
        lr=3e-3,
        role="student",
    ),
)


def _accuracy(model: nn.Module, split: Split) -> float:
    model.eval()
    with torch.no_grad():
        preds = model(split.x).argmax(dim=1)
    return float((preds == split.y).float().mean().item())


def train_one(recipe: SampleRecipe, train: Split, seed: int) -> nn.Module:
    """Train one sample from scratch with Adam and cross-entropy; fixed seed."""
    torch.manual_seed(seed)
    model = build_architecture(recipe.arch, num_classes=10)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    n = len(train)
    for _ in range(recipe.epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, BATCH_SIZE):
            idx = order[start : start + BATCH_SIZE]
            if len(idx) < 2:  # BatchNorm needs more than one sample per batch
                continue
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(train.x[idx]), train.y[idx])
            loss.backward()
            optimizer.step()
    return model.eval()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _size_kib(entry: dict[str, Any]) -> float:
    return (OUT_DIR / str(entry["file"])).stat().st_size / 1024


def _fashion_rows(entries: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| name | architecture | role | parameters | MACs | epochs | training time | test accuracy (10,000) "
        "| quick subset (2,000) | file size |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in entries:
        t = e["trained_with"]
        lines.append(
            f"| `{e['name']}` | `{e['arch']}` | {e['role'] or '-'} | {int(e['params_count']):,} | "
            f"{int(e['macs']) / 1e6:,.1f} M | {t['epochs']} | {float(t['train_wall_s']) / 60:.1f} min | "
            f"{100 * float(e['test_acc']):.2f} % | {100 * float(e['test_acc_quick']):.2f} % | {_size_kib(e):,.1f} KiB |"
        )
    return lines


def _write_readme(entries: list[dict[str, Any]], path: Path) -> None:
    fashion = [e for e in entries if e["trained_with"]["dataset"] != "digits"]
    digits = [e for e in entries if e["trained_with"]["dataset"] == "digits"]
    lines = [
        "# Sample models",
        "",
        "Small trained models bundled so the dashboard is useful the moment it starts. This file is",
        "generated by `train.py` from `manifest.json`; every number in it is measured by that script.",
        "",
        "## Fashion-MNIST (the default gallery entries)",
        "",
        "Trained on the 55,000-image training split of Fashion-MNIST (28x28 grey clothing, 10 classes)",
        "and measured in PyTorch on the official 10,000-image test set and on the quick subset",
        "(`fashion_mnist_quick`: a stratified 2,000 of those test images). MACs are counted on the",
        "exported ONNX graph, per image.",
        "",
        *_fashion_rows(fashion),
        "",
    ]
    if fashion:
        t = fashion[0]["trained_with"]
        total_min = sum(float(e["trained_with"]["train_wall_s"]) for e in fashion) / 60
        lines += [
            f"Training: batch {t['batch_size']}, seed {t['seed']}, {t['precision']}, torch {t['torch']}, "
            f"{t['threads']} thread(s) on a shared 2-core CPU ({total_min:.0f} min for all of them together); "
            "a one-cycle schedule (cosine annealing) with SGD (Nesterov momentum) for the convnets and AdamW for "
            "the ViT, horizontal flips (plus random crops of the image padded by 2 pixels where the manifest says "
            "so). Optimizer, peak learning rate, weight decay and augmentation per model are in `manifest.json`.",
            "",
            "Training times are wall-clock on a CPU shared with other work (its load varied during the runs),",
            "so they are indicative. The epoch counts are small because all five models had to train in about",
            "an hour on that CPU: each is trained to a sensible accuracy for its size, not to its best.",
            "",
            "The distillation pair is `fashion_resnet20` (teacher) and `fashion_student`, trained alone (cross-",
            "entropy only): the no-distillation baseline, so a distillation job from the teacher has room to show",
            "its gain.",
            "",
        ]
    lines += [
        "## Digits (quick runs)",
        "",
        "Trained on the scikit-learn digits set (8x8 grey images, 10 classes), measured on its test split (20 %,",
        "stratified, seed 0) in PyTorch.",
        "",
        "| name | architecture | role | parameters | test accuracy | file size |",
        "|---|---|---|---:|---:|---:|",
    ]
    for e in digits:
        lines.append(
            f"| `{e['name']}` | `{e['arch']}` | {e['role'] or '-'} | {int(e['params_count']):,} | "
            f"{100 * float(e['test_acc']):.2f} % | {_size_kib(e):,.1f} KiB |"
        )
    trained = digits[0]["trained_with"] if digits else {}
    lines += [
        "",
        f"Trained with Adam, batch {BATCH_SIZE}, seed {SEED}, torch {trained.get('torch', '?')}"
        " (epochs and learning rate per model are in `manifest.json`).",
        "The digits student is trained alone too: the no-distillation baseline of the digits pair.",
        "",
        "## Files",
        "",
        "Each `.safetensors` file is a plain fp32 state dict of the architecture named in the",
        "manifest (`lwdash.models.registry`); `manifest.json` records its sha256, checked on load.",
        "",
        "Rebuild every file here with the command below (`--only NAME ...` retrains just those samples;",
        "`--readme-only` rewrites this file from the manifest):",
        "",
        "```",
        "python sample_models/train.py",
        "```",
        "",
    ]
    path.write_text("\n".join(lines))


def _digits_entry(recipe: SampleRecipe, data: Dataset) -> dict[str, Any]:
    """Train one digits sample, save its weights and return its manifest entry."""
    model = train_one(recipe, data.train, SEED)
    test_acc = _accuracy(model, data.test)
    file_name = f"{recipe.name}.safetensors"
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(OUT_DIR / file_name), metadata={"arch": recipe.arch, "format": "lwdash-sample"})
    (OUT_DIR / file_name).chmod(0o644)  # safetensors writes owner-only files
    return {
        "name": recipe.name,
        "title": recipe.title,
        "description": recipe.description,
        "arch": recipe.arch,
        "input_shape": list(architecture_input_shape(recipe.arch)),
        "num_classes": 10,
        "params_count": sum(p.numel() for p in model.parameters()),
        "test_acc": round(test_acc, 6),
        "role": recipe.role,
        "file": file_name,
        "sha256": _sha256(OUT_DIR / file_name),
        "trained_with": {
            "dataset": "digits",
            "train_samples": len(data.train),
            "test_samples": len(data.test),
            "epochs": recipe.epochs,
            "lr": recipe.lr,
            "batch_size": BATCH_SIZE,
            "optimizer": "Adam",
            "seed": SEED,
            "torch": torch.__version__,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    names = [r.name for r in FASHION_RECIPES] + [r.name for r in RECIPES]
    parser.add_argument(
        "--only", nargs="+", choices=names, metavar="NAME",
        help=f"train only these samples; the others keep their manifest entry ({', '.join(names)})",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the Fashion-MNIST samples")
    parser.add_argument("--readme-only", action="store_true", help="only regenerate README.md from manifest.json")
    args = parser.parse_args(argv)

    manifest_path = OUT_DIR / "manifest.json"
    previous: dict[str, dict[str, Any]] = {}
    if manifest_path.is_file():
        previous = {e["name"]: e for e in json.loads(manifest_path.read_text())["models"]}
    if args.readme_only:
        _write_readme(list(previous.values()), OUT_DIR / "README.md")
        return 0
    wanted = set(args.only or names)

    torch.manual_seed(SEED)
    digits = load_digits(seed=SEED)
    entries: list[dict[str, Any]] = []
    started = time.perf_counter()
    recipes: list[SampleRecipe | FashionRecipe] = [*FASHION_RECIPES, *RECIPES]  # manifest (gallery) order
    for recipe in recipes:
        if recipe.name not in wanted:
            if recipe.name in previous:
                entries.append(previous[recipe.name])
            else:
                print(f"{recipe.name:22s} not trained yet and not asked for: left out of the manifest")
            continue
        t0 = time.perf_counter()
        if isinstance(recipe, FashionRecipe):
            entry = train_fashion_sample(recipe, OUT_DIR, SEED, args.threads)
        else:
            entry = _digits_entry(recipe, digits)
        entries.append(entry)
        print(
            f"{recipe.name:22s} test_acc={100 * float(entry['test_acc']):6.2f} %  "
            f"params={entry['params_count']:>9,}  {time.perf_counter() - t0:5.1f} s",
            flush=True,
        )
        # Written after every sample, so an interrupted run keeps what it finished.
        done = {str(e["name"]) for e in entries}
        rest = [e for r in recipes if r.name not in done and (e := previous.get(r.name)) is not None]
        _write_manifest([*entries, *rest], recipes, manifest_path)
    _write_manifest(entries, recipes, manifest_path)
    _write_readme(entries, OUT_DIR / "README.md")
    print(f"wrote {len(entries)} samples to {OUT_DIR} in {time.perf_counter() - started:.1f} s")
    return 0


def _write_manifest(
    entries: list[dict[str, Any]], recipes: list[SampleRecipe | FashionRecipe], path: Path
) -> None:
    order = {r.name: i for i, r in enumerate(recipes)}
    ordered = sorted(entries, key=lambda e: order.get(str(e["name"]), len(order)))
    path.write_text(json.dumps({"version": 1, "models": ordered}, indent=2) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
