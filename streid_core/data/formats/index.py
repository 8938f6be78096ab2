"""What a layout reader learns from a prepared dataset folder before a split is chosen.

Every layout (open-reid, DanceReID and its variants) is read into the same `DatasetIndex`;
`streid_core.data.dataset.load_dataset` then picks a split, a train/val cut and a query mode.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..records import Record


@dataclass
class DatasetIndex:
    layout: str  # human-readable layout name, e.g. "open-reid" or "DanceReID (split-folder)"
    name: str  # the dataset folder's name
    root: Path  # absolute
    keypoints: str  # "coco17", "openpose18" or "none"
    protocol: str  # default evaluation preset
    default_num_val: int  # validation identities cut from trainval before shrinking for tiny sets
    identities: dict[int, list[Record]]  # pid -> its images in meta.json order (empty pids left out)
    splits: list[dict[str, list[int]]]  # each {"trainval", "query", "gallery"} -> pids
    splits_file: Path
    camera_note: str  # how Record.camid is filled, for `streid info`
    videos: dict[str, list[int]] = field(default_factory=dict)
    # The official image-level query/gallery lists (official_split.json), when the dataset has them.
    official: dict[str, list[Record]] | None = None

    def all_records(self) -> list[Record]:
        return [r for pid in sorted(self.identities) for r in self.identities[pid]]
