"""Parameters of a synthetic dance dataset (all of them are recorded in its synth.json)."""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import StreidError

MIN_DANCERS, MAX_DANCERS = 3, 8  # dancers per video, as in DanceReID's videos
MAX_CROP_SIDE = 2048  # larger crops run out of memory while rendering, long before they are useful


@dataclass(frozen=True)
class SynthConfig:
    seed: int = 0
    height: int = 256  # crop size in pixels (DanceReID: 256 x 128)
    width: int = 128
    ids: int = 60  # identities in total
    videos: int = 12
    frames: int = 60  # sampled frames per video on average (each video draws 75-125 % of this)
    frame_step: int = 5  # raw video frames between samples, as DanceReID keeps every 5th frame
    test_fraction: float = 0.3  # share of identities (whole videos) held out for query/gallery
    twin_fraction: float = 0.35  # share of identities wearing the outfit of someone in another video
    theme_fraction: float = 0.3  # share of videos whose group dresses in shared colours

    def validate(self) -> None:
        """Raise StreidError naming the first value that cannot produce a valid dataset."""
        if self.seed < 0:
            raise StreidError(f"--seed {self.seed}: must be >= 0")
        if self.height < 32 or self.width < 16:
            raise StreidError(f"--height {self.height} --width {self.width}: crops must be at least 32x16 pixels")
        if self.height > MAX_CROP_SIDE or self.width > MAX_CROP_SIDE:
            raise StreidError(f"--height {self.height} --width {self.width}: crops larger than "
                              f"{MAX_CROP_SIDE}x{MAX_CROP_SIDE} pixels are not supported (DanceReID's are 256x128)")
        if self.videos < 2:
            raise StreidError(f"--videos {self.videos}: need at least 2 videos (train and test are split by video)")
        lo, hi = MIN_DANCERS * self.videos, MAX_DANCERS * self.videos
        if not lo <= self.ids <= hi:
            raise StreidError(
                f"--ids {self.ids}: {self.videos} videos of {MIN_DANCERS}-{MAX_DANCERS} dancers hold {lo}-{hi} identities; "
                "change --ids or --videos"
            )
        if self.ids > 10_000:
            raise StreidError(f"--ids {self.ids}: file names hold 4-digit identities, use at most 10000")
        if self.frames < 4:
            raise StreidError(f"--frames {self.frames}: need at least 4 sampled frames per video")
        if self.frame_step < 1 or self.frames * self.frame_step * 1.25 >= 1_000_000:
            raise StreidError(f"--frames {self.frames} --frame-step {self.frame_step}: the step must be >= 1 and "
                              "keep frame numbers (up to 1.25 x frames x step) below 1000000")
        for name in ("test_fraction", "twin_fraction", "theme_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise StreidError(f"{name} = {value}: must lie in [0, 1]")
