"""Keypoint conventions (COCO-17 for DanceReID, OpenPose-18 for FD-GAN's Market/Duke poses)
and the pose text files that store them.

Inside streid a pose is always a float32 array of shape (K, 2) holding (x, y) = (column, row)
in pixels of the image it belongs to, with NaN for a missing joint. The two file formats differ:
DanceReID writes 17 lines "x y"; FD-GAN writes 18 lines "row col" with "-1 -1" for a missing
joint. The readers below translate both into the one internal form.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from ..atomic import atomic_file
from ..errors import StreidError


@dataclass(frozen=True)
class KeypointConvention:
    name: str
    names: tuple[str, ...]
    file_order: str  # "xy" or "rowcol": coordinate order on each line of a pose file
    flip_pairs: tuple[tuple[int, int], ...]  # left/right joints swapped by a horizontal flip
    # Skeleton-mask limbs (docs/original-system.md §5.3): thin limbs are drawn 20 px wide, thick (torso, neck) 30 px.
    thin_limbs: tuple[tuple[int, int], ...]
    thick_limbs: tuple[tuple[int, int], ...]
    head: int  # the joint drawn with the larger circle

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def limbs(self) -> tuple[tuple[int, int], ...]:
        return self.thin_limbs + self.thick_limbs


COCO17 = KeypointConvention(
    name="coco17",
    names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    file_order="xy",
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    thin_limbs=(
        (0, 1), (0, 2), (1, 3), (2, 4),  # head
        (5, 7), (7, 9), (6, 8), (8, 10),  # arms
        (11, 13), (12, 14), (13, 15), (14, 16),  # legs
    ),
    thick_limbs=(
        (5, 6), (5, 11), (6, 12), (11, 12), (6, 11), (5, 12),  # torso
        (0, 6), (0, 5),  # neck
    ),
    head=0,
)

OPENPOSE18 = KeypointConvention(
    name="openpose18",
    names=(
        "nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
        "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
        "right_ankle", "left_hip", "left_knee", "left_ankle", "right_eye",
        "left_eye", "right_ear", "left_ear",
    ),
    file_order="rowcol",
    flip_pairs=((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (14, 15), (16, 17)),
    thin_limbs=(
        (16, 14), (14, 0), (0, 15), (15, 17),  # head
        (4, 3), (3, 2), (5, 6), (6, 7),  # arms
        (8, 9), (9, 10), (11, 12), (12, 13),  # legs
    ),
    # The release also lists (5, 18); joint 18 does not exist, so it is left out here.
    thick_limbs=(
        (2, 1), (1, 5), (1, 8), (1, 11), (2, 8), (11, 8), (5, 11), (11, 2),  # torso
        (0, 1),  # neck
    ),
    head=0,
)

CONVENTIONS = {c.name: c for c in (COCO17, OPENPOSE18)}


def convention(name: str) -> KeypointConvention:
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise StreidError(f"unknown keypoint convention {name!r}; use one of {sorted(CONVENTIONS)}") from None


def read_keypoints(path: str | os.PathLike, conv: KeypointConvention) -> np.ndarray:
    """Read a pose text file into a (K, 2) float32 array of (x, y), NaN where missing.

    Any negative coordinate marks the joint missing (FD-GAN writes "-1 -1").
    """
    return parse_keypoints(read_pose_text(path), conv, source=str(path))


def read_pose_text(path: str | os.PathLike) -> str:
    """The text of a pose file; a missing, unreadable or binary file is a StreidError naming it."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise StreidError(f"{path}: cannot read pose file ({exc.strerror}); check the poses/ folder") from None
    except UnicodeDecodeError:
        raise StreidError(f"{path}: not a text pose file (not UTF-8 text); regenerate or fix this pose file") from None


def load_keypoints(pose_path: str, conv: KeypointConvention) -> np.ndarray:
    """Like read_keypoints, but also reads "<file.h5>::<key>" entries of the -h5 variant, which
    store a (K, 2) array of (x, y) with negative values for missing joints."""
    from .images import H5_SEPARATOR, read_h5_array

    if H5_SEPARATOR not in pose_path:
        return read_keypoints(pose_path, conv)
    arr = np.asarray(read_h5_array(pose_path), dtype=np.float32).reshape(-1, 2)
    if arr.shape[0] != conv.num_joints:
        raise StreidError(
            f"{pose_path}: holds {arr.shape[0]} joints, expected {conv.num_joints} ({conv.name}); rebuild the HDF5 file"
        )
    arr = arr.copy()
    arr[(arr[:, 0] < 0) | (arr[:, 1] < 0)] = np.nan
    return arr


def parse_keypoints(text: str, conv: KeypointConvention, source: str = "<pose>") -> np.ndarray:
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != conv.num_joints:
        raise StreidError(
            f"{source}: pose file has {len(lines)} lines, expected {conv.num_joints} "
            f"({conv.name}, one joint per line); regenerate or fix this file"
        )
    out = np.full((conv.num_joints, 2), np.nan, dtype=np.float32)
    for j, line in enumerate(lines):
        parts = line.split()
        try:
            a, b = (float(v) for v in parts)
        except ValueError:
            raise StreidError(
                f"{source}: line {j + 1} is {line.strip()!r}, expected two numbers; fix this pose file"
            ) from None
        if not (math.isfinite(a) and math.isfinite(b)):
            raise StreidError(f"{source}: line {j + 1} holds a non-finite number; fix this pose file")
        x, y = (a, b) if conv.file_order == "xy" else (b, a)
        if x >= 0 and y >= 0:
            out[j] = (x, y)
    return out


def format_keypoints(kps: np.ndarray, conv: KeypointConvention) -> str:
    """The text of a pose file for `kps` ((K, 2) x, y with NaN missing) in `conv`'s format."""
    if kps.shape != (conv.num_joints, 2):
        raise ValueError(f"expected keypoints of shape ({conv.num_joints}, 2), got {kps.shape}")
    lines = []
    for x, y in kps:
        if not (np.isfinite(x) and np.isfinite(y)):
            lines.append("-1 -1")
        elif conv.file_order == "xy":
            lines.append(f"{x:.2f} {y:.2f}")
        else:
            lines.append(f"{int(round(y))} {int(round(x))}")
    return "\n".join(lines) + "\n"


def write_keypoints(path: str | os.PathLike, kps: np.ndarray, conv: KeypointConvention) -> None:
    with atomic_file(path, "w", encoding="utf-8") as handle:
        handle.write(format_keypoints(kps, conv))


def flip_keypoints(kps: np.ndarray, width: float, conv: KeypointConvention) -> np.ndarray:
    """Mirror (x -> width - 1 - x) and swap left/right joints so names stay true."""
    out = kps.copy()
    out[:, 0] = (width - 1) - out[:, 0]
    for a, b in conv.flip_pairs:
        out[[a, b]] = out[[b, a]]
    return out
