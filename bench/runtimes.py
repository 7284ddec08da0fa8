"""int8 and structured pruning on every runtime, against fp32 measured in the same run, interleaved.

For each model (the Fashion-MNIST ResNet-20 and MobileNetV2 samples, torchvision resnet18 and
mobilenet_v2 at 3x32x32 with random weights), it builds in one process:

- fp32: the model as it is (ONNX export, and a ``.pt2`` program for torch.compile);
- lwdash int8: ``int8_static`` at its defaults (what a user gets from the Compress page);
- the peer: ONNX Runtime's ``quantize_static`` with its own defaults (QDQ, S8S8, per-tensor,
  MinMax), on the same pre-processed model and the same calibration samples;
- pruned: ``structured_pruning`` at its defaults with ratio 0.5 (50 % of the channels), without its
  fine-tuning (``fine_tune_epochs=0``: the weights' values do not change a latency).

Then each runtime times every artifact at batch 32, one thread, in interleaved rounds
(:func:`lwdash.measure.runtime_timing.compare_artifacts`: fp32, int8, peer, pruned, fp32, ...)
so that a slow spell of this shared CPU hits them alike. It prints one table per model, the
headline ratios against the targets of docs/runtimes.md, and (``--out``) writes them as markdown.

    python bench/runtimes.py [--models fashion_resnet20 fashion_mobilenet_v2 resnet18 mobilenet_v2]
                             [--runtimes ort,ort_nofusion,openvino,inductor] [--rounds 5] [--out FILE]

The samples are calibrated and evaluated on Fashion-MNIST (top-1 on the official 10,000 test
images, in ONNX Runtime); torchvision models with random weights are calibrated on Fashion-MNIST
images padded to 32x32 and repeated over 3 channels, and have no meaningful accuracy.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import onnx  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from lwdash.data import Dataset, Split, load_bundled  # noqa: E402
from lwdash.measure.accuracy import evaluate_onnx  # noqa: E402
from lwdash.measure.export import save_pt2, write_onnx  # noqa: E402
from lwdash.measure.macs import count_macs  # noqa: E402
from lwdash.measure.runtime_timing import compare_artifacts  # noqa: E402
from lwdash.models import load_sample  # noqa: E402
from lwdash.runtimes import get_runtime  # noqa: E402
from lwdash.techniques import get_technique  # noqa: E402
from lwdash.techniques._common import batch_for_export, export_onnx_proto  # noqa: E402
from lwdash.techniques.base import RunContext  # noqa: E402

BATCH = 32
ARTIFACTS = ("fp32", "int8", "peer", "pruned")
TITLES = {"fp32": "fp32", "int8": "lwdash int8", "peer": "quantize_static defaults", "pruned": "pruned 50 %"}
DEFAULT_MODELS = ("fashion_resnet20", "fashion_mobilenet_v2", "resnet18", "mobilenet_v2")
DEFAULT_RUNTIMES = "ort,ort_nofusion,openvino,inductor"


@dataclass
class Built:
    """One model's artifacts and the figures that do not depend on a runtime."""

    name: str
    input_shape: tuple[int, ...]
    onnx: dict[str, Path] = field(default_factory=dict)
    pt2: dict[str, Path] = field(default_factory=dict)
    macs: dict[str, int] = field(default_factory=dict)
    acc: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    build_s: float = 0.0
    x: torch.Tensor | None = None  # the timed batch: the first 32 test samples


def _padded_fashion(shape: tuple[int, ...]) -> Dataset:
    """Fashion-MNIST quick, padded to ``shape``'s height and width, repeated over its channels."""
    base = load_bundled("fashion_mnist_quick")
    c, h, w = shape

    def fit(split: Split) -> Split:
        x = split.x
        ph, pw = h - x.shape[-2], w - x.shape[-1]
        x = torch.nn.functional.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        return Split(x.repeat(1, c, 1, 1).contiguous(), split.y)

    return Dataset(f"fashion_mnist_quick@{c}x{h}x{w}", shape, base.num_classes, fit(base.train), fit(base.calib),
                   fit(base.test))


def _model(name: str) -> tuple[nn.Module, Dataset, bool]:
    """(module, data, whether top-1 means anything)."""
    if name.startswith("fashion_"):
        return load_sample(name).module.eval(), load_bundled("fashion_mnist"), True
    import torchvision

    torch.manual_seed(0)
    module = torchvision.models.get_model(name, weights=None, num_classes=10).eval()
    return module, _padded_fashion((3, 32, 32)), False


def _peer_int8(fp32: onnx.ModelProto, calib: torch.Tensor, dst: Path) -> None:
    """ONNX Runtime's quantize_static with its defaults, after its recommended pre-processing (the same calibration
    batches as lwdash's int8)."""
    from onnxruntime.quantization import quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from lwdash.techniques.quantization import _calibration_reader

    with tempfile.TemporaryDirectory() as tmp:
        src, pre = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx"
        onnx.save_model(fp32, str(src))
        quant_pre_process(str(src), str(pre))
        quantize_static(str(pre), str(dst), _calibration_reader(fp32.graph.input[0].name, calib))


def build(name: str, out: Path, *, with_pt2: bool) -> Built:
    """Every artifact of one model, its MACs and (for the samples) its top-1."""
    t0 = time.perf_counter()
    module, data, has_acc = _model(name)
    shape = tuple(data.input_shape)
    b = Built(name, shape)
    ctx = RunContext(data=data)
    int8 = get_technique("int8_static")
    q = int8.apply(module, int8.config_type(), ctx)
    b.notes += [n for n in q.notes if n.startswith("Activation type")]
    pruning = get_technique("structured_pruning")
    pruned = pruning.apply(module, pruning.config_type(ratio=0.5, fine_tune_epochs=0), ctx).module.eval()
    fp32_proto = export_onnx_proto(module, shape)
    for kind, proto in (("fp32", fp32_proto), ("int8", q.onnx_model), ("pruned", export_onnx_proto(pruned, shape))):
        b.onnx[kind] = write_onnx(proto, out / f"{name}-{kind}.onnx", shape)
    b.onnx["peer"] = out / f"{name}-peer.onnx"
    _peer_int8(fp32_proto, data.calib.x[:128], b.onnx["peer"])
    if with_pt2:
        for kind, m in (("fp32", module), ("int8", q.module), ("pruned", pruned)):
            path = out / f"{name}-{kind}.pt2"
            if save_pt2(m, shape, path):
                b.pt2[kind] = path
    b.macs = {k: count_macs(p) for k, p in b.onnx.items() if k in ("fp32", "pruned")}
    if has_acc:
        b.acc = {k: evaluate_onnx(p, data.test).top1_acc for k, p in b.onnx.items() if k != "pruned"}
    b.build_s = time.perf_counter() - t0
    b.x = batch_for_export(data.test.x, BATCH)
    return b


def time_all(b: Built, runtimes: list[str], rounds: int) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """runtime -> artifact -> median ms at batch 32; runtime -> why it has no figures."""
    times: dict[str, dict[str, float]] = {}
    failed: dict[str, str] = {}
    for key in runtimes:
        rt = get_runtime(key)
        paths = b.pt2 if rt.artifact == "pt2" else b.onnx
        if rt.artifact == "pytorch" or not paths:
            failed[key] = f"{rt.title}: no {rt.artifact} artifacts in this benchmark"
            continue
        try:
            assert b.x is not None
            # fp32 twice (the same file loaded again): how far two measurements of one artifact drift apart.
            times[key] = compare_artifacts(key, {**paths, "fp32_again": paths["fp32"]}, b.x, rounds=rounds)
        except RuntimeError as e:
            failed[key] = str(e)
    return times, failed


def _x(num: float, den: float) -> float:
    return num / den if den > 0 and math.isfinite(num) and math.isfinite(den) else math.nan


def _fmt(v: float, spec: str = ".2f", suffix: str = "") -> str:
    return format(v, spec) + suffix if math.isfinite(v) else "-"


def report(b: Built, times: dict[str, dict[str, float]], failed: dict[str, str]) -> tuple[list[str], dict[str, float]]:
    """The markdown lines of one model and its headline ratios."""
    lines = [f"### {b.name} ({'x'.join(map(str, b.input_shape))}, {b.macs['fp32'] / 1e6:.1f}M MACs, "
             f"built in {b.build_s:.0f} s)", "",
             "| runtime | fp32 ms | lwdash int8 ms | int8 x | peer int8 ms | peer x | pruned ms | pruned x |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for key, t in times.items():
        f = t.get("fp32", math.nan)
        lines.append(f"| {get_runtime(key).title} | {_fmt(f, '.3f')} | {_fmt(t.get('int8', math.nan), '.3f')} | "
                     f"{_fmt(_x(f, t.get('int8', math.nan)), '.2f', 'x')} | {_fmt(t.get('peer', math.nan), '.3f')} | "
                     f"{_fmt(_x(f, t.get('peer', math.nan)), '.2f', 'x')} | {_fmt(t.get('pruned', math.nan), '.3f')} | "
                     f"{_fmt(_x(f, t.get('pruned', math.nan)), '.2f', 'x')} |")
    lines.append("")

    def best(kind: str) -> tuple[str, float]:
        cands = [(k, t[kind]) for k, t in times.items() if kind in t and get_runtime(k).fusion != "off"]
        return min(cands, key=lambda c: c[1]) if cands else ("-", math.nan)

    (f_rt, f_ms), (i_rt, i_ms), (p_rt, p_ms) = best("fp32"), best("int8"), best("pruned")
    mac_ratio = _x(b.macs["fp32"], b.macs["pruned"])
    head = {
        "int8_vs_best_fp32": _x(f_ms, i_ms),
        "int8_vs_peer_ort": _x(times.get("ort", {}).get("peer", math.nan), times.get("ort", {}).get("int8", math.nan)),
        "pruned_fraction_of_macs": _x(_x(f_ms, p_ms), mac_ratio),
        "pruned_vs_best_fp32": _x(f_ms, p_ms),
        "repeat_drift_pct": max((100 * abs(t["fp32_again"] / t["fp32"] - 1) for t in times.values()
                                 if "fp32_again" in t and "fp32" in t), default=math.nan),
    }
    lines.append(f"- best fp32: {_title(f_rt)} {_fmt(f_ms, '.3f')} ms; best lwdash int8: {_title(i_rt)} "
                 f"{_fmt(i_ms, '.3f')} ms: **{_fmt(head['int8_vs_best_fp32'], '.2f', 'x')}**")
    lines.append(f"- lwdash int8 vs quantize_static defaults on ONNX Runtime: {_fmt(head['int8_vs_peer_ort'], '.2f', 'x')} "
                 "as fast")
    lines.append(f"- pruned 50 % (without fine-tuning): MACs {mac_ratio:.2f}x fewer; best pruned {_title(p_rt)} {_fmt(p_ms, '.3f')} ms: "
                 f"{_fmt(head['pruned_vs_best_fp32'], '.2f', 'x')} faster than the best fp32, "
                 f"**{_fmt(head['pruned_fraction_of_macs'], '.2f')} of the MAC ratio**")
    lines.append(f"- repeatability: fp32 measured twice (loaded twice, interleaved): the medians differ by at most "
                 f"{_fmt(head['repeat_drift_pct'], '.1f')} % across runtimes")
    if b.acc:
        lines.append("- top-1 (ONNX Runtime, 10,000 test images): " + ", ".join(
            f"{TITLES[k]} {100 * v:.2f} %" for k, v in b.acc.items())
            + f"; int8 drop {100 * (b.acc['fp32'] - b.acc['int8']):.2f} pts, peer drop "
              f"{100 * (b.acc['fp32'] - b.acc['peer']):.2f} pts")
        head["int8_drop_pts"] = 100 * (b.acc["fp32"] - b.acc["int8"])
        head["peer_drop_pts"] = 100 * (b.acc["fp32"] - b.acc["peer"])
    lines += [f"- {n}" for n in b.notes]
    lines += [f"- not timed: {why}" for why in failed.values()]
    return [*lines, ""], head


def _title(key: str) -> str:
    return get_runtime(key).title if key != "-" else "-"


def targets(heads: dict[str, dict[str, float]]) -> list[str]:
    """Each target of docs/runtimes.md against the measured ratios: met or not."""
    want_int8 = {"fashion_resnet20": 3.5, "resnet18": 3.5, "fashion_mobilenet_v2": 2.0, "mobilenet_v2": 2.0}
    rows = ["| model | target | measured | met |", "|---|---|---:|---|"]
    for name, h in heads.items():
        goal = want_int8.get(name, 1.0)
        checks = [
            (f"int8 vs best fp32 >= {goal}x", h["int8_vs_best_fp32"], h["int8_vs_best_fp32"] >= goal),
            ("int8 at least as fast as the peer on ORT", h["int8_vs_peer_ort"], h["int8_vs_peer_ort"] >= 1.0),
            ("pruned >= 0.8 of the MAC ratio", h["pruned_fraction_of_macs"], h["pruned_fraction_of_macs"] >= 0.8),
            ("pruned never slower", h["pruned_vs_best_fp32"], h["pruned_vs_best_fp32"] >= 1.0),
            ("same artifact twice: medians within 5 %", h["repeat_drift_pct"], h["repeat_drift_pct"] <= 5.0),
        ]
        if "int8_drop_pts" in h:
            checks.append(("int8 drop <= 0.3 pts", h["int8_drop_pts"], h["int8_drop_pts"] <= 0.3))
            checks.append(("int8 at least as accurate as the peer", h["int8_drop_pts"],
                           h["int8_drop_pts"] <= h["peer_drop_pts"]))
        rows += [f"| {name} | {what} | {_fmt(v)} | {'yes' if ok else '**no**'} |" for what, v, ok in checks]
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    ap.add_argument("--runtimes", default=DEFAULT_RUNTIMES, help="comma-separated runtime keys (ONNX or .pt2 ones)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds per runtime")
    ap.add_argument("--out", type=Path, default=None, help="also write the tables to this markdown file")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    runtimes = [k.strip() for k in args.runtimes.split(",") if k.strip()]
    lines = [f"Batch {BATCH}, 1 thread, {args.rounds} interleaved rounds per runtime; medians of per-round medians. "
             "x = fp32's time on the same runtime / this artifact's (> 1 is faster).", ""]
    heads: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="lwdash-bench-rt-") as tmp:
        for name in args.models:
            built = build(name, Path(tmp), with_pt2=any(get_runtime(k).artifact == "pt2" for k in runtimes))
            times, failed = time_all(built, runtimes, args.rounds)
            part, heads[name] = report(built, times, failed)
            print("\n".join(part), flush=True)
            lines += part
    tgt = ["### Targets", "", *targets(heads), ""]
    print("\n".join(tgt))
    lines += tgt
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
