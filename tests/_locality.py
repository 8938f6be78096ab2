"""Where a drawing changed when one joint moved: the share of the total pixel change that lies
within `radius` canvas pixels of the joint's path, over the share of the canvas that region
covers. 1 means the change is spread evenly; a G whose skip connections carry the pose maps to
the decoder concentrates it near the moved limb (2.5-3.0 for the tests' random 5-skip G at 64x32
moving a SynthDance wrist 5 pixels, 1.0-1.4 for the release's G without skips, which spreads any
pose change everywhere)."""
from __future__ import annotations

import numpy as np

# Enrichment a drawing that follows the moved joint must reach. Between the no-skip G's values
# and the 5-skip G's (module docstring), so the check can fail.
LOCAL_CHANGE = 1.8


def change_near_joint(before: np.ndarray, after: np.ndarray, start: tuple[float, float],
                      end: tuple[float, float], radius: float = 8.0) -> float:
    """before, after: (H, W, 3) images on the model's canvas; start, end: the joint's (x, y)
    before and after the move, in canvas pixels (a joint sits at its pixel's centre)."""
    change = np.abs(before.astype(float) - after.astype(float)).sum(axis=2)
    if change.sum() == 0:
        raise AssertionError("the drawing did not change at all")
    h, w = change.shape
    ys, xs = np.mgrid[:h, :w] + 0.5
    (x0, y0), (x1, y1) = (np.asarray(p, dtype=float) + 0.5 for p in (start, end))
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / length2, 0, 1) if length2 else 0.0
    near = np.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy)) <= radius
    return float((change[near].sum() / change.sum()) / near.mean())
