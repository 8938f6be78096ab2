"""A stick person drawn from known COCO-17 keypoints, for transform and dataset tests.

Limbs are grey lines; every joint is a disc whose colour says which side of the body it is on
(left green, right blue, centre red), so a test can check both that a transformed keypoint still
sits on its joint and whether the joint it sits on is a left or a right one.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from streid_core.data.keypoints import COCO17, OPENPOSE18, write_keypoints
from streid_core.data.records import Record

BACKGROUND = (40, 40, 40)
LIMB = (150, 150, 150)
SIDE_COLOURS = {"left": (0, 210, 0), "right": (0, 0, 230), "centre": (230, 0, 0)}

# A standing person on a 256x128 canvas, (x, y), face spread so joint discs never touch.
TEMPLATE_256x128 = np.array([
    [64, 30], [76, 20], [52, 20], [90, 28], [38, 28],
    [84, 60], [44, 60], [94, 96], [34, 96], [100, 130], [28, 130],
    [78, 134], [50, 134], [80, 182], [48, 182], [82, 226], [46, 226],
], dtype=np.float32)


def side(name: str) -> str:
    return "left" if name.startswith("left") else "right" if name.startswith("right") else "centre"


def person_keypoints(height: int, width: int) -> np.ndarray:
    """The template scaled to a height x width image."""
    return TEMPLATE_256x128 * np.array([width / 128, height / 256], dtype=np.float32)


def render_person(keypoints: np.ndarray, height: int, width: int, joint_radius: int = 4) -> np.ndarray:
    """HxWx3 uint8 RGB image of the COCO-17 skeleton `keypoints` (x, y)."""
    canvas = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
    pts = {j: (int(round(x)), int(round(y))) for j, (x, y) in enumerate(keypoints) if np.isfinite(x)}
    for a, b in COCO17.limbs:
        if a in pts and b in pts:
            cv2.line(canvas, pts[a], pts[b], LIMB, thickness=3)
    for j, centre in pts.items():
        cv2.circle(canvas, centre, joint_radius, SIDE_COLOURS[side(COCO17.names[j])], thickness=-1)
    return canvas


def colour_at(pixels: np.ndarray, x: float, y: float) -> str:
    """Which named colour the pixel (floor(y), floor(x)) is closest to."""
    value = pixels[int(np.floor(y)), int(np.floor(x))].astype(float)
    named = {**SIDE_COLOURS, "limb": LIMB, "background": BACKGROUND}
    return min(named, key=lambda k: np.abs(value - np.array(named[k])).sum())


def write_person_dataset(root: Path, count: int, height: int = 192, width: int = 96,
                         conv_name: str = "coco17") -> list[Record]:
    """`count` images of the person (slightly shifted each) with pose files in the dataset's own
    format: DanceReID "x y" (coco17) or FD-GAN "row col" (openpose18, from the COCO joints that
    have an OpenPose twin; the neck is written missing)."""
    rng = np.random.default_rng(7)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "poses").mkdir(exist_ok=True)
    records = []
    for i in range(count):
        kps = person_keypoints(height, width) + rng.uniform(-3, 3, size=2).astype(np.float32)
        image_path = root / "images" / f"{i:04d}.png"
        Image.fromarray(render_person(kps, height, width)).save(image_path)
        pose_path = root / "poses" / f"{i:04d}.txt"
        if conv_name == "coco17":
            write_keypoints(pose_path, kps, COCO17)
        else:
            write_keypoints(pose_path, coco_to_openpose(kps), OPENPOSE18)
        records.append(Record(str(image_path), pid=100 + i % 3, camid=i, frame=i, video="v", pose_path=str(pose_path)))
    return records


def coco_to_openpose(kps: np.ndarray) -> np.ndarray:
    out = np.full((OPENPOSE18.num_joints, 2), np.nan, dtype=np.float32)
    for j, name in enumerate(OPENPOSE18.names):
        if name in COCO17.names:
            out[j] = kps[COCO17.names.index(name)]
    return out
