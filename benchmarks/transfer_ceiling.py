"""What the pose-transfer metrics give a drawing that knows everything but draws nothing: the
ceiling that issue 15's goal (pose accuracy >= 0.9, identity accuracy >= 0.8, body L1 <= 0.85 x
the better reference) is set against.

The "limb painter" is not learnt. For a pair (s, t) it takes s's own keypoints, the median colour
of s's pixels under each limb stroke and joint disc of s's skeleton mask, and paints those colours
with the same strokes on t's skeleton over the mean training image. So it has the right pose
(t's true keypoints), the dancer's own clothing colours, sharp edges, and nothing a learnt G could
add beyond that (body shapes wider or narrower than the mask strokes, occluders, shading). It is
scored by `streid_core.evaluation.pose_transfer` exactly as G is:

    .venv/bin/python benchmarks/transfer_ceiling.py --data-dir data --dataset synthdance \
        --encoder checkpoints/base/model_best.pth.tar [--pairs 256] [--blur SIGMA] [--height 128 --width 64] \
        [--out reports/transfer-curve/ceiling.json]

The evaluation hands a drawing only the source images and t's heat-maps; the painter finds s's
keypoints by the source image's bytes (every test frame is loaded once, as the evaluation loads
it) and t's joints at the heat-maps' peaks (exactly 1 on the joint's pixel).
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _transfer_args import add_encoder_and_data_args  # noqa: E402
from streid_core.atomic import write_json  # noqa: E402
from streid_core.data.dataset import load_dataset, resolve_dataset_dir  # noqa: E402
from streid_core.data.keypoints import KeypointConvention, convention  # noqa: E402
from streid_core.data.pose import mask_scale  # noqa: E402
from streid_core.evaluation.pose_transfer import evaluate_pose_transfer, load_test_frames, mean_image  # noqa: E402
from streid_core.models.loading import load_encoder  # noqa: E402

# Stroke sizes of the skeleton mask (data/pose.skeleton_mask), in pixels of a 256x128 canvas.
JOINT_RADIUS, HEAD_RADIUS, THIN, THICK = 10, 20, 20, 30


def strokes(keypoints: np.ndarray, conv: KeypointConvention, scale: float) -> dict[tuple, callable]:
    """Each limb line and joint disc of the skeleton mask, as a function painting it on a canvas."""
    ok = np.isfinite(keypoints).all(axis=1)
    at = {j: (int(keypoints[j, 0]), int(keypoints[j, 1])) for j in np.flatnonzero(ok)}
    size = lambda px: max(1, int(round(px * scale)))  # noqa: E731
    out = {}
    for limbs, width in ((conv.thin_limbs, size(THIN)), (conv.thick_limbs, size(THICK))):
        for a, b in limbs:
            if a in at and b in at:
                out[("limb", a, b)] = lambda c, v, a=a, b=b, w=width: cv2.line(c, at[a], at[b], v, thickness=w)
    for j, centre in at.items():
        radius = size(HEAD_RADIUS if j == conv.head else JOINT_RADIUS)
        out[("joint", j)] = lambda c, v, centre=centre, r=radius: cv2.circle(c, centre, r, v, thickness=-1)
    return out


class LimbPainter:
    """draw(sources, poses): s's limb colours painted on t's skeleton over the mean image."""

    def __init__(self, frames, mean: torch.Tensor, blur: float = 0.0) -> None:
        self.blur = blur
        self.conv, (self.height, self.width) = frames.conv, frames.size
        self.scale = mask_scale(self.height, self.width)
        self.keypoints_of = {self._key(frames.pixels[i]): frames.keypoints[i] for i in range(len(frames.records))}
        self.background = (mean.permute(1, 2, 0).numpy() * 255.0).astype(np.float32)

    @staticmethod
    def _key(pixels: torch.Tensor) -> str:
        return hashlib.md5(pixels.contiguous().numpy().tobytes()).hexdigest()

    def _target_keypoints(self, pose: torch.Tensor) -> np.ndarray:
        flat = pose.flatten(1)
        keypoints = np.full((len(flat), 2), np.nan, dtype=np.float32)
        for j, channel in enumerate(flat):
            if float(channel.max()) > 0.5:
                index = int(channel.argmax())
                keypoints[j] = (index % self.width, index // self.width)
        return keypoints

    def source_colours(self, pixels: torch.Tensor) -> dict:
        """Each limb stroke's median colour (0-255) under the source's own skeleton."""
        image = pixels.permute(1, 2, 0).numpy()
        colours = {}
        for name, paint in strokes(self.keypoints_of[self._key(pixels)], self.conv, self.scale).items():
            region = np.zeros((self.height, self.width), np.uint8)
            paint(region, 255)
            if region.any():
                colours[name] = np.median(image[region > 0], axis=0)
        return colours

    def __call__(self, sources: torch.Tensor, poses: torch.Tensor) -> torch.Tensor:
        drawn = []
        for source, pose in zip(sources, poses):
            colours = self.source_colours((source * 255.0).round().to(torch.uint8))
            canvas = self.background.copy()
            for name, paint in strokes(self._target_keypoints(pose), self.conv, self.scale).items():
                if name in colours:
                    region = np.zeros((self.height, self.width), np.uint8)
                    paint(region, 255)
                    canvas[region > 0] = colours[name]
            if self.blur > 0:  # a blurry dancer: the strokes' edges smoothed, as a regressing G draws them
                canvas = cv2.GaussianBlur(canvas, (0, 0), self.blur)
            drawn.append(torch.from_numpy(canvas / 255.0).permute(2, 0, 1).float())
        return torch.stack(drawn)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_encoder_and_data_args(p, "a streid checkpoint holding E (for the evaluation's E rank-1)")
    p.add_argument("--pairs", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--blur", type=float, default=0.0, help="Gaussian blur (sigma, pixels) of the painting; 0: sharp")
    p.add_argument("--out", default=None, help="write the scores as JSON here")
    a = p.parse_args()
    dataset = load_dataset(resolve_dataset_dir(a.data_dir, a.dataset))
    conv = convention(dataset.keypoints)
    size = (a.height, a.width)
    test = list(dict.fromkeys([*dataset.query, *dataset.gallery]))
    mean = mean_image(dataset.trainval or dataset.train, *size)
    painter = LimbPainter(load_test_frames(test, *size, conv), mean, a.blur)
    encoder, _ = load_encoder(a.encoder)
    report = evaluate_pose_transfer(encoder.eval(), painter, dataset, size, pairs=a.pairs, seed=a.seed, mean=mean)
    scores = report.scores
    better = min(scores["source"]["body_l1"], scores["mean"]["body_l1"])
    print(report.format().replace("G(s, pose t)", "limb painter"))
    print(f"limb painter body L1 / better reference: {scores['generator']['body_l1'] / better:.3f}")
    if a.out:
        write_json(Path(a.out), {"settings": vars(a), "drawing": "limb painter (not learnt: see the docstring)",
                                 "scores": scores, "l1_vs_better_reference": scores["generator"]["body_l1"] / better})


if __name__ == "__main__":
    main()
