"""Hand-made box scenes for tracker tests: no images, identities known, appearance faked."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOX_W, BOX_H = 40.0, 100.0


@dataclass
class Scene:
    """Per-frame detections with the true identity of each, plus ground truth in gt.txt form."""

    num_frames: int
    detections: dict[int, tuple[np.ndarray, np.ndarray]]  # frame -> boxes (n,4), identities (n,)
    gt_rows: np.ndarray  # (N,9) frame, id, x, y, w, h, 1, 1, 1

    def frames(self):
        """(frame, dummy image, boxes, scores) for run_sequence."""
        image = np.zeros((1, 1, 3), dtype=np.uint8)
        for frame in range(1, self.num_frames + 1):
            boxes, _ = self.detections[frame]
            yield frame, image, boxes, np.ones(len(boxes))


def turning_dancers(seed: int = 0) -> Scene:
    """Two dancers walk towards each other at 4 px/frame, vanish together (frames 40-60, say
    behind a pillar), turn round 12 frames into the gap and reappear at frame 61 walking back.

    The numbers are chosen so that each reappears exactly where constant-velocity motion
    predicts the *other* one: A last seen at x=252 (frame 39, moving +4) is predicted at
    252 + 4 * 22 = 340 in frame 61, where B actually is (348 - 4 * 12 + 4 * 10 = 340); and B is
    predicted at 348 - 88 = 260, where A is (252 + 48 - 40 = 260). Motion alone must swap them.
    """
    rng = np.random.default_rng(seed)
    num_frames, gap, turn = 80, range(40, 61), 51  # turn: first frame of walking back

    def x_position(start: float, velocity: float, frame: int) -> float:
        forward = min(frame, turn) - 1
        back = max(frame - turn, 0)
        return start + velocity * forward - velocity * back

    detections, gt = {}, []
    for frame in range(1, num_frames + 1):
        boxes, identities = [], []
        for identity, (start, velocity) in enumerate([(100.0, 4.0), (500.0, -4.0)], start=1):
            box = np.array([x_position(start, velocity, frame), 150.0, BOX_W, BOX_H])
            gt.append([frame, identity, *box, 1, 1, 1])
            if frame not in gap:
                boxes.append(box + rng.normal(0.0, 1.0, 4) * [1, 1, 0.5, 0.5])
                identities.append(identity)
        detections[frame] = (np.array(boxes).reshape(-1, 4), np.array(identities, dtype=int))
    return Scene(num_frames, detections, np.array(gt, dtype=np.float64))


class IdentityEmbedder:
    """Stands in for a re-ID model: each true identity has a fixed random unit vector, and every
    detection gets its identity's vector plus Gaussian noise. It finds a box's identity by
    looking the box up among the scene's detections."""

    def __init__(self, scene: Scene, dim: int = 16, noise: float = 0.1, seed: int = 0,
                 prototypes: dict[int, np.ndarray] | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        identities = sorted({int(i) for _, ids in scene.detections.values() for i in ids})
        if prototypes is None:
            vectors = self.rng.normal(size=(len(identities), dim))
            prototypes = dict(zip(identities, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)))
        self.prototypes = prototypes
        self.noise = noise
        self.identity_of = {tuple(np.round(box, 6)): int(i)
                            for boxes, ids in scene.detections.values() for box, i in zip(boxes, ids)}

    def __call__(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        assert frame.ndim == 3 and frame.shape[2] == 3
        identities = [self.identity_of[tuple(np.round(box, 6))] for box in boxes]
        base = np.stack([self.prototypes[i] for i in identities])
        return base + self.rng.normal(0.0, self.noise, base.shape)
