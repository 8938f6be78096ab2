"""How fast G learns to draw, measured against the truth: G trained alone around a fixed encoder
(stage 1 with reconstruction only: masked L1 of the swap G(pose t, E(s)) against the real t, no
discriminators), evaluated every --eval-every iterations with the pose-transfer evaluation
(`streid_core.evaluation.pose_transfer`) on the held-out test dancers.

    .venv/bin/python benchmarks/transfer_learning_curve.py --encoder RUN/model_best.pth.tar \
        --data-dir data --dataset synthdance [--ngf 32] [--connect-layers 5] [--drop 0] \
        [--iterations 600] [--eval-every 150] [--batch 16] [--lr 2e-4] [--sigma S] [--mask-weight 9] \
        [--paint-limbs [--lambda-paint 1]] [--encoder-lr 1e-4] [--hue-augment] [--feature-stripes 4] [--out DIR]

E is fixed by default, so its features of the training frames (resized to the canvas, no
augmentation) are computed once; an iteration is then one G forward/backward on --batch (source,
target) pairs of one dancer in one video, the swap term of ST-ReIDNet's reconstruction loss.
--paint-limbs gives G the limb painting (streid_core/models/limb_painting.py), --lambda-paint adds
its own L1 (weighted against the masked L1 of 1), and each evaluation then also scores the painting
alone over the mean image ("painting"): how much of the person E's feature tells a linear map.
--encoder-lr trains E too (Adam, eval mode, G's losses only: no re-ID losses), on each batch's sources.
--hue-augment rotates each pair's source and target by one random hue (E then runs on every batch).
--feature-stripes N gives G E's map pooled in N bands instead of its descriptor. Prints one line per
evaluation (seconds of training so far, body L1 and its ratio to the better trivial reference,
pose and identity accuracy, E rank-1) and writes DIR/curve.json and DIR/grid_<iteration>.png.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _transfer_args import add_encoder_and_data_args  # noqa: E402
from streid_core.atomic import write_json  # noqa: E402
from streid_core.data.dataset import load_dataset, resolve_dataset_dir  # noqa: E402
from streid_core.data.hue_rotation import rotate_hue  # noqa: E402
from streid_core.data.keypoints import convention  # noqa: E402
from streid_core.data.pose import canvas_sigma, pose_maps, skeleton_mask  # noqa: E402
from streid_core.evaluation.pose_transfer import (GeneratorDraw, evaluate_pose_transfer, example_grid,  # noqa: E402
                                                  load_test_frames, mean_image, normalise)
from streid_core.losses import masked_l1_loss, painting_l1_loss  # noqa: E402
from streid_core.models.generator import PoseGenerator  # noqa: E402
from streid_core.models.loading import load_encoder  # noqa: E402


class StripeFeatures(torch.nn.Module):
    """E's last feature map pooled in `stripes` horizontal bands, concatenated: the descriptor's
    global pool kept apart by height (shirt above trousers), for --feature-stripes."""

    def __init__(self, encoder: torch.nn.Module, stripes: int) -> None:
        super().__init__()
        self.encoder, self.stripes = encoder, stripes

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(self.encoder.trunk(images), (self.stripes, 1)).flatten(1)


class PaintingDraw:
    """The limb painting alone, over the mean image: the colours E's feature gives each stroke."""

    def __init__(self, encoder, generator, background) -> None:
        self.encoder, self.generator, self.background = encoder, generator, background

    @torch.no_grad()
    def __call__(self, sources, poses):
        painting = self.generator.limb_painting(poses, self.encoder(normalise(sources)))
        cover = painting[:, 3:]
        return (painting[:, :3] * cover + self.background * (1 - cover) + 1) / 2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_encoder_and_data_args(p, "a streid checkpoint holding E (e.g. a baseline's model_best.pth.tar)")
    p.add_argument("--ngf", type=int, default=32)
    p.add_argument("--connect-layers", type=int, default=5)
    p.add_argument("--drop", type=float, default=0.0)
    p.add_argument("--norm", default="batch")
    p.add_argument("--sigma", type=float, default=None, help="heat-map sigma (default: scaled with the canvas)")
    p.add_argument("--iterations", type=int, default=600)
    p.add_argument("--eval-every", type=int, default=150)
    p.add_argument("--pairs", type=int, default=64, help="evaluation pairs")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--mask-weight", type=float, default=9.0,
                   help="alpha of the masked L1: (L1 + alpha L1 in the body mask) / (1 + alpha); 9 as in training")
    p.add_argument("--lr", type=float, default=2e-4, help="G's Adam learning rate (betas 0.5, 0.999 as in training)")
    p.add_argument("--paint-limbs", action="store_true", help="G with the limb painting")
    p.add_argument("--lambda-paint", type=float, default=0.0, help="weight of the painting's own L1 (needs --paint-limbs)")
    p.add_argument("--encoder-lr", type=float, default=0.0, help="> 0: E trained too, Adam at this rate")
    p.add_argument("--hue-augment", action="store_true",
                   help="rotate each pair's source and target by the same random hue (streid_core/data/hue_rotation.py)")
    p.add_argument("--feature-stripes", type=int, default=1,
                   help="> 1: G reads E's feature map pooled in this many horizontal stripes (concatenated) instead "
                        "of E's descriptor, the global pool of the same map")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="reports/transfer-curve")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    h, w = a.height, a.width
    sigma = canvas_sigma(h, w) if a.sigma is None else a.sigma

    dataset = load_dataset(resolve_dataset_dir(a.data_dir, a.dataset))
    conv = convention(dataset.keypoints)
    train = dataset.trainval or dataset.train
    frames = load_test_frames(train, h, w, conv)
    reid_encoder, _ = load_encoder(a.encoder)
    reid_encoder.eval()
    # what G reads: E's descriptor, or its map in stripes (E's rank-1 is always of the descriptor)
    encoder = StripeFeatures(reid_encoder, a.feature_stripes) if a.feature_stripes > 1 else reid_encoder
    with torch.no_grad():
        features = torch.cat([encoder(normalise(frames.images(slice(i, i + 256)))) for i in range(0, len(train), 256)])
    poses = torch.from_numpy(np.stack([pose_maps(k, h, w, sigma) for k in frames.keypoints]))
    masks = torch.from_numpy(np.stack([skeleton_mask(k, h, w, conv) for k in frames.keypoints]))
    video_of = {pid: name for name, pids in (dataset.videos or {}).items() for pid in pids}
    groups: dict[tuple, list[int]] = {}
    for i, record in enumerate(train):
        groups.setdefault((record.pid, video_of.get(record.pid)), []).append(i)
    dancers = [g for g in groups.values() if len(g) > 1]

    if a.lambda_paint > 0 and not a.paint_limbs:
        p.error("--lambda-paint needs --paint-limbs")
    generator = PoseGenerator(conv.num_joints, features.shape[1], image_size=(h, w), connect_layers=a.connect_layers,
                              dropout=a.drop, norm=a.norm, ngf=a.ngf, paint_limbs=conv if a.paint_limbs else None)
    optimizer = torch.optim.Adam(generator.parameters(), lr=a.lr, betas=(0.5, 0.999))
    encoder_optimizer = (torch.optim.Adam(encoder.parameters(), lr=a.encoder_lr, betas=(0.5, 0.999))
                         if a.encoder_lr > 0 else None)
    background = mean_image(train, h, w) * 2 - 1  # where the painting has no stroke
    rng = np.random.default_rng(a.seed)
    curve, spent = [], 0.0
    print(f"{len(train)} training frames, {len(dancers)} dancers; G {sum(x.numel() for x in generator.parameters()) / 1e6:.1f} M "
          f"parameters; sigma {sigma}", flush=True)
    for it in range(1, a.iterations + 1):
        start = time.perf_counter()
        pairs = [rng.choice(dancers[k], size=2, replace=False) for k in rng.integers(len(dancers), size=a.batch)]
        source, target = [int(s) for s, _ in pairs], [int(t) for _, t in pairs]
        source_images, target_images = frames.images(source), frames.images(target)
        if a.hue_augment:
            angles = torch.rand(len(pairs)) * (2 * torch.pi)
            source_images, target_images = rotate_hue(source_images, angles), rotate_hue(target_images, angles)
        if encoder_optimizer or a.hue_augment:  # E sees this batch's (turned) sources; a graph only if it learns
            with torch.set_grad_enabled(encoder_optimizer is not None):
                feature = encoder(normalise(source_images))
        else:
            feature = features[source]
        real = target_images * 2 - 1
        if a.paint_limbs:
            drawn, painting = generator(poses[target], feature, with_painting=True)
        else:
            drawn, painting = generator(poses[target], feature), None
        loss = masked_l1_loss(drawn, real, masks[target], alpha=a.mask_weight)
        if a.lambda_paint > 0:
            loss = loss + a.lambda_paint * painting_l1_loss(painting, real)
        optimizer.zero_grad(set_to_none=True)
        if encoder_optimizer:
            encoder_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if encoder_optimizer:
            encoder_optimizer.step()
        spent += time.perf_counter() - start
        if it % a.eval_every == 0 or it == a.iterations:
            report = evaluate_pose_transfer(reid_encoder, GeneratorDraw(encoder, generator), dataset, (h, w), pairs=a.pairs,
                                            seed=0)
            scores = report.scores
            g, better = scores["generator"], min(scores["source"]["body_l1"], scores["mean"]["body_l1"])
            row = {"iteration": it, "train_seconds": round(spent, 1), "seconds_per_iteration": round(spent / it, 3),
                   "body_l1": round(g["body_l1"], 4), "l1_vs_better_reference": round(g["body_l1"] / better, 3),
                   "pose_accuracy": g["pose_accuracy"], "identity_accuracy": g["identity_accuracy"], "rank1": g["rank1"]}
            if a.paint_limbs:
                painted = evaluate_pose_transfer(reid_encoder, PaintingDraw(encoder, generator, background), dataset, (h, w),
                                                 pairs=a.pairs, seed=0).scores["generator"]
                row["painting"] = {k: round(painted[k], 4) for k in ("body_l1", "pose_accuracy", "identity_accuracy")}
            print(json.dumps(row), flush=True)
            curve.append(row)
            example_grid(report).save(out / f"grid_{it}.png")
            generator.train()
    write_json(out / "curve.json", {"settings": vars(a) | {"sigma": sigma}, "curve": curve,
                                    "references": {k: scores[k] for k in ("source", "mean")}})


if __name__ == "__main__":
    main()
