"""Costs and assignment used by the tracker, on cases small enough to check by hand."""
import numpy as np

from streid_core.tracking.association import (
    assign,
    centre_distance_in_heights,
    cosine_distance_matrix,
    iou_matrix,
    is_unambiguous,
    l2_normalize,
)


def test_iou_matrix_hand_values():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 5, 10, 10], [0, 0, 10, 10], [20, 20, 5, 5], [0, 0, 0, 10]])
    # overlap 5x5 = 25, union 100 + 100 - 25 = 175; identical 1; disjoint 0; zero-area box 0
    np.testing.assert_allclose(iou_matrix(a, b), [[25 / 175, 1.0, 0.0, 0.0]])


def test_cosine_distance_of_unit_vectors():
    tracks = l2_normalize(np.array([[3.0, 4.0], [1.0, 0.0]]))
    dets = l2_normalize(np.array([[6.0, 8.0], [0.0, 2.0]]))
    # track 0 = (0.6, 0.8): same direction as det 0 -> 0, to (0,1) -> 1 - 0.8; track 1 to det 0 -> 1 - 0.6
    np.testing.assert_allclose(cosine_distance_matrix(tracks, dets), [[0.0, 0.2], [0.4, 1.0]], atol=1e-12)


def test_centre_distance_is_measured_in_reference_heights():
    ref = np.array([[0, 0, 20, 50]])  # centre (10, 25), height 50
    other = np.array([[30, 40, 20, 50]])  # centre (40, 65): 30, 40 away -> 50 px = 1 height
    np.testing.assert_allclose(centre_distance_in_heights(ref, other), [[1.0]])


def test_assign_is_minimum_cost_and_respects_the_gate():
    cost = np.array([[0.1, 0.2], [0.15, 0.9]])
    # Greedy would take (0,0) and leave (1,1) = 1.0 in total; the optimum is (0,1) + (1,0) = 0.35.
    assert assign(cost, np.ones_like(cost, dtype=bool)) == [(0, 1), (1, 0)]
    allowed = np.array([[True, False], [False, False]])
    assert assign(cost, allowed) == [(0, 0)]
    assert assign(np.zeros((0, 3)), np.zeros((0, 3), dtype=bool)) == []


def test_unambiguous_needs_a_margin_over_row_and_column_rivals():
    cost = np.array([[0.1, 0.25], [0.15, 0.8]])
    allowed = np.ones_like(cost, dtype=bool)
    # (0,0): row rival 0.25 is 0.15 away, column rival 0.15 only 0.05 away.
    assert is_unambiguous(cost, allowed, 0, 0, margin=0.04)
    assert not is_unambiguous(cost, allowed, 0, 0, margin=0.1)
    # A rival outside the gate does not count.
    allowed[1, 0] = False
    assert is_unambiguous(cost, allowed, 0, 0, margin=0.1)
