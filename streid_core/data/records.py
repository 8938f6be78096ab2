"""The records every part of streid passes around: one image of one identity, and a loaded
dataset with its splits."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Record:
    """One image.

    path      where the pixels are: a file path, or "<file.h5>::<dataset path>" for HDF5 variants
    pid       the identity as the dataset numbers it (not relabelled); 0 may be a distractor
    camid     the camera slot used by evaluation; DanceReID stores the frame index here, as the
              original loader does
    frame     frame index within its video (-1 when unknown)
    video     video or sequence name ("" when unknown)
    pose_path pose text file, or None when the dataset has no poses
    """

    path: str
    pid: int
    camid: int
    frame: int = -1
    video: str = ""
    pose_path: str | None = None


@dataclass
class LoadedDataset:
    """What `load_dataset` returns. Query/gallery keep original pids; `labels` maps the pids of
    `train_set` (train, or trainval with combine_trainval) to classifier indices 0..num_classes-1."""

    name: str
    root: Path
    keypoints: str  # "coco17", "openpose18" or "none"
    protocol: str  # default evaluation preset for this dataset ("dancereid", "market1501", ...)
    train: list[Record]
    val: list[Record]
    trainval: list[Record]
    query: list[Record]
    gallery: list[Record]
    combine_trainval: bool = False
    videos: dict[str, list[int]] = field(default_factory=dict)  # video name -> pids in it
    split: int = 0  # index into the splits file
    # the file each list came from: "trainval" -> splits.json, "query"/"gallery" -> splits.json or
    # official_split.json (for messages that name the file to fix)
    split_sources: dict[str, Path] = field(default_factory=dict)

    @property
    def train_set(self) -> list[Record]:
        return self.trainval if self.combine_trainval else self.train

    @property
    def labels(self) -> dict[int, int]:
        return {pid: i for i, pid in enumerate(sorted({r.pid for r in self.train_set}))}

    @property
    def num_classes(self) -> int:
        return len({r.pid for r in self.train_set})
