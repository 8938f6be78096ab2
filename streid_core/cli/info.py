"""`streid info`: what a dataset folder holds, and (with --check) whether every file in it is sound."""
from __future__ import annotations

import argparse

from ._args import add_dataset_args, command_parser, dataset_root


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = command_parser(
        subparsers, "info",
        help="summarise a dataset folder (layout, splits, cameras, poses, videos); --check verifies every file",
        description=(
            "Print a dataset's layout, evaluation preset, keypoint convention and pose coverage, cameras, "
            "videos, and images/identities per subset. --check also decodes every image and parses every "
            "pose file (slow on full datasets)."
        ),
    )
    add_dataset_args(parser, positional=True)
    parser.add_argument("--split", type=int, default=0, help="split index in splits.json (default 0)")
    parser.add_argument("--check", action="store_true", help="decode every image and parse every pose file")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from ..data.dataset import summarize, validate

    root = dataset_root(args)
    summary = summarize(root, split=args.split)
    if args.check:
        result = validate(root)
        summary += f"\n  check       OK: {result.images:,} images decoded, {result.poses:,} pose files parsed"
    print(summary)
    return 0
