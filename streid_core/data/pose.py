"""Keypoints -> the pose inputs of ST-ReIDNet: Gaussian heat-maps (one channel per joint) and the
binary skeleton mask that up-weights the reconstruction loss (docs/original-system.md §5.2, §5.3).

Keypoints arrive as (K, 2) float arrays of (x, y) canvas coordinates with NaN for a missing
joint. Like the original loader, a joint sits on the integer pixel (floor(y), floor(x)); a joint
that is missing or falls outside the canvas gives an all-zero heat-map channel and no mask
drawing.

Heat-maps use the closed form exp(-d^2 / 2 sigma^2) with peak exactly 1. The original filters a
delta image with `scipy.ndimage.gaussian_filter` (truncate 4 sigma, reflect borders) and divides
by the maximum; that is the same function inside the 4-sigma window, except that reflection
adds mirrored mass for joints closer than 4 sigma to a border and the original is exactly 0
beyond the window (the closed form is <= exp(-8) there). benchmarks/pose_maps.py measures both.

Sigma is the paper's 5 pixels on its 256x128 canvas and scales with the canvas like the mask
(`canvas_sigma`): at 128x64 it is 2.5, so a heat-map covers the same part of the body at every
size. With a fixed 5 at 128x64 the blobs are twice as wide relative to the body and the head,
neck and shoulder joints merge into one blob. At 256x128 nothing changes.
"""
from __future__ import annotations

import random

import cv2
import numpy as np

from ..errors import StreidError
from .keypoints import KeypointConvention

POSE_AUGS = ("no", "gauss", "erase")

# The mask sizes of the original are in pixels of a 256x128 canvas.
_REFERENCE_CANVAS = (256, 128)
_JOINT_RADIUS = 10
_HEAD_RADIUS = 20
_THIN_LIMB = 20
_THICK_LIMB = 30
PAPER_SIGMA = 5.0  # heat-map sigma in pixels of the 256x128 canvas
DENORMAL_FREE_FACTOR = np.float32(1e-18)  # a product of two factors above it is a normal float32


def canvas_pixels(keypoints: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer (row, col) of each joint and whether it is present on the canvas."""
    kps = np.asarray(keypoints, dtype=np.float64)
    finite = np.isfinite(kps).all(axis=1)
    # a joint far off the canvas is absent; clipping keeps the int64 cast defined (1e30 would warn)
    safe = np.clip(np.where(finite[:, None], kps, -1.0), -1.0, 2.0 ** 31)
    cols = np.floor(safe[:, 0]).astype(np.int64)
    rows = np.floor(safe[:, 1]).astype(np.int64)
    present = finite & (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    return rows, cols, present


def snap_to_canvas(keypoints: np.ndarray, height: int, width: int) -> np.ndarray:
    """Truncate canvas coordinates to the pixel the joint sits on (as the original loader does)
    and mark joints outside the canvas missing. Integer coordinates make a later horizontal flip
    (x -> width - 1 - x) land exactly on the mirrored pixel."""
    rows, cols, present = canvas_pixels(keypoints, height, width)
    out = np.full((len(rows), 2), np.nan, dtype=np.float32)
    out[present, 0] = cols[present]
    out[present, 1] = rows[present]
    return out


def keypoints_to_canvas(keypoints: np.ndarray, image_size: tuple[int, int], height: int, width: int) -> np.ndarray:
    """Scale (x, y) from an image of `image_size` = (width, height) to a height x width canvas:
    x * width / image_width, y * height / image_height, then truncate (docs/original-system.md
    §5.1)."""
    src_w, src_h = image_size
    kps = np.asarray(keypoints, dtype=np.float64) * np.array([width / src_w, height / src_h])
    return snap_to_canvas(kps, height, width)


def canvas_sigma(height: int, width: int) -> float:
    """The heat-map sigma on a height x width canvas: the paper's 5 px at 256x128, scaled."""
    return PAPER_SIGMA * mask_scale(height, width)


def pose_maps(keypoints: np.ndarray, height: int, width: int, sigma: float | None = None) -> np.ndarray:
    """(K, height, width) float32 heat-maps exp(-d^2 / 2 sigma^2) centred on each joint's pixel;
    sigma None = `canvas_sigma(height, width)`."""
    if sigma is None:
        sigma = canvas_sigma(height, width)
    rows, cols, present = canvas_pixels(keypoints, height, width)
    scale = np.float32(-0.5 / (sigma * sigma))
    dy = np.arange(height, dtype=np.float32)[None, :] - rows[:, None].astype(np.float32)
    dx = np.arange(width, dtype=np.float32)[None, :] - cols[:, None].astype(np.float32)
    # exp(-(dy^2 + dx^2) / 2s^2) = exp(-dy^2 / 2s^2) * exp(-dx^2 / 2s^2): the same closed form over
    # the whole K x H x W block in one broadcast product, with K*(H+W) exponentials instead of K*H*W.
    along_rows = np.exp(scale * dy * dy) * present[:, None]
    along_cols = np.exp(scale * dx * dx)
    # Factors under 1e-18 become 0, so no product is a float32 denormal (< 1.2e-38): denormals made
    # every convolution reading the maps 3-4x slower on x86. Only values under 1e-18 change; the
    # release's truncated filter is exactly 0 beyond 4 sigma, where the closed form is < 3.4e-4.
    along_rows[along_rows < DENORMAL_FREE_FACTOR] = 0.0
    along_cols[along_cols < DENORMAL_FREE_FACTOR] = 0.0
    return along_rows[:, :, None] * along_cols[:, None, :]


def augmented_pose_maps(
    keypoints: np.ndarray,
    height: int,
    width: int,
    pose_aug: str,
    rng: random.Random,
    sigma: float | None = None,
) -> np.ndarray:
    """Heat-maps with the `--pose-aug` augmentation of the original.

    "no": as `pose_maps`; "gauss": sigma drawn once per image from {0.8, 1, 1.2} x sigma
    ({4, 5, 6} at 256x128, the original's); "erase": one channel, chosen uniformly, left all zero.
    """
    if pose_aug not in POSE_AUGS:
        raise StreidError(f"unknown pose augmentation {pose_aug!r}; use one of {', '.join(POSE_AUGS)}")
    if sigma is None:
        sigma = canvas_sigma(height, width)
    if pose_aug == "gauss":
        sigma = rng.choice((0.8 * sigma, sigma, 1.2 * sigma))
    maps = pose_maps(keypoints, height, width, sigma)
    if pose_aug == "erase":
        maps[rng.randrange(len(maps))] = 0.0
    return maps


def mask_scale(height: int, width: int) -> float:
    """How much the 256x128 pixel sizes of the mask are scaled on another canvas: the geometric
    mean of the two axis ratios, so a uniformly scaled canvas scales the drawing uniformly."""
    return float(np.sqrt((height / _REFERENCE_CANVAS[0]) * (width / _REFERENCE_CANVAS[1])))


def _canvas_px(size: int, scale: float) -> int:
    return max(1, int(round(size * scale)))


def joint_radius(is_head: bool, scale: float) -> int:
    """Radius in pixels of a joint's disc in the skeleton mask, on a canvas of `mask_scale` scale."""
    return _canvas_px(_HEAD_RADIUS if is_head else _JOINT_RADIUS, scale)


def limb_width(thick: bool, scale: float) -> int:
    """Width in pixels of a limb's line in the skeleton mask (thick: torso and neck)."""
    return _canvas_px(_THICK_LIMB if thick else _THIN_LIMB, scale)


def skeleton_mask(keypoints: np.ndarray, height: int, width: int, conv: KeypointConvention) -> np.ndarray:
    """(1, height, width) float32 binary mask: a filled disc at every present joint (radius 10,
    20 for the head joint) and a line between every present limb pair (20 px wide for head, arm
    and leg limbs, 30 px for torso and neck), sizes given for a 256x128 canvas (see mask_scale)."""
    rows, cols, present = canvas_pixels(keypoints, height, width)
    if len(rows) != conv.num_joints:
        raise ValueError(f"expected {conv.num_joints} joints for {conv.name}, got {len(rows)}")
    scale = mask_scale(height, width)
    canvas = np.zeros((height, width), dtype=np.uint8)
    centres = {j: (int(cols[j]), int(rows[j])) for j in np.flatnonzero(present)}  # cv2 wants (col, row)
    for j, centre in centres.items():
        cv2.circle(canvas, centre, joint_radius(j == conv.head, scale), 255, thickness=-1)
    for limbs, thickness in ((conv.thin_limbs, limb_width(False, scale)), (conv.thick_limbs, limb_width(True, scale))):
        for a, b in limbs:
            if a in centres and b in centres:
                cv2.line(canvas, centres[a], centres[b], 255, thickness=thickness)
    return (canvas > 128).astype(np.float32)[None]
