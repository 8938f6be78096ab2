"""`streid st-vs-baseline`: ST-ReIDNet against the baseline under one CPU budget, over seeds."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ._args import add_amp_arg, add_dataset_args, add_device_arg, command_parser


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..experiments.st_vs_baseline import ComparisonBudget

    p = command_parser(
        subparsers, "st-vs-baseline",
        help="train the baseline and ST-ReIDNet with one budget over several seeds, and compare their encoders",
        description="Per seed: the small baseline (stage 0), G/Di/Dp around it (stage 1), then three fine-tunes of E "
                    "with the same number of steps: ST-ReIDNet, sparse-temporal sampling only, and the baseline's own "
                    "losses. Every encoder is scored on the test split (R1, mAP) and probed for pose. Writes "
                    "results.json, table.md and generated.png to --out; finished runs are reused, so an interrupted "
                    "comparison resumes.",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="seeds (default 1 2 3)")
    p.add_argument("--out", default="reports/st-vs-baseline", help="folder for the runs and the report (default %(default)s)")
    add_dataset_args(p, default="synthdance", help="dataset with poses and videos")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time, one torch thread each (default %(default)s)")
    add_device_arg(p)
    for f in dataclasses.fields(ComparisonBudget):
        if f.name == "amp":
            add_amp_arg(p, default=f.default, help="budget: mixed precision of every run, bf16 (bare --amp) or fp16 (CUDA)")
            continue
        if isinstance(f.default, bool):
            p.add_argument(f"--{f.name.replace('_', '-')}", action=argparse.BooleanOptionalAction, default=f.default,
                           help=f"budget: {f.name.replace('_', ' ')} (default %(default)s)")
            continue
        kind = float if isinstance(f.default, float) else int if f.type in ("int", "int | None") else str
        p.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=f.default,
                       help=f"budget: {f.name.replace('_', ' ')} (default {f.default})")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..experiments.st_vs_baseline import ComparisonBudget, compare, render_markdown

    budget = ComparisonBudget(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ComparisonBudget)})
    data_dir, name = args.data_dir, Path(args.dataset)
    if len(name.parts) > 1:  # a dataset folder rather than a name in --data-dir
        data_dir, name = name.parent, name.name
    comparison = compare(args.seeds, args.out, data_dir, str(name), budget, jobs=args.jobs, device=args.device,
                         log=lambda line: print(line, flush=True))  # progress shows up at once in a log file
    print(render_markdown(comparison), end="")
    print(f"wrote {Path(args.out) / 'results.json'}, table.md and generated.png")
    return 0
