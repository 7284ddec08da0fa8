"""The Search page's progress chart says in words what its level means (no hypervolume jargon needed)."""
from __future__ import annotations

from lwdash.figures.search import plot_search_progress, search_progress_info


def _summary(hypervolume: list[float] | None) -> dict:
    costs = [0.5] if hypervolume is not None else [0.5, 0.4]  # three objectives: no hypervolume
    trials = [{"trial": i, "status": "done", "params": {"amount": 0.1 * (i + 1)}, "values": [0.9 - 0.1 * i, *costs]}
              for i in range(3)]
    return {"trials": trials, "hypervolume": hypervolume, "front": [0], "directions": ["max", *["min"] * len(costs)]}


def test_two_objectives_explain_the_hypervolume_with_a_worked_example() -> None:
    info = search_progress_info(_summary([0.45, 0.45, 0.5]), cost="Best runtime latency, batch 1")
    assert info.level == (0.45, 0.45, 0.5) and info.outcome == ("improved", "behind", "improved")
    assert "area those points cover" in info.explanation and "0.9 x 0.5 = 0.45" in info.explanation
    assert "baseline's best runtime latency, batch 1 saved" in info.explanation
    assert "last gain came at trial 3" in info.summary
    fig = plot_search_progress(info)
    assert fig.layout.yaxis.title.text == info.y_title and "hypervolume" in info.y_title


def test_acronyms_keep_their_case_and_three_objectives_explain_the_front_count() -> None:
    onnx = search_progress_info(_summary([0.1, 0.2, 0.3]), cost="ONNX file size")
    assert "baseline's ONNX file size saved" in onnx.explanation
    info = search_progress_info(_summary(None))
    assert info.y_title == "trials on the front so far" and "all three objectives" in info.explanation
