"""Where identity accuracy is lost: in E's description of the source, or in G's decoding of it.

The evaluation (`streid_core.evaluation.pose_transfer`) draws G(pose t, E(s)) and compares it with
G(pose t, E(o)), o another dancer of the video near s's frame. This script scores the same G on the
same pairs with other appearance inputs:

- "E(s) vs E(o)": the evaluation's identity accuracy;
- "E(t) vs E(o_t)": the target frame's own feature against the other dancer's frame nearest in time
  to t. No pose change is left for E's feature to hide: if identity accuracy stays low here, G
  cannot decode the dancer's appearance from E's feature even of the very frame it must draw;
- feature distances: mean |E(s) - E(t)| (same dancer, other frame) and |E(s) - E(o)| (another
  dancer at about the same moment of the same choreography). A ratio near 1 means E's pre-BN
  feature, which is all G sees of the person, says as much about the frame as about the dancer.

Run it on the test dancers and on the dancers G trained on (`--identities train`, the training
frames taken as query and gallery as in `streid transfer-eval --identities train`):

    .venv/bin/python benchmarks/transfer_identity_sources.py RUN/checkpoint.pth.tar --data-dir data \\
        [--identities train] [--pairs 256] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streid_core.atomic import write_json  # noqa: E402
from streid_core.data.dataset import load_dataset, resolve_dataset_dir  # noqa: E402
from streid_core.errors import StreidError  # noqa: E402
from streid_core.evaluation import pose_transfer as pt  # noqa: E402
from streid_core.models.pose_transfer import PoseTransfer  # noqa: E402

BATCH = 64


def nearest_frame(frames: pt.TestFrames, dancer: tuple[int, str], frame: int) -> int:
    """The index of `dancer`'s (pid, video) test frame nearest in time to `frame`."""
    members = [i for i, r in enumerate(frames.records) if (r.pid, r.video) == dancer]
    return min(members, key=lambda i: (abs(frames.records[i].frame - frame), i))


def measure(checkpoint: Path, data_dir: Path, dataset_name: str, identities: str, pairs: int, seed: int) -> dict:
    model = PoseTransfer(checkpoint)
    dataset = load_dataset(resolve_dataset_dir(data_dir, dataset_name))
    if identities == "train":
        dataset = pt.on_training_dancers(dataset)
    records = pt.records_to_draw(dataset)
    frames = pt.load_test_frames(records, *model.image_size, dataset.keypoints)
    chosen = pt.sample_pairs(frames, pairs, seed)
    draw = pt.generator_draw(model.encoder, model.generator)
    s, t, o = ([getattr(p, k) for p in chosen] for k in ("source", "target", "other_dancer"))
    o_t = [nearest_frame(frames, (records[a].pid, records[a].video), records[b].frame) for a, b in zip(o, t)]
    with torch.inference_mode():
        feats = torch.cat([model.encoder(pt.normalise(frames.images(list(range(i, min(i + BATCH, len(records)))))))
                           for i in range(0, len(records), BATCH)]).float()
        pose_t = frames.poses(t)
        real, mask = frames.images(t), frames.masks(t)

        def l1_in_pose_t(sources: list[int]) -> torch.Tensor:
            drawn = torch.cat([draw.from_features(feats[sources[i:i + BATCH]], pose_t[i:i + BATCH])
                               for i in range(0, len(sources), BATCH)])
            return pt.body_l1(drawn, real, mask)

        l1 = {name: l1_in_pose_t(idx) for name, idx in (("s", s), ("t", t), ("o", o), ("o_t", o_t))}

    def distance(a: list[int], b: list[int]) -> float:
        return float((feats[a] - feats[b]).norm(dim=1).mean())

    return {
        "checkpoint": str(checkpoint), "identities": identities, "pairs": len(chosen), "seed": seed,
        "identity_accuracy": {
            "E(s) vs E(o)": float(np.mean(pt.closer_score(l1["s"], l1["o"]))),
            "E(t) vs E(o_t)": float(np.mean(pt.closer_score(l1["t"], l1["o_t"]))),
        },
        "body_l1": {"G(pose t, E(s))": float(l1["s"].mean()), "G(pose t, E(t))": float(l1["t"].mean())},
        "feature_distance": {"same dancer, other frame |E(s)-E(t)|": distance(s, t),
                             "other dancer, same moment |E(s)-E(o)|": distance(s, o)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--dataset", default="synthdance")
    parser.add_argument("--identities", choices=("test", "train"), default="test")
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        result = measure(args.checkpoint, args.data_dir, args.dataset, args.identities, args.pairs, args.seed)
    except StreidError as exc:  # a missing file or a dataset without poses: one line, as the CLI says it
        print(f"transfer_identity_sources: {exc}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(result, indent=2))
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
