"""`streid info`: what a dataset folder holds, and (with --check) whether every file in it is sound."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info",
        help="summarise a dataset folder (layout, splits, cameras, poses, videos); --check verifies every file",
        description=(
            "Print a dataset's layout, evaluation preset, keypoint convention and pose coverage, cameras, "
            "videos, and images/identities per subset. --check also decodes every image and parses every "
            "pose file (slow on full datasets)."
        ),
    )
    parser.add_argument("dataset", help="dataset folder, or a dataset name looked up under --data-dir")
    parser.add_argument("--data-dir", type=Path, default=Path("data"),
                        help="where dataset names are looked up (default: data)")
    parser.add_argument("--split", type=int, default=0, help="split index in splits.json (default 0)")
    parser.add_argument("--check", action="store_true", help="decode every image and parse every pose file")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from ..data.dataset import resolve_dataset_dir, summarize, validate

    root = Path(args.dataset)
    if not root.is_dir() and len(root.parts) == 1:  # a bare name such as "DanceReid"
        root = resolve_dataset_dir(args.data_dir, args.dataset)
    summary = summarize(root, split=args.split)
    if args.check:
        result = validate(root)
        summary += f"\n  check       OK: {result.images:,} images decoded, {result.poses:,} pose files parsed"
    print(summary)
    return 0
