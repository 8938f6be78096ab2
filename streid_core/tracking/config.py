"""The tracker's settings: one dataclass, validated on creation, mapped 1:1 to `streid track` flags.

Kept apart from the tracker so that the command line can list the settings without importing
numpy and scipy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ..errors import StreidError


@dataclass
class TrackerConfig:
    """Settings of the association cascade; streid_core.tracking.tracker says where each acts."""

    max_age: int = 30
    n_init: int = 3
    min_iou: float = 0.3
    appearance_weight: float = 0.5
    max_appearance_distance: float = 0.8  # chosen on held-out videos (synth-video --seed 1), see README
    embedding_momentum: float = 0.9
    relink_threshold: float = 0.3
    relink_margin: float = 0.1
    relink_radius: float = 1.0
    relink_radius_growth: float = 0.1
    iou_bridge_frames: int = 5

    def __post_init__(self) -> None:
        checks = {
            "max_age": self.max_age >= 0,
            "n_init": self.n_init >= 1,
            "min_iou": 0.0 < self.min_iou <= 1.0,
            "appearance_weight": 0.0 <= self.appearance_weight <= 1.0,
            "max_appearance_distance": 0.0 <= self.max_appearance_distance <= 2.0,
            "embedding_momentum": 0.0 <= self.embedding_momentum < 1.0,
            "relink_threshold": 0.0 <= self.relink_threshold <= 2.0,
            "relink_margin": self.relink_margin >= 0.0,
            "relink_radius": self.relink_radius >= 0.0,
            "relink_radius_growth": self.relink_radius_growth >= 0.0,
            "iou_bridge_frames": self.iou_bridge_frames >= 0,
        }
        for field in fields(self):
            value = getattr(self, field.name)
            if not math.isfinite(value) or not checks[field.name]:
                raise StreidError(
                    f"tracker setting {field.name}={value} (--{field.name.replace('_', '-')}) is out of range; "
                    f"see `streid track --help`"
                )
