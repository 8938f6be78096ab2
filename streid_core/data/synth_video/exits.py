"""Dancers walking out of the frame and back in: the gaps a tracker must bridge.

An exit takes a dancer from its place in the formation to just beyond the nearer edge of the
frame, keeps it there (wholly unseen) for a while, then brings it back from the same edge or,
less often, from the other one, to wherever the formation has moved meanwhile. While a dancer
is away its track is lost; a motion model predicts it where it left, which is right only when
it comes back the same way soon enough, so re-entries are where appearance has to take over.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..synth.formation import Formation
from ..synth.smooth import smooth_blend
from ..synth.stage import Stage
from .config import RAW_FPS, VideoConfig

OFFSTAGE_MARGIN = 1.0  # metres beyond the frame edge: a dancer's arms and hair are out of view too
SAME_SIDE_RETURN = 0.6  # chance of coming back through the edge it left by
SEPARATION = 10.0  # raw frames between two exits of one dancer


@dataclass(frozen=True)
class Exit:
    """One exit and re-entry, in raw frames: walking off over [start, out], wholly out of the
    frame over [out, back], walking back over [back, end]. Sides: -1 left edge, +1 right edge."""

    dancer: int
    start: float
    out: float
    back: float
    end: float
    exit_side: int
    entry_side: int

    def weight(self, t: np.ndarray) -> np.ndarray:
        """How far (0 in place .. 1 off stage) the dancer is along its way out, at raw frames t."""
        t = np.asarray(t, dtype=np.float64)
        going = smooth_blend((t - self.start) / (self.out - self.start))
        coming = 1.0 - smooth_blend((t - self.back) / (self.end - self.back))
        return np.where(t < self.back, going, coming)

    def side(self, t: np.ndarray) -> np.ndarray:
        """The edge the dancer is beyond (it crosses behind the scenes half-way through the gap)."""
        return np.where(np.asarray(t) < (self.out + self.back) / 2, self.exit_side, self.entry_side)


def offstage_x(stage: Stage, t: float, z: float, side: int) -> float:
    """Stage X just beyond the frame's `side` edge for a dancer at depth z, at raw frame t."""
    camera = stage.camera(t)
    half_width = stage.frame_size[0] / 2 / float(stage.scale_at(camera, z))
    return camera.x + side * (half_width + OFFSTAGE_MARGIN)


def _walk_frames(distance: float, speed: float) -> float:
    return max(4.0, abs(distance) / speed * RAW_FPS)


def plan_exits(rng: np.random.Generator, config: VideoConfig, formation: Formation, stage: Stage,
               duration: float) -> tuple[Exit, ...]:
    """Exits at random times, about `exits_per_100_frames` per 100 rendered frames. A dancer
    never has two exits at once, and at most half of the group is away at any time."""
    n = formation.slots.shape[1]
    count = int(rng.poisson(config.exits_per_100_frames * config.frames / 100))
    exits: list[Exit] = []
    for _ in range(count):
        for _attempt in range(20):
            dancer = int(rng.integers(n))
            start = float(rng.uniform(0.05, 0.8) * duration)
            speed = float(rng.uniform(1.5, 2.5))  # metres per second, walking briskly
            x, z = formation.positions(np.array([start]))[0, dancer]
            side = 1 if x >= stage.camera(start).x else -1
            out = start + _walk_frames(offstage_x(stage, start, z, side) - x, speed)
            back = out + float(rng.integers(config.min_exit_gap, config.max_exit_gap + 1)) * config.frame_step
            entry = side if rng.random() < SAME_SIDE_RETURN else -side
            x_back, z_back = formation.positions(np.array([back]))[0, dancer]
            end = back + _walk_frames(offstage_x(stage, back, z_back, entry) - x_back, speed)
            candidate = Exit(dancer, start, out, back, end, side, entry)
            if _fits(candidate, exits, n):
                exits.append(candidate)
                break
    return tuple(sorted(exits, key=lambda e: (e.start, e.dancer)))


def _fits(candidate: Exit, exits: list[Exit], n: int) -> bool:
    def overlaps(a: Exit, b: Exit, gap: float) -> bool:
        return a.start < b.end + gap and b.start < a.end + gap

    if any(e.dancer == candidate.dancer and overlaps(e, candidate, SEPARATION) for e in exits):
        return False
    return sum(overlaps(e, candidate, 0.0) for e in exits) < max(1, n // 2)


def apply_exits(positions: np.ndarray, t: np.ndarray, exits: tuple[Exit, ...], stage: Stage) -> np.ndarray:
    """Formation positions (T, n, 2) at raw frames t (T,), moved along every exit."""
    out = positions.copy()
    for e in exits:
        w = e.weight(t)
        for k in np.flatnonzero(w > 0):
            x, z = out[k, e.dancer]
            away = offstage_x(stage, float(t[k]), z, int(e.side(t[k])))
            out[k, e.dancer, 0] = (1 - w[k]) * x + w[k] * away
    return out
