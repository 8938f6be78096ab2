"""A simulated person detector: the ground-truth boxes, jittered, with misses and false alarms.

A dancer less visible than `min_visibility` (hidden behind others or mostly outside the frame)
is never detected, as a real detector loses a person it cannot see; any other dancer is missed
with probability `miss_rate`. Each edge of a detected box moves by Gaussian noise proportional
to the box's size, and its confidence grows with how much of the dancer is visible. False
detections (a Poisson number per frame, `fp_rate` on average) are person-sized boxes at random
places, with lower confidences.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import DetectorNoise
from .sequence import FrameTruth

MIN_SIDE = 2.0  # pixels: a jittered box thinner than this is dropped


@dataclass(frozen=True)
class FrameDetections:
    """One frame's detections: boxes (k, 4) x, y, w, h, confidences (k,), and the ground-truth
    id each came from (-1 for a false detection; not written to det.txt)."""

    frame: int
    boxes: np.ndarray
    confidences: np.ndarray
    sources: np.ndarray

    def rows(self) -> np.ndarray:
        """(k, 6) frame, x, y, w, h, confidence, as `data.formats.mot.write_detections` takes them."""
        return np.column_stack([np.full(len(self.boxes), self.frame), self.boxes, self.confidences]).reshape(-1, 6)


def _clip_xyxy(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.clip(boxes, 0, [width, height, width, height])


def detect(rng: np.random.Generator, truth: FrameTruth, frame_size: tuple[int, int], noise: DetectorNoise) -> FrameDetections:
    """What the simulated detector reports on one frame of `frame_size` = (width, height)."""
    width, height = frame_size
    seen = (truth.visibility >= noise.min_visibility) & (rng.random(len(truth.ids)) >= noise.miss_rate)
    gt = truth.boxes[seen]
    size = np.column_stack([gt[:, 2], gt[:, 3], gt[:, 2], gt[:, 3]])
    xyxy = np.column_stack([gt[:, :2], gt[:, :2] + gt[:, 2:]])
    xyxy = _clip_xyxy(xyxy + rng.normal(0.0, noise.box_noise, xyxy.shape) * size, width, height)
    confidence = np.clip(0.5 + 0.45 * truth.visibility[seen] + rng.normal(0.0, 0.05, len(gt)), 0.05, 1.0)

    n_false = int(rng.poisson(noise.fp_rate))
    typical = float(np.median(truth.boxes[:, 3])) if len(truth.boxes) else 0.3 * height
    h = np.minimum(typical * rng.uniform(0.5, 1.2, n_false), height)
    w = np.minimum(h * rng.uniform(0.3, 0.55, n_false), width)
    x0, y0 = rng.uniform(0, 1, n_false) * (width - w), rng.uniform(0, 1, n_false) * (height - h)
    false_xyxy = np.column_stack([x0, y0, x0 + w, y0 + h])

    xyxy = np.concatenate([xyxy.reshape(-1, 4), false_xyxy.reshape(-1, 4)])
    confidence = np.concatenate([confidence, rng.uniform(0.1, 0.6, n_false)])
    sources = np.concatenate([truth.ids[seen], np.full(n_false, -1)]).astype(np.int64)
    boxes = np.column_stack([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]])
    boxes, confidence = np.round(boxes, 2), np.round(confidence, 3)  # a detector's precision, and short lines
    keep = (boxes[:, 2] >= MIN_SIDE) & (boxes[:, 3] >= MIN_SIDE)
    return FrameDetections(truth.frame, boxes[keep], confidence[keep], sources[keep])
