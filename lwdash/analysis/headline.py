"""The sentence a stakeholder reads first: per model, the lightest result that kept its accuracy, and what it costs.

For each model and data set, among its results within ``max_drop_points`` of the baseline's
top-1 accuracy, the one with the smallest ONNX file wins (ties: the more accurate); the headline
gives how much smaller it is, how much faster on its best runtime against the baseline's best
(:func:`lwdash.analysis.latency_matrix.best_runtime`), and the accuracy change in points. When no
result stays within the bound, the headline says so and names the most accurate one instead.
Every number comes from the stored measurements.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lwdash.analysis.latency_matrix import best_runtime

__all__ = ["DEFAULT_MAX_DROP_POINTS", "Headline", "headlines"]

#: The accuracy a result may lose against its baseline and still lead the headline.
DEFAULT_MAX_DROP_POINTS = 1.0


@dataclass(frozen=True)
class Headline:
    """One model's headline.

    Attributes:
        model: the model's display name; data_ref: the data set it was measured on.
        result_id / label: the result it is about (``None`` / ``""`` when the model has no result).
        met: whether that result stays within the accuracy bound.
        text: the sentence.
    """

    model: str
    data_ref: str
    result_id: str | None
    label: str
    met: bool
    text: str


def _speed_text(record: Any) -> str:
    best = best_runtime(record.baseline, record.compressed) if record is not None else None
    if best is None or not math.isfinite(best.speedup):
        return "latency not measured"
    if best.speedup >= 1:
        return f"{best.speedup:.1f}x faster on {best.title} (best runtime against the baseline's best, batch {best.batch})"
    return f"{1 / best.speedup:.1f}x slower on its best runtime, {best.title} (batch {best.batch})"


def headlines(frame: pd.DataFrame, records: Mapping[str, Any],
              max_drop_points: float = DEFAULT_MAX_DROP_POINTS) -> list[Headline]:
    """One headline per model and data set of ``frame``, in the order the models first appear.

    Args:
        frame: results-frame rows (:func:`lwdash.analysis.frame.results_frame`), with ``model_name`` if available.
        records: the same results' records by id (for the latency matrix).
        max_drop_points: how many points of top-1 accuracy a result may lose and still lead.
    """
    if frame.empty:
        return []
    names = frame["model_name"] if "model_name" in frame.columns else frame["model_id"]
    out = []
    for (_model_id, data_ref), rows in frame.assign(_name=names).groupby(["model_id", "data_ref"], sort=False):
        name = str(rows["_name"].iloc[0])
        drop = 100 * rows["acc_delta"].astype(float)
        kept = rows[drop >= -max_drop_points]
        if len(kept):
            pick = kept.assign(_acc=-kept["top1_acc"]).sort_values(["size_ratio", "_acc"]).iloc[0]
            smaller = 1 / float(pick["size_ratio"])
            text = (f"{name} on {data_ref}: {pick['label']} is {smaller:.1f}x smaller and "
                    f"{_speed_text(records.get(pick['id']))}, {100 * float(pick['acc_delta']):+.2f} points of "
                    f"top-1 accuracy (within {max_drop_points:g} of the baseline's "
                    f"{100 * float(pick['baseline_top1_acc']):.2f} %).")
            out.append(Headline(name, str(data_ref), str(pick["id"]), str(pick["label"]), True, text))
            continue
        pick = rows.sort_values("top1_acc", ascending=False).iloc[0]
        text = (f"{name} on {data_ref}: no result stays within {max_drop_points:g} point(s) of the baseline's "
                f"{100 * float(pick['baseline_top1_acc']):.2f} %; the most accurate, {pick['label']}, loses "
                f"{-100 * float(pick['acc_delta']):.2f} points, is {1 / float(pick['size_ratio']):.1f}x smaller "
                f"and {_speed_text(records.get(pick['id']))}.")
        out.append(Headline(name, str(data_ref), str(pick["id"]), str(pick["label"]), False, text))
    return out
