"""Image transforms that move the keypoints with the pixels (docs/original-system.md §1.1, §1.2, §5.4).

Each geometric transform takes a PIL image and its keypoints ((K, 2) x, y in that image's
pixels, NaN missing; or None) and returns both transformed. Every random draw comes from the
`random.Random` passed in, so a sample's augmentation depends only on how that generator was
seeded (the Dataset seeds one per sample), never on the DataLoader worker that runs it.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from .keypoints import KeypointConvention, flip_keypoints

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# ToTensor + Normalize folded into one multiply-add per pixel: (v / 255 - mean) / std.
_PIXEL_SCALE = (1.0 / (255.0 * np.asarray(IMAGENET_STD))).astype(np.float32)[:, None, None]
_PIXEL_OFFSET = (-np.asarray(IMAGENET_MEAN) / np.asarray(IMAGENET_STD)).astype(np.float32)[:, None, None]


def _move_keypoints(keypoints: np.ndarray | None, x0: float, y0: float, sx: float, sy: float) -> np.ndarray | None:
    """(x - x0) * sx, (y - y0) * sy: where a joint lands after cropping at (x0, y0) and scaling."""
    if keypoints is None:
        return None
    out = np.asarray(keypoints, dtype=np.float32).copy()
    out[:, 0] = (out[:, 0] - x0) * sx
    out[:, 1] = (out[:, 1] - y0) * sy
    return out


def resize(image: Image.Image, keypoints: np.ndarray | None, height: int, width: int) -> tuple[Image.Image, np.ndarray | None]:
    """Bilinear resize to height x width; keypoints scale by width / w and height / h
    (docs/original-system.md §5.1)."""
    w, h = image.size
    if (w, h) != (width, height):
        image = image.resize((width, height), Image.BILINEAR)
    return image, _move_keypoints(keypoints, 0.0, 0.0, width / w, height / h)


def random_sized_rect_crop(
    image: Image.Image,
    keypoints: np.ndarray | None,
    height: int,
    width: int,
    rng: random.Random,
    tries: int = 10,
) -> tuple[Image.Image, np.ndarray | None]:
    """The baseline's random crop: area fraction U(0.64, 1), aspect h/w U(2, 3), up to `tries`
    attempts to fit it inside the image, then a resize to height x width; if no attempt fits,
    a plain resize. Joints cut off by the crop end up outside the canvas."""
    img_w, img_h = image.size
    for _ in range(tries):
        area = rng.uniform(0.64, 1.0) * img_w * img_h
        aspect = rng.uniform(2.0, 3.0)
        h = int(round(math.sqrt(area * aspect)))
        w = int(round(math.sqrt(area / aspect)))
        if w <= img_w and h <= img_h:
            x0 = rng.randint(0, img_w - w)
            y0 = rng.randint(0, img_h - h)
            cropped = image.crop((x0, y0, x0 + w, y0 + h)).resize((width, height), Image.BILINEAR)
            return cropped, _move_keypoints(keypoints, x0, y0, width / w, height / h)
    return resize(image, keypoints, height, width)


@dataclass(frozen=True)
class ErasedBox:
    x: int
    y: int
    width: int
    height: int
    colour: tuple[int, int, int]


def random_erase(
    image: Image.Image,
    rng: random.Random,
    prob: float = 0.5,
    release_compat: bool = False,
    max_tries: int = 100,
) -> tuple[Image.Image, ErasedBox | None]:
    """Random erasing (`RandomSizedEarser`): with probability `prob`, fill a rectangle of area
    fraction U(0.02, 0.2) and aspect h/w U(0.3, 1/0.3), at a uniformly drawn position that fits,
    with one random RGB colour. Returns a new image (the input is left untouched) and the box.

    release_compat reproduces the release: it erases when U(-1, 1) <= prob (probability 0.75 for
    prob 0.5) and pastes the patch with its own (width, height) as top-left corner instead of the
    drawn position. The release retries forever; after `max_tries` misfits we leave the image.
    """
    erase = rng.uniform(-1.0, 1.0) <= prob if release_compat else rng.random() < prob
    if not erase:
        return image, None
    img_w, img_h = image.size
    area = img_w * img_h
    for _ in range(max_tries):
        target = rng.uniform(0.02, 0.2) * area
        aspect = rng.uniform(0.3, 1 / 0.3)
        h_e = math.sqrt(target * aspect)
        w_e = math.sqrt(target / aspect)
        x_e = rng.uniform(0, img_w - w_e)
        y_e = rng.uniform(0, img_h - h_e)
        if x_e + w_e <= img_w and y_e + h_e <= img_h and x_e > 0 and y_e > 0:
            x1, y1 = int(math.ceil(x_e)), int(math.ceil(y_e))
            bw = int(math.floor(x1 + w_e)) - x1
            bh = int(math.floor(y1 + h_e)) - y1
            colour = (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
            x, y = (bw, bh) if release_compat else (x1, y1)
            # the release's misplaced patch can stick out of the image: PIL clips it, so do we
            bw, bh = min(bw, img_w - x), min(bh, img_h - y)
            erased = image.copy()
            erased.paste(colour, (x, y, x + bw, y + bh))
            return erased, ErasedBox(x, y, bw, bh, colour)
    return image, None


def horizontal_flip(
    image: Image.Image,
    keypoints: np.ndarray | None,
    conv: KeypointConvention | None,
    swap_joints: bool = True,
) -> tuple[Image.Image, np.ndarray | None]:
    """Mirror the image and the joints (x -> width - 1 - x). With swap_joints the left/right
    joints trade places, so "left_wrist" still names the depicted person's left wrist; without,
    a joint keeps its channel (the release flips pose maps without swapping channels)."""
    image = image.transpose(Image.FLIP_LEFT_RIGHT)
    if keypoints is None:
        return image, None
    width = image.size[0]
    if swap_joints:
        if conv is None:
            raise ValueError("swapping joints needs the keypoint convention")
        return image, flip_keypoints(keypoints, width, conv)
    out = np.asarray(keypoints, dtype=np.float32).copy()
    out[:, 0] = (width - 1) - out[:, 0]
    return image, out


def to_normalized_tensor(image: Image.Image) -> torch.Tensor:
    """ToTensor + ImageNet normalisation: (3, H, W) float32."""
    # Reorder to channels-first while still one byte per value, then convert and scale into one
    # buffer. NumPy, not torch: torch's intra-op threads cost more than they give on 100k values.
    pixels = np.ascontiguousarray(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1))
    out = np.empty(pixels.shape, dtype=np.float32)
    np.multiply(pixels, _PIXEL_SCALE, out=out)
    out += _PIXEL_OFFSET
    return torch.from_numpy(out)
