"""`streid transfer-eval`: score a trained ST-ReIDNet's pose transfer against the real frames of the
test dancers (body L1, SSIM, pose and identity accuracy, E's rank-1 of the drawings); see
streid_core/evaluation/pose_transfer.py for the definitions."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from ._args import add_amp_arg, add_checkpoint_arg, add_dataset_args, add_device_arg, command_parser, dataset_root
from .transfer import AMP_HELP


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = command_parser(
        subparsers, "transfer-eval",
        help="pose transfer measured against the truth: drawn vs real frames of the test dancers",
        description="Sample (source s, target t) frame pairs of the same test dancer in the same video, draw s in "
                    "t's pose with the checkpoint's E and G, and compare with the real t: body-region L1, SSIM, "
                    "pose accuracy (vs the dancer's farthest other pose u), identity accuracy (vs another dancer "
                    "o of the video in t's pose) and E's rank-1 of the drawing among the real gallery, beside the "
                    "source-unchanged and mean-image references. Prints a markdown table; rates in [0, 1].")
    parser.add_argument("checkpoint_file", nargs="?", metavar="CHECKPOINT", help="the same as --checkpoint")
    add_checkpoint_arg(parser, "checkpoint.pth.tar of a `streid train` run (holds G)")
    add_dataset_args(parser, help="dataset with poses (e.g. data/synthdance)")
    parser.add_argument("--split", type=int, default=0, help="split index of splits.json (default 0)")
    parser.add_argument("--identities", choices=("test", "train"), default="test",
                        help="whose frames are drawn: the held-out test dancers (default), or the dancers G trained "
                             "on; far better scores on train than on test mean G memorised the training identities")
    parser.add_argument("--pairs", type=int, default=64, help="(s, t) pairs to draw (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pair sampling (default 0)")
    parser.add_argument("--min-pose-distance", type=float, default=0.05,
                        help="least pose change s -> t: mean joint distance over body height (default 0.05)")
    parser.add_argument("-b", "--batch-size", type=int, default=64, help="images per forward pass (default 64)")
    add_device_arg(parser)
    add_amp_arg(parser, help=AMP_HELP + "; the metrics are computed in float32")
    parser.add_argument("--out", help="write the metrics (and every pair) to this JSON file")
    parser.add_argument("--figure", help="write a PNG grid of example pairs: s | real t | G(s,pose t) | "
                                         "G(s,pose u) | G(o,pose t)")
    parser.add_argument("--figure-rows", type=int, default=6, help="pairs shown in --figure (default 6)")
    parser.set_defaults(run=run_transfer_eval)


def run_transfer_eval(args: argparse.Namespace) -> int:
    from ..atomic import atomic_file, check_output_file, write_json
    from ..errors import StreidError

    for flag, value, low in (("--pairs", args.pairs, 1), ("--batch-size", args.batch_size, 1),
                             ("--figure-rows", args.figure_rows, 1)):
        if value < low:
            raise StreidError(f"{flag} {value}: must be >= {low}")
    if not (math.isfinite(args.min_pose_distance) and args.min_pose_distance >= 0):
        raise StreidError(f"--min-pose-distance {args.min_pose_distance}: must be a finite number >= 0")
    if args.figure and Path(args.figure).suffix.lower() != ".png":
        raise StreidError(f"--figure {args.figure}: the figure is a PNG; give a path ending in .png")
    for flag, value in (("--out", args.out), ("--figure", args.figure)):
        if value:
            check_output_file(value, flag)  # before the drawing, not after it
    if bool(args.checkpoint_file) == bool(args.checkpoint):
        raise StreidError("give the checkpoint once: CHECKPOINT or --checkpoint FILE (a `streid train` run's "
                          "checkpoint.pth.tar)")
    checkpoint = Path(args.checkpoint_file or args.checkpoint)
    if not checkpoint.is_file():
        raise StreidError(f"{checkpoint}: checkpoint not found; pass the checkpoint.pth.tar of a `streid train` run")

    from ..data import load_dataset
    from ..evaluation.pose_transfer import evaluate_checkpoint, example_grid, on_training_dancers
    from ..models.pose_transfer import PoseTransfer

    root = dataset_root(args)
    model = PoseTransfer(checkpoint, args.device, args.amp)  # a checkpoint without G fails here, before the dataset is read
    dataset = load_dataset(root, split=args.split)
    if args.identities == "train":
        dataset = on_training_dancers(dataset)
    report = evaluate_checkpoint(model, dataset, pairs=args.pairs, seed=args.seed,
                                 min_pose_distance=args.min_pose_distance, batch_size=args.batch_size,
                                 device=args.device, examples=args.figure_rows if args.figure else 0)
    print(report.format())
    if args.out:
        write_json(args.out, {**report.to_dict(), "checkpoint": str(checkpoint), "dataset_root": str(root),
                              "split": args.split, "identities": args.identities})
        print(f"metrics written to {args.out}")
    if args.figure:
        with atomic_file(args.figure, "wb") as handle:
            example_grid(report).save(handle, format="PNG")
        print(f"figure written to {args.figure}")
    return 0
