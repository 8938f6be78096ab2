"""How much of a new dancer's limb colours a fixed E tells, by where G would read it: E's pooled
descriptor, or one stage of E's trunk averaged under each limb stroke of the source's own skeleton
(G's `--paint-from source-limbs --paint-layer N`).

For every stroke of the skeleton mask (limb lines and joint discs) a ridge regression maps the
reading to the median colour of the source's pixels under that stroke. It is fitted on training
frames (the ridge penalty chosen on a fifth of them held out) and predicts the colours of the test
dancers' frames. The predicted colours are painted as `transfer_ceiling.py`'s limb painter paints
the true ones (t's strokes over the mean training image, blurred), and scored by
`streid_core.evaluation.pose_transfer` exactly as G is. R^2 is over all strokes' colours of the
test frames. No network is trained: this measures E, not G.

    .venv/bin/python benchmarks/transfer_part_features.py --data-dir data \
        --encoder checkpoints/base/model_best.pth.tar [--train-frames 1600] [--pairs 256] \
        [--out reports/transfer-curve/painting/part_features_baselineE.json]
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from transfer_ceiling import LimbPainter, strokes  # noqa: E402
from _transfer_args import add_encoder_and_data_args  # noqa: E402
from streid_core.atomic import write_json  # noqa: E402
from streid_core.data.dataset import load_dataset, resolve_dataset_dir  # noqa: E402
from streid_core.data.keypoints import convention  # noqa: E402
from streid_core.data.pose import mask_scale  # noqa: E402
from streid_core.evaluation.pose_transfer import (  # noqa: E402
    evaluate_pose_transfer,
    load_test_frames,
    mean_image,
    normalise,
    records_to_draw,
)
from streid_core.models.loading import load_encoder  # noqa: E402

STAGES = (1, 2, 3, 4)
PENALTIES = (1e-3, 1e-2, 1e-1, 1.0)  # times the number of frames, on standardised readings


def stroke_regions(frames, conv) -> tuple[list[dict], list[dict]]:
    """Per frame: {stroke: (H, W) float mask} and {stroke: median RGB in [0, 1] under it}."""
    height, width = frames.size
    scale = mask_scale(height, width)
    masks, colours = [], []
    for i in range(len(frames.records)):
        image = frames.pixels[i].permute(1, 2, 0).numpy()
        masks.append({}), colours.append({})
        for name, paint in strokes(frames.keypoints[i], conv, scale).items():
            region = np.zeros((height, width), np.uint8)
            paint(region, 255)
            if region.any():
                masks[-1][name] = torch.from_numpy(region > 0).float()
                colours[-1][name] = np.median(image[region > 0], axis=0) / 255.0
    return masks, colours


@torch.no_grad()
def readings(encoder, frames, masks, batch: int = 64) -> dict:
    """{"descriptor": (N, D) array, stage: [ {stroke: (C,) array} per frame ]}."""
    descriptors, parts = [], {stage: [] for stage in STAGES}
    for start in range(0, len(frames.records), batch):
        x = normalise(frames.images(slice(start, start + batch)))
        maps = {}
        for stage in STAGES:
            descriptor, maps[stage] = encoder(x, map_layer=stage)
        descriptors.append(descriptor.numpy())
        for k in range(len(x)):
            for stage in STAGES:
                feature_map = maps[stage][k]
                h, w = feature_map.shape[1:]
                row = {}
                for name, mask in masks[start + k].items():
                    weight = F.adaptive_avg_pool2d(mask[None, None], (h, w))[0, 0]  # as LimbPainting.part_features
                    row[name] = ((feature_map * weight).sum((1, 2)) / weight.sum()).numpy()
                parts[stage].append(row)
    return {"descriptor": np.concatenate(descriptors), **parts}


def ridge(x: np.ndarray, y: np.ndarray, penalty: float):
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xs, ym = (x - mu) / sd, y.mean(0)
    if x.shape[1] > len(x):  # the dual form: fewer frames than features
        coef = xs.T @ np.linalg.solve(xs @ xs.T + penalty * len(x) * np.eye(len(x)), y - ym)
    else:
        coef = np.linalg.solve(xs.T @ xs + penalty * len(x) * np.eye(x.shape[1]), xs.T @ (y - ym))
    return lambda z: ((z - mu) / sd) @ coef + ym


def predict_colours(reading_train, reading_test, colours_train, colours_test) -> tuple[list[dict], float]:
    """Each stroke's ridge map, fitted on the training frames; the test frames' colours and R^2."""
    names = sorted({name for row in colours_train for name in row}, key=str)
    predicted = [dict() for _ in colours_test]
    residual = total = 0.0
    for name in names:
        fit_rows = [i for i, row in enumerate(colours_train) if name in row]
        test_rows = [i for i, row in enumerate(colours_test) if name in row]
        if len(fit_rows) < 50 or not test_rows:
            continue
        x = np.stack([reading_train(i, name) for i in fit_rows])
        y = np.stack([colours_train[i][name] for i in fit_rows])
        cut = int(0.8 * len(fit_rows))
        penalty = min(PENALTIES, key=lambda p: ((ridge(x[:cut], y[:cut], p)(x[cut:]) - y[cut:]) ** 2).mean())
        guess = np.clip(ridge(x, y, penalty)(np.stack([reading_test(i, name) for i in test_rows])), 0.0, 1.0)
        truth = np.stack([colours_test[i][name] for i in test_rows])
        residual += ((guess - truth) ** 2).sum()
        total += ((truth - truth.mean(0)) ** 2).sum()
        for j, i in enumerate(test_rows):
            predicted[i][name] = guess[j]
    return predicted, 1.0 - residual / total


class PredictedColourPainter(LimbPainter):
    """The limb painter with each source's predicted stroke colours instead of its true ones."""

    def __init__(self, frames, mean, colours: list[dict], blur: float) -> None:
        super().__init__(frames, mean, blur)
        self.colours_of = {self._key(frames.pixels[i]): colours[i] for i in range(len(colours))}

    def source_colours(self, pixels: torch.Tensor) -> dict:
        return {name: colour * 255.0 for name, colour in self.colours_of[self._key(pixels)].items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_encoder_and_data_args(p, "a streid checkpoint holding E (e.g. a baseline's model_best.pth.tar)")
    p.add_argument("--train-frames", type=int, default=1600, help="training frames the ridge maps are fitted on")
    p.add_argument("--pairs", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--blur", type=float, default=1.5, help="Gaussian blur (sigma, pixels) of the painting")
    p.add_argument("--out", default=None, help="write the scores as JSON here")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    dataset = load_dataset(resolve_dataset_dir(a.data_dir, a.dataset))
    conv = convention(dataset.keypoints)
    size = (a.height, a.width)
    train = list(dataset.trainval or dataset.train)
    random.Random(a.seed).shuffle(train)
    train_frames = load_test_frames(train[: a.train_frames], *size, conv)
    test_frames = load_test_frames(records_to_draw(dataset), *size, conv)
    encoder, _ = load_encoder(a.encoder)
    encoder.eval()
    masks_train, colours_train = stroke_regions(train_frames, conv)
    masks_test, colours_test = stroke_regions(test_frames, conv)
    read_train = readings(encoder, train_frames, masks_train)
    read_test = readings(encoder, test_frames, masks_test)
    mean = mean_image(dataset.trainval or dataset.train, *size)

    variants = {"descriptor": (lambda i, name: read_train["descriptor"][i], lambda i, name: read_test["descriptor"][i])}
    for stage in STAGES:
        variants[f"stage {stage} under the source's strokes"] = (lambda i, name, s=stage: read_train[s][i][name],
                                                                  lambda i, name, s=stage: read_test[s][i][name])
    rows = {}
    for name, (reading_train, reading_test) in variants.items():
        colours, r2 = predict_colours(reading_train, reading_test, colours_train, colours_test)
        rows[name] = (colours, r2)
    rows["true colours (the ceiling)"] = (colours_test, 1.0)
    results = {}
    for name, (colours, r2) in rows.items():
        painter = PredictedColourPainter(test_frames, mean, colours, a.blur)
        scores = evaluate_pose_transfer(encoder, painter, dataset, size, pairs=a.pairs, seed=a.seed, mean=mean).scores
        better = min(scores["source"]["body_l1"], scores["mean"]["body_l1"])
        results[name] = {"colour_r2": r2, "l1_vs_better_reference": scores["generator"]["body_l1"] / better,
                         "pose_accuracy": scores["generator"]["pose_accuracy"],
                         "identity_accuracy": scores["generator"]["identity_accuracy"]}
        print(f"{name:40s} R^2 {r2:.2f}  L1/better {results[name]['l1_vs_better_reference']:.3f}  "
              f"pose {results[name]['pose_accuracy']:.3f}  identity {results[name]['identity_accuracy']:.3f}", flush=True)
    if a.out:
        write_json(Path(a.out), {"settings": vars(a), "drawing": "ridge-predicted stroke colours, painted (docstring)",
                                 "results": results})


if __name__ == "__main__":
    main()
