"""`streid st-vs-baseline`: ST-ReIDNet against the baseline under one CPU budget, over seeds."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..experiments.st_vs_baseline import ComparisonBudget

    p = subparsers.add_parser(
        "st-vs-baseline",
        help="train the baseline and ST-ReIDNet with one budget over several seeds, and compare their encoders",
        description="Per seed: the small baseline (stage 0), G/Di/Dp around it (stage 1), then three fine-tunes of E "
                    "with the same number of steps: ST-ReIDNet, sparse-temporal sampling only, and the baseline's own "
                    "losses. Every encoder is scored on the test split (R1, mAP) and probed for pose. Writes "
                    "results.json, table.md and generated.png to --out; finished runs are reused, so an interrupted "
                    "comparison resumes.",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="seeds (default 1 2 3)")
    p.add_argument("--out", default="reports/st-vs-baseline", help="folder for the runs and the report (default %(default)s)")
    p.add_argument("--data-dir", default="data", help="folder holding the dataset (default %(default)s)")
    p.add_argument("-d", "--dataset", default="synthdance", help="dataset with poses and videos (default %(default)s)")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time, one torch thread each (default %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default %(default)s)")
    for f in dataclasses.fields(ComparisonBudget):
        kind = float if isinstance(f.default, float) else int if f.type in ("int", "int | None") else str
        p.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=f.default,
                       help=f"budget: {f.name.replace('_', ' ')} (default {f.default})")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..experiments.st_vs_baseline import ComparisonBudget, compare, render_markdown

    budget = ComparisonBudget(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ComparisonBudget)})
    comparison = compare(args.seeds, args.out, args.data_dir, args.dataset, budget, jobs=args.jobs, device=args.device,
                         log=lambda line: print(line, flush=True))  # progress shows up at once in a log file
    print(render_markdown(comparison), end="")
    print(f"wrote {Path(args.out) / 'results.json'}, table.md and generated.png")
    return 0
