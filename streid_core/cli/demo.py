"""`streid demo`: generate SynthDance, train the baseline and ST-ReIDNet, evaluate, write the
report (executed notebooks + index.html), and print where it is."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="the whole pipeline on SynthDance with a small CPU configuration, as a report",
        description="Generate the default SynthDance dataset (unless --data exists), run notebooks 01 (dataset), "
                    "02 (baseline), 03 (ST-ReIDNet) and 05 (evaluation) with a small CPU configuration, and write "
                    "OUT/index.html. A second run reuses the dataset, the trained models and the feature cache.",
    )
    parser.add_argument("--fresh", action="store_true",
                        help="start over: clear OUT, regenerate the dataset if streid generated it, retrain")
    parser.add_argument("--out", default="reports/demo", help="report folder (default: %(default)s)")
    parser.add_argument("--data", default="data/synthdance",
                        help="dataset folder, generated when missing (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda (default: %(default)s)")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    import sys

    from ..atomic import check_output_dir
    from ..reporting.demo import run_demo

    check_output_dir(args.out, "--out")

    index = run_demo(args.data, args.out, fresh=args.fresh, device=args.device, stream=sys.stdout)
    print(f"report: {index}")
    return 0
