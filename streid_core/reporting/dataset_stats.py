"""The numbers notebook 01 shows about a dataset: split sizes, identities per video, images per
identity, and how complete its poses are (per-joint missing rates, where each joint sits).

Everything here reads records and pose files only; figures are in `dataset_figures`.
"""
from __future__ import annotations

import io
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..data.keypoints import KeypointConvention, load_keypoints
from ..data.records import LoadedDataset, Record

SPLITS = ("train", "val", "trainval", "query", "gallery")


def split_counts(dataset: LoadedDataset) -> dict[str, dict[str, int]]:
    """Per split: identities, images and videos (videos 0 when the dataset names none)."""
    out = {}
    for name in SPLITS:
        records = getattr(dataset, name)
        out[name] = {
            "ids": len({r.pid for r in records}),
            "images": len(records),
            "videos": len({r.video for r in records if r.video}),
        }
    return out


def identities_per_video(records: Sequence[Record]) -> dict[str, int]:
    """Video name -> number of distinct identities among `records` (records without a video
    are left out)."""
    pids: dict[str, set[int]] = {}
    for r in records:
        if r.video:
            pids.setdefault(r.video, set()).add(r.pid)
    return {video: len(p) for video, p in sorted(pids.items())}


def images_per_identity(records: Sequence[Record]) -> dict[int, int]:
    """pid -> number of images."""
    return dict(sorted(Counter(r.pid for r in records).items()))


def image_size(path: str) -> tuple[int, int]:
    """(width, height) of an image, reading its header only."""
    from PIL import Image

    from ..data.images import read_image_bytes

    with Image.open(io.BytesIO(read_image_bytes(path))) as image:
        return image.size


def read_pose_array(records: Sequence[Record], conv: KeypointConvention) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, 2) keypoints of the records that have a pose file, in image pixels (NaN where
    missing), and the (N, 2) (width, height) of their images."""
    with_pose = [r for r in records if r.pose_path]
    kps = np.full((len(with_pose), conv.num_joints, 2), np.nan, dtype=np.float32)
    sizes = np.zeros((len(with_pose), 2), dtype=np.float32)
    for i, record in enumerate(with_pose):
        kps[i] = load_keypoints(record.pose_path, conv)
        sizes[i] = image_size(record.path)
    return kps, sizes


@dataclass
class KeypointStats:
    """How complete and where the poses of a set of images are.

    missing_rate[j]      share of images whose joint j is missing
    with_missing         share of images with at least one missing joint
    mean_missing         mean number of missing joints per image
    mean_xy, std_xy      (K, 2) mean and spread of each present joint's position, as a fraction of
                         the image width (x) and height (y)
    """

    joint_names: tuple[str, ...]
    images: int
    images_without_pose: int
    missing_rate: np.ndarray
    with_missing: float
    mean_missing: float
    mean_xy: np.ndarray
    std_xy: np.ndarray

    def as_dict(self) -> dict:
        """JSON-ready: rates in [0, 1], per-joint values keyed by joint name."""
        return {
            "images": self.images,
            "images_without_pose": self.images_without_pose,
            "with_missing_joints": float(self.with_missing),
            "mean_missing_joints": float(self.mean_missing),
            "missing_rate": {n: float(v) for n, v in zip(self.joint_names, self.missing_rate)},
        }


def keypoint_statistics(records: Sequence[Record], conv: KeypointConvention) -> KeypointStats:
    """Missing-joint rates and joint positions over `records` (those without a pose file are
    counted in `images_without_pose` and otherwise ignored)."""
    kps, sizes = read_pose_array(records, conv)
    n = len(kps)
    missing = np.isnan(kps[..., 0])  # (N, K)
    unit = kps / sizes[:, None, :] if n else kps
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a joint missing everywhere: NaN is the answer
        mean_xy = np.nanmean(unit, axis=0) if n else np.full((conv.num_joints, 2), np.nan)
        std_xy = np.nanstd(unit, axis=0) if n else np.full((conv.num_joints, 2), np.nan)
    return KeypointStats(
        joint_names=conv.names,
        images=n,
        images_without_pose=len(records) - n,
        missing_rate=missing.mean(axis=0) if n else np.zeros(conv.num_joints),
        with_missing=float(missing.any(axis=1).mean()) if n else 0.0,
        mean_missing=float(missing.sum(axis=1).mean()) if n else 0.0,
        mean_xy=mean_xy,
        std_xy=std_xy,
    )

