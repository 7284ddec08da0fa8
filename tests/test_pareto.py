"""Pareto masks on hand-drawn point sets, hypervolume golden values, and hypothesis properties."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lwdash.pareto import front_order, hypervolume_2d, pareto_mask

# Accuracy (max) vs size (min), drawn by hand:
#
#  acc
#  0.99 |  .        C(50, .99)          E(80, .99) dominated by C
#  0.97 |      B(20, .97)
#  0.90 | A(5, .90)          D(40, .90) dominated by B
#  0.50 |                                F(1, .50) cheapest, on the front
ACC_SIZE = np.array(
    [
        [0.90, 5.0],  # A front
        [0.97, 20.0],  # B front
        [0.99, 50.0],  # C front
        [0.90, 40.0],  # D dominated by A and B
        [0.99, 80.0],  # E dominated by C (same acc, bigger)
        [0.50, 1.0],  # F front
    ]
)


def test_hand_drawn_front_accuracy_vs_size() -> None:
    mask = pareto_mask(ACC_SIZE, ["max", "min"])
    assert mask.tolist() == [True, True, True, False, False, True]


def test_both_minimised_and_both_maximised_are_mirror_images() -> None:
    pts = np.array([[1.0, 4.0], [2.0, 2.0], [4.0, 1.0], [3.0, 3.0], [5.0, 5.0]])
    assert pareto_mask(pts, ["min", "min"]).tolist() == [True, True, True, False, False]
    assert pareto_mask(-pts, ["max", "max"]).tolist() == [True, True, True, False, False]
    # maximising both turns the picture around: only (5, 5) survives
    assert pareto_mask(pts, ["max", "max"]).tolist() == [False, False, False, False, True]


def test_duplicates_stay_on_the_front_together() -> None:
    pts = np.array([[0.9, 10.0], [0.9, 10.0], [0.8, 12.0]])
    assert pareto_mask(pts, ["max", "min"]).tolist() == [True, True, False]


def test_ties_in_one_objective_are_broken_by_the_other() -> None:
    pts = np.array([[0.9, 10.0], [0.9, 9.0], [0.95, 9.0]])
    # (0.95, 9) is at least as good as both others and strictly better in one
    assert pareto_mask(pts, ["max", "min"]).tolist() == [False, False, True]


def test_three_objectives() -> None:
    # acc max, size min, latency min
    pts = np.array([[0.9, 10, 5], [0.9, 10, 4], [0.8, 5, 9], [0.7, 6, 9]])
    assert pareto_mask(pts, ["max", "min", "min"]).tolist() == [False, True, True, False]


def test_nan_rows_are_never_on_the_front_and_dominate_nothing() -> None:
    pts = np.array([[np.nan, 0.0], [0.5, 5.0]])
    assert pareto_mask(pts, ["max", "min"]).tolist() == [False, True]


def test_empty_and_single_point() -> None:
    assert pareto_mask(np.empty((0, 2)), ["max", "min"]).tolist() == []
    assert pareto_mask([[0.1, 3.0]], ["max", "min"]).tolist() == [True]


def test_bad_input_says_what_is_accepted() -> None:
    with pytest.raises(ValueError, match="'max' or 'min'"):
        pareto_mask([[1.0, 2.0]], ["up", "min"])
    with pytest.raises(ValueError, match="2 directions for 3 objectives"):
        pareto_mask([[1.0, 2.0, 3.0]], ["max", "min"])
    with pytest.raises(ValueError, match="2-D"):
        pareto_mask(np.zeros((2, 2, 2)), ["max", "min"])


def test_front_order_traces_the_front_by_the_first_objective() -> None:
    order = front_order(ACC_SIZE, ["max", "min"])
    # best accuracy first: C (0.99), B (0.97), A (0.90), F (0.50)
    assert order.tolist() == [2, 1, 0, 5]


def test_hypervolume_golden_values() -> None:
    # minimise both, reference (4, 4): staircase (1,3), (2,2), (3,1) -> 3*1 + 2*1 + 1*1 = 6
    pts = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [3.5, 3.5]])
    assert hypervolume_2d(pts, ["min", "min"], [4.0, 4.0]) == pytest.approx(6.0)
    # accuracy (max) vs size (min): one point 0.9 acc at 10 bytes, reference acc 0 and 20 bytes
    assert hypervolume_2d([[0.9, 10.0]], ["max", "min"], [0.0, 20.0]) == pytest.approx(0.9 * 10.0)
    # points no better than the reference add nothing
    assert hypervolume_2d([[5.0, 5.0]], ["min", "min"], [4.0, 4.0]) == 0.0


finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)
point_sets = st.integers(min_value=1, max_value=3).flatmap(
    lambda k: st.tuples(
        arrays(np.float64, st.tuples(st.integers(1, 25), st.just(k)), elements=finite),
        st.lists(st.sampled_from(["max", "min"]), min_size=k, max_size=k),
    )
)


def _dominates(a: np.ndarray, b: np.ndarray, dirs: list[str]) -> bool:
    sign = np.array([-1.0 if d == "max" else 1.0 for d in dirs])
    la, lb = a * sign, b * sign
    return bool(np.all(la <= lb) and np.any(la < lb))


@settings(max_examples=150, deadline=None)
@given(point_sets)
def test_no_front_point_is_dominated_and_every_other_point_is(data: tuple[np.ndarray, list[str]]) -> None:
    pts, dirs = data
    mask = pareto_mask(pts, dirs)
    assert mask.any()  # a finite, non-empty set always has a front
    for i in range(len(pts)):
        dominated = any(_dominates(pts[j], pts[i], dirs) for j in range(len(pts)))
        assert mask[i] == (not dominated)


@settings(max_examples=150, deadline=None)
@given(point_sets, st.randoms(use_true_random=False))
def test_front_is_permutation_invariant(data: tuple[np.ndarray, list[str]], rnd) -> None:  # type: ignore[no-untyped-def]
    pts, dirs = data
    perm = list(range(len(pts)))
    rnd.shuffle(perm)
    mask = pareto_mask(pts, dirs)
    mask_perm = pareto_mask(pts[perm], dirs)
    assert mask_perm.tolist() == mask[perm].tolist()


@settings(max_examples=150, deadline=None)
@given(point_sets, st.floats(min_value=0.01, max_value=10.0))
def test_adding_a_dominated_point_leaves_the_front_unchanged(data: tuple[np.ndarray, list[str]], gap: float) -> None:
    pts, dirs = data
    mask = pareto_mask(pts, dirs)
    sign = np.array([-1.0 if d == "max" else 1.0 for d in dirs])
    worse = pts[0] + gap * sign  # strictly worse than point 0 in every objective
    mask_more = pareto_mask(np.vstack([pts, worse]), dirs)
    assert mask_more[:-1].tolist() == mask.tolist()
    assert not mask_more[-1]


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 15), st.just(2)), elements=st.floats(0.0, 1.0)))
def test_hypervolume_ignores_dominated_points_and_never_shrinks(pts: np.ndarray) -> None:
    ref = [1.5, 1.5]
    hv = hypervolume_2d(pts, ["min", "min"], ref)
    front = pts[pareto_mask(pts, ["min", "min"])]
    assert hv == pytest.approx(hypervolume_2d(front, ["min", "min"], ref))
    assert hypervolume_2d(np.vstack([pts, [[0.0, 0.0]]]), ["min", "min"], ref) >= hv - 1e-12
