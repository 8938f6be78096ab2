"""How fast G learns to draw, measured against the truth: G trained alone around a fixed encoder
(stage 1 with reconstruction only: masked L1 of the swap G(pose t, E(s)) against the real t, no
discriminators), evaluated every --eval-every iterations with the pose-transfer evaluation
(`streid_core.evaluation.pose_transfer`) on the held-out test dancers.

    .venv/bin/python benchmarks/transfer_learning_curve.py --encoder RUN/model_best.pth.tar \
        --data-dir data --dataset synthdance [--ngf 32] [--connect-layers 5] [--drop 0] \
        [--iterations 600] [--eval-every 150] [--batch 16] [--lr 2e-4] [--sigma S] [--mask-weight 9] [--out DIR]

E is fixed, so its features of the training frames (resized to the canvas, no augmentation) are
computed once; an iteration is then one G forward/backward on --batch (source, target) pairs of
one dancer in one video, the swap term of ST-ReIDNet's reconstruction loss. Prints one line per
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

from streid_core.atomic import write_json  # noqa: E402
from streid_core.data.dataset import load_dataset, resolve_dataset_dir  # noqa: E402
from streid_core.data.keypoints import convention  # noqa: E402
from streid_core.data.pose import canvas_sigma, pose_maps, skeleton_mask  # noqa: E402
from streid_core.evaluation.pose_transfer import (GeneratorDraw, evaluate_pose_transfer, example_grid,  # noqa: E402
                                                  load_test_frames, normalise)
from streid_core.losses import masked_l1_loss  # noqa: E402
from streid_core.models.generator import PoseGenerator  # noqa: E402
from streid_core.models.loading import load_encoder  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--encoder", required=True, help="a streid checkpoint holding E (e.g. a baseline's model_best.pth.tar)")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--dataset", default="synthdance")
    p.add_argument("--height", type=int, default=128)
    p.add_argument("--width", type=int, default=64)
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
    encoder, _ = load_encoder(a.encoder)
    encoder.eval()
    with torch.no_grad():
        features = torch.cat([encoder(normalise(frames.images(slice(i, i + 256)))) for i in range(0, len(train), 256)])
    poses = torch.from_numpy(np.stack([pose_maps(k, h, w, sigma) for k in frames.keypoints]))
    masks = torch.from_numpy(np.stack([skeleton_mask(k, h, w, conv) for k in frames.keypoints]))
    video_of = {pid: name for name, pids in (dataset.videos or {}).items() for pid in pids}
    groups: dict[tuple, list[int]] = {}
    for i, record in enumerate(train):
        groups.setdefault((record.pid, video_of.get(record.pid)), []).append(i)
    dancers = [g for g in groups.values() if len(g) > 1]

    generator = PoseGenerator(conv.num_joints, features.shape[1], image_size=(h, w), connect_layers=a.connect_layers,
                              dropout=a.drop, norm=a.norm, ngf=a.ngf)
    optimizer = torch.optim.Adam(generator.parameters(), lr=a.lr, betas=(0.5, 0.999))
    rng = np.random.default_rng(a.seed)
    curve, spent = [], 0.0
    print(f"{len(train)} training frames, {len(dancers)} dancers; G {sum(x.numel() for x in generator.parameters()) / 1e6:.1f} M "
          f"parameters; sigma {sigma}", flush=True)
    for it in range(1, a.iterations + 1):
        start = time.perf_counter()
        pairs = [rng.choice(dancers[k], size=2, replace=False) for k in rng.integers(len(dancers), size=a.batch)]
        source, target = [int(s) for s, _ in pairs], [int(t) for _, t in pairs]
        drawn = generator(poses[target], features[source])
        loss = masked_l1_loss(drawn, frames.images(target) * 2 - 1, masks[target], alpha=a.mask_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        spent += time.perf_counter() - start
        if it % a.eval_every == 0 or it == a.iterations:
            report = evaluate_pose_transfer(encoder, GeneratorDraw(encoder, generator), dataset, (h, w), pairs=a.pairs,
                                            seed=0)
            scores = report.scores
            g, better = scores["generator"], min(scores["source"]["body_l1"], scores["mean"]["body_l1"])
            row = {"iteration": it, "train_seconds": round(spent, 1), "seconds_per_iteration": round(spent / it, 3),
                   "body_l1": round(g["body_l1"], 4), "l1_vs_better_reference": round(g["body_l1"] / better, 3),
                   "pose_accuracy": g["pose_accuracy"], "identity_accuracy": g["identity_accuracy"], "rank1": g["rank1"]}
            print(json.dumps(row), flush=True)
            curve.append(row)
            example_grid(report).save(out / f"grid_{it}.png")
            generator.train()
    write_json(out / "curve.json", {"settings": vars(a) | {"sigma": sigma}, "curve": curve,
                                    "references": {k: scores[k] for k in ("source", "mean")}})


if __name__ == "__main__":
    main()
