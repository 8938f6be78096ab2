"""Slowly varying random curves: the one source of drift in the synthetic videos.

Dance timing noise, lighting, zoom and formation all change smoothly over time. A curve is a
set of random knots at a fixed spacing joined by a cosine blend, so it has no kinks and its
rate of change is set by the spacing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def smooth_blend(a: np.ndarray) -> np.ndarray:
    """Cosine ease from 0 to 1 on [0, 1]: zero slope at both ends, so joined pieces do not kink."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(a, 0.0, 1.0))


@dataclass(frozen=True)
class SmoothCurve:
    """Random knots `values[k]` at times `k * spacing`, blended smoothly; any number of channels."""

    spacing: float
    values: np.ndarray  # (n_knots, channels)

    @classmethod
    def random(
        cls,
        rng: np.random.Generator,
        duration: float,
        spacing: float,
        std: float | np.ndarray,
        channels: int = 1,
        mean: float | np.ndarray = 0.0,
    ) -> "SmoothCurve":
        n_knots = int(np.ceil(duration / spacing)) + 2
        values = mean + rng.normal(size=(n_knots, channels)) * std
        return cls(spacing=float(spacing), values=np.asarray(values, dtype=np.float64))

    def __call__(self, t: np.ndarray | float) -> np.ndarray:
        """Values at times `t` (any shape), returned with a trailing channel axis."""
        pos = np.clip(np.asarray(t, dtype=np.float64) / self.spacing, 0.0, len(self.values) - 1.000001)
        k = np.floor(pos).astype(int)
        w = smooth_blend(pos - k)[..., None]
        return self.values[k] * (1.0 - w) + self.values[k + 1] * w
