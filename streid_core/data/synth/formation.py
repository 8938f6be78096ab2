"""Where each dancer stands on the stage over time.

Groups change formation every few seconds (a line, two rows, a V, a diagonal, a loose cluster),
dancers swap places on the way, and rows stand close enough that the back row is partly hidden
by the front row. Stage coordinates: X metres to the audience's right, Z metres away from the
front of the stage.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .smooth import SmoothCurve, smooth_blend

LAYOUTS = ("line", "rows", "v", "diagonal", "cluster")


def layout_slots(rng: np.random.Generator, kind: str, n: int, spacing: float) -> np.ndarray:
    """(n, 2) stage positions (X, Z) of one formation, centred on X = 0 with the front row at Z = 0."""
    i = np.arange(n, dtype=np.float64)
    if kind == "line":
        xy = np.stack([(i - (n - 1) / 2) * spacing, np.zeros(n)], 1)
    elif kind == "rows":
        front = (n + 1) // 2
        back = n - front
        gap = rng.uniform(0.8, 1.5)
        stagger = spacing / 2 if rng.random() < 0.6 else rng.uniform(-0.1, 0.1)  # aligned rows hide the back row
        fx = (np.arange(front) - (front - 1) / 2) * spacing
        bx = (np.arange(back) - (back - 1) / 2) * spacing + stagger
        xy = np.concatenate([np.stack([fx, np.zeros(front)], 1), np.stack([bx, np.full(back, gap)], 1)])
    elif kind == "v":
        depth = np.abs(i - (n - 1) / 2) * rng.uniform(0.3, 0.55)
        xy = np.stack([(i - (n - 1) / 2) * spacing, depth if rng.random() < 0.5 else depth.max() - depth], 1)
    elif kind == "diagonal":
        xy = np.stack([(i - (n - 1) / 2) * spacing * rng.uniform(0.5, 0.8) * rng.choice([-1, 1]), i * rng.uniform(0.3, 0.5)], 1)
    else:  # a loose cluster: random spots mostly at least 0.8 m apart
        width, depth = max(1.6, n * spacing * 0.7), rng.uniform(1.0, 2.0)
        pts: list[np.ndarray] = []
        while len(pts) < n:
            p = np.array([rng.uniform(-width / 2, width / 2), rng.uniform(0, depth)])
            if all(np.hypot(*(p - q)) > 0.8 for q in pts) or rng.random() < 0.02:
                pts.append(p)
        xy = np.array(pts)
    xy[:, 0] -= xy[:, 0].mean()
    xy[:, 1] -= xy[:, 1].min()
    return xy


@dataclass(frozen=True)
class Formation:
    starts: np.ndarray  # (S,) raw frame at which each formation begins
    slots: np.ndarray  # (S, n, 2) position of every dancer in each formation
    transition: float  # raw frames spent walking to the next formation
    sway: SmoothCurve  # small personal drift, channels = 2 n

    def positions(self, t: np.ndarray) -> np.ndarray:
        """(T, n, 2) stage positions at raw frames t."""
        t = np.asarray(t, dtype=np.float64)
        k = np.clip(np.searchsorted(self.starts, t, side="right") - 1, 0, len(self.starts) - 1)
        prev = self.slots[np.maximum(k - 1, 0)]
        cur = self.slots[k]
        w = smooth_blend((t - self.starts[k]) / self.transition)[:, None, None]
        pos = prev * (1 - w) + cur * w
        # Walking past each other: those moving right step forward, those moving left step back.
        dx = cur[..., 0] - prev[..., 0]
        pos[..., 1] -= 0.35 * np.sin(np.pi * w[..., 0]) * np.tanh(2 * dx)
        n = self.slots.shape[1]
        return pos + self.sway(t).reshape(len(t), n, 2)


def make_formation(rng: np.random.Generator, n: int, duration: float) -> Formation:
    spacing = rng.uniform(0.9, 1.4)
    starts, slots = [0.0], []
    while True:
        kind = LAYOUTS[int(rng.integers(len(LAYOUTS)))]
        layout = layout_slots(rng, kind, n, spacing)
        slots.append(layout[rng.permutation(n)])
        nxt = starts[-1] + rng.uniform(60, 130)
        if nxt > duration:
            break
        starts.append(nxt)
    std = np.tile([0.08, 0.05], n)
    return Formation(
        starts=np.array(starts),
        slots=np.array(slots),
        transition=float(rng.uniform(15, 30)),
        sway=SmoothCurve.random(rng, duration, spacing=40.0, std=std, channels=2 * n),
    )
