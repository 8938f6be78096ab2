"""`streid demo`: generate SynthDance, train the baseline and ST-ReIDNet, evaluate, write the
report (executed notebooks + index.html), and print where it is."""
from __future__ import annotations

import argparse

from ._args import add_dataset_args, add_device_arg, command_parser, dataset_root


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = command_parser(
        subparsers, "demo", help="the whole pipeline on SynthDance with a small CPU configuration, as a report",
        description="Generate the default SynthDance dataset (unless -d exists), run notebooks 01 (dataset), "
                    "02 (baseline), 03 (ST-ReIDNet) and 05 (evaluation) with a small CPU configuration, and write "
                    "OUT/index.html. A second run reuses the dataset, the trained models and the feature cache.",
    )
    parser.add_argument("--fresh", action="store_true",
                        help="start over: clear OUT, regenerate the dataset if streid generated it, retrain")
    parser.add_argument("--out", default="reports/demo", help="report folder")
    add_dataset_args(parser, default="synthdance", help="dataset, generated when missing")
    parser.add_argument("--data", dest="dataset", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # old: -d DIR
    add_device_arg(parser)
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    import sys

    from ..atomic import check_output_dir
    from ..reporting.demo import run_demo

    check_output_dir(args.out, "--out")
    data = dataset_root(args, must_exist=False)
    index = run_demo(data, args.out, fresh=args.fresh, device=args.device, stream=sys.stdout)
    print(f"report: {index}")
    return 0
