"""`streid track-bench`: motion-only vs re-ID-assisted tracking on a folder of MOTChallenge sequences."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ._args import add_amp_arg, add_checkpoint_arg, add_device_arg, command_parser, parse_named_pairs
from .track import AMP_HELP


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..tracking.config import TrackerConfig

    p = command_parser(
        subparsers, "track-bench",
        help="track every sequence by motion only and with each re-ID checkpoint, and tabulate HOTA/IDF1/IDSW",
        description="Run the tracker over every <seq> of --videos (img1/, det/det.txt, gt/gt.txt, seqinfo.ini, as "
                    "`streid synth-video` writes them) by motion alone and with the appearance of each --checkpoint, "
                    "with the same settings, then score them: results/<tracker>/<seq>.txt, table.json (scores and "
                    "every ID switch) and table.md in --out.",
    )
    p.add_argument("--videos", required=True, help="folder of MOTChallenge sequences")
    add_checkpoint_arg(p, "a tracker name and its re-ID checkpoint, e.g. st-reidnet=logs/model_best.pth.tar; "
                          "several may follow one flag or each have their own (motion-only is always included)",
                       metavar="NAME=FILE", action="extend", nargs="+", default=[])
    p.add_argument("--out", required=True, help="folder for results/, table.json and table.md")
    add_device_arg(p, " for the re-ID models")
    add_amp_arg(p, help=AMP_HELP)
    p.add_argument("--no-trackeval", action="store_true", help="use only streid's own CLEAR-MOT/IDF1 scorer (no HOTA)")
    for field in dataclasses.fields(TrackerConfig):
        p.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default), default=field.default,
                       help=f"tracker setting, as in `streid track` (default {field.default})")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_output_dir
    from ..tracking.benchmark import run_benchmark
    from ..tracking.comparison import render_markdown
    from ..tracking.config import TrackerConfig

    config = TrackerConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrackerConfig)})
    check_output_dir(args.out, "--out")
    comparison = run_benchmark(args.videos, parse_named_pairs(args.checkpoint, "--checkpoint", "PATH", "baseline=logs/baseline/model_best.pth.tar"), args.out, config=config,
                               device=args.device, use_trackeval=not args.no_trackeval, progress=True,
                               amp=args.amp)
    print(render_markdown(comparison), end="")
    out = Path(args.out)
    print(f"wrote {out / 'table.json'}, {out / 'table.md'} and results/ in {out}")
    return 0
