"""The building blocks of associating tracks with detections: costs, gates, and assignment.

Costs are matrices with one row per track and one column per detection. A gate marks the pairs
that are allowed at all; the Hungarian method (scipy's linear_sum_assignment) then finds the
cheapest one-to-one assignment among allowed pairs, and pairs outside the gate never match.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

# Stands in for a forbidden pair: larger than any real cost, yet finite so that the assignment
# problem is always solvable (scipy rejects rows or columns that are entirely infinite).
_FORBIDDEN_COST = 1e6


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in `boxes_a` (N,4) with every box in `boxes_b` (M,4).

    Boxes are (x, y, w, h) with continuous pixel coordinates (no +1), as TrackEval computes them;
    a box of zero area overlaps nothing.
    """
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    a_x2, a_y2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    b_x2, b_y2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    inter_w = np.minimum(a_x2[:, None], b_x2[None, :]) - np.maximum(a[:, 0][:, None], b[:, 0][None, :])
    inter_h = np.minimum(a_y2[:, None], b_y2[None, :]) - np.maximum(a[:, 1][:, None], b[:, 1][None, :])
    intersection = np.clip(inter_w, 0, None) * np.clip(inter_h, 0, None)
    area_a = np.clip(a[:, 2], 0, None) * np.clip(a[:, 3], 0, None)
    area_b = np.clip(b[:, 2], 0, None) * np.clip(b[:, 3], 0, None)
    union = area_a[:, None] + area_b[None, :] - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, intersection / union, 0.0)
    return iou


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero rather than becoming NaN)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def cosine_distance_matrix(track_embeddings: np.ndarray, detection_embeddings: np.ndarray) -> np.ndarray:
    """1 - cosine similarity between unit-length rows: 0 for the same direction, 2 for opposite."""
    return 1.0 - np.asarray(track_embeddings) @ np.asarray(detection_embeddings).T


def centre_distance_in_heights(reference_boxes: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Distance between box centres, in units of the reference box's height; (N,M).

    Dividing by height makes the gate independent of how far the person is from the camera.
    """
    ref = np.asarray(reference_boxes, dtype=np.float64).reshape(-1, 4)
    other = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ref_centre = ref[:, :2] + ref[:, 2:] / 2.0
    other_centre = other[:, :2] + other[:, 2:] / 2.0
    distance = np.linalg.norm(ref_centre[:, None, :] - other_centre[None, :, :], axis=-1)
    return distance / np.maximum(ref[:, 3:4], 1e-12)


def assign(cost: np.ndarray, allowed: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost one-to-one matching among allowed (row, column) pairs, sorted by row.

    Rows or columns left without an allowed partner stay unmatched.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.size == 0:
        return []
    gated = np.where(allowed, cost, _FORBIDDEN_COST)
    rows, cols = linear_sum_assignment(gated)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if allowed[r, c]]


def is_unambiguous(cost: np.ndarray, allowed: np.ndarray, row: int, col: int, margin: float) -> bool:
    """True when (row, col) beats every other allowed pair in its row and its column by `margin`.

    A re-identification is trusted only if no other candidate comes close: neither another
    detection for this track nor another track for this detection.
    """
    best = cost[row, col]
    rivals_in_row = np.delete(np.where(allowed[row], cost[row], np.inf), col)
    rivals_in_col = np.delete(np.where(allowed[:, col], cost[:, col], np.inf), row)
    nearest_rival = min(rivals_in_row.min(initial=np.inf), rivals_in_col.min(initial=np.inf))
    return bool(best + margin <= nearest_rival)
