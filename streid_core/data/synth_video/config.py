"""Parameters of a set of synthetic dance videos (all of them are recorded in synth_video.json)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ...errors import StreidError

RAW_FPS = 30.0  # the choreography's clock (streid_core.data.synth.choreography.FPS)


@dataclass(frozen=True)
class DetectorNoise:
    """How the simulated detector departs from the ground truth."""

    box_noise: float = 0.05  # std of each box edge, as a fraction of the box's width (x) or height (y)
    miss_rate: float = 0.05  # chance that a person who is visible enough is not detected anyway
    fp_rate: float = 0.1  # false detections per frame, on average
    min_visibility: float = 0.3  # a person less visible than this is never detected

    def validate(self) -> None:
        checks = {
            "--det-noise": (self.box_noise, 0.0 <= self.box_noise <= 0.5, "lie in [0, 0.5]"),
            "--miss-rate": (self.miss_rate, 0.0 <= self.miss_rate <= 1.0, "lie in [0, 1]"),
            "--fp-rate": (self.fp_rate, 0.0 <= self.fp_rate <= 20.0, "lie in [0, 20] false detections per frame"),
            "--min-visibility": (self.min_visibility, 0.0 <= self.min_visibility <= 1.0, "lie in [0, 1]"),
        }
        for flag, (value, ok, rule) in checks.items():
            if not (math.isfinite(value) and ok):
                raise StreidError(f"{flag} {value}: must {rule}")


@dataclass(frozen=True)
class VideoConfig:
    seed: int = 0
    sequences: int = 3
    frames: int = 200  # rendered frames per sequence
    width: int = 640
    height: int = 360
    frame_step: int = 2  # raw 30 fps frames between rendered frames: 2 gives a 15 fps video
    min_dancers: int = 4
    max_dancers: int = 6
    exits_per_100_frames: float = 2.5  # dancers walking out of the frame and back, per sequence
    min_exit_gap: int = 8  # rendered frames a dancer who walked off stays wholly out of the frame
    max_exit_gap: int = 40
    theme_fraction: float = 0.3  # share of sequences whose dancers dress in shared colours
    detector: DetectorNoise = field(default_factory=DetectorNoise)

    @property
    def fps(self) -> float:
        return RAW_FPS / self.frame_step

    def validate(self) -> None:
        """Raise StreidError naming the first value that cannot produce valid videos."""
        if self.seed < 0:
            raise StreidError(f"--seed {self.seed}: must be >= 0")
        if self.width < 64 or self.height < 48:
            raise StreidError(f"--width {self.width} --height {self.height}: frames must be at least 64x48 pixels")
        if self.width > 3840 or self.height > 2160:
            raise StreidError(f"--width {self.width} --height {self.height}: frames larger than 3840x2160 are not supported")
        if not 1 <= self.sequences <= 99:
            raise StreidError(f"--sequences {self.sequences}: choose 1 to 99 sequences")
        if not 2 <= self.frames <= 999_999:
            raise StreidError(f"--frames {self.frames}: a sequence needs 2 to 999999 frames (6-digit file names)")
        if not 1 <= self.frame_step <= 30:
            raise StreidError(f"--frame-step {self.frame_step}: choose 1 to 30 raw frames between rendered frames")
        if not 1 <= self.min_dancers <= self.max_dancers <= 12:
            raise StreidError(f"--min-dancers {self.min_dancers} --max-dancers {self.max_dancers}: "
                              "need 1 <= min <= max <= 12")
        if not (math.isfinite(self.exits_per_100_frames) and 0.0 <= self.exits_per_100_frames <= 50.0):
            raise StreidError(f"--exits {self.exits_per_100_frames}: choose 0 to 50 exits per 100 frames")
        if not 1 <= self.min_exit_gap <= self.max_exit_gap:
            raise StreidError(f"--min-exit-gap {self.min_exit_gap} --max-exit-gap {self.max_exit_gap}: "
                              "need 1 <= min <= max")
        if not 0.0 <= self.theme_fraction <= 1.0:
            raise StreidError(f"theme_fraction = {self.theme_fraction}: must lie in [0, 1]")
        self.detector.validate()
