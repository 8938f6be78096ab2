"""`streid prepare`: convert raw Market-1501 / DukeMTMC-reID or your own images into a dataset
folder that every streid command reads."""
from __future__ import annotations

import argparse
from pathlib import Path

from ._args import command_parser

_FOLDER_HELP = """\
Your own images -> a streid dataset (open-reid layout).

Input: --src DIR with one sub-folder per identity (folder name = identity), or --csv FILE with
the header path,pid[,camid][,frame][,video] (paths relative to the CSV's folder).
Whole identities are split into trainval and test (query = gallery = the test identities) by a
seeded shuffle; --test-fraction sets the share of test identities.

Camera ids are optional. Without them (folder input, or a CSV without camid) every image gets
its own camera id, so evaluation excludes only the query image itself and any other image of the
same identity is a correct match. Give camids when you have them: evaluation then ignores
same-camera matches of the same identity, as the Market-1501 protocol does.

frame and video, when given, are kept in OUT/image_info.json and loaded into each record (and the
video -> identities map used by sparse-temporal sampling).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = command_parser(
        subparsers, "prepare",
        help="convert raw Market-1501 / DukeMTMC-reID or your own images into a dataset folder",
        description="Convert raw data into a dataset folder (open-reid layout) that streid loads.",
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind, title in (("market1501", "Market-1501"), ("dukemtmc", "DukeMTMC-reID")):
        sub = command_parser(
            kinds, kind,
            help=f"raw {title} -> open-reid layout (+ official_split.json)",
            description=(
                f"Convert raw {title} (bounding_box_train/, bounding_box_test/, query/) into the open-reid "
                "layout: junk (pid -1) images dropped, cameras 0-based, every image decoded before it is "
                "copied; official_split.json keeps the official query and gallery image lists."
            ),
        )
        sub.add_argument("--src", type=Path, required=True,
                         help=f"the extracted {title} folder (or the folder containing it)")
        sub.add_argument("--dst", type=Path, default=Path("data") / kind,
                         help=f"output dataset folder (default: data/{kind})")
        sub.add_argument("--overwrite", action="store_true", help="replace --dst if it already exists")
        sub.set_defaults(run=_run_raw)

    sub = command_parser(
        kinds, "folder",
        help="your own images (one folder per identity, or a CSV) -> dataset",
        description=_FOLDER_HELP,
        raw_description=True,
    )
    source = sub.add_mutually_exclusive_group(required=True)
    source.add_argument("--src", type=Path, help="folder holding one sub-folder of images per identity")
    source.add_argument("--csv", type=Path, help="CSV with header path,pid[,camid][,frame][,video]")
    sub.add_argument("--dst", type=Path, required=True, help="output dataset folder, e.g. data/mydata")
    sub.add_argument("--test-fraction", type=float, default=0.5,
                     help="share of identities held out for testing (default 0.5)")
    sub.add_argument("--seed", type=int, default=0, help="seed of the identity shuffle (default 0)")
    sub.add_argument("--name", help="dataset name stored in meta.json (default: the --dst folder name)")
    sub.add_argument("--overwrite", action="store_true", help="replace --dst if it already exists")
    sub.set_defaults(run=_run_folder)


def _run_raw(args: argparse.Namespace) -> int:
    from ..data.formats.market_duke import DUKEMTMC, MARKET1501, convert_raw

    fmt = MARKET1501 if args.kind == "market1501" else DUKEMTMC
    result = convert_raw(fmt, args.src, args.dst, overwrite=args.overwrite)
    images, ids = result.images, result.ids
    distractors = f", incl. {result.distractor_images:,} distractor images (pid 0)" if result.distractor_images else ""
    print(f"wrote {result.dst}: {fmt.title}, {result.junk_dropped:,} junk images dropped")
    print(f"  train    {ids['train']:>6,} ids {images['train']:>8,} images")
    print(f"  query    {ids['query']:>6,} ids {images['query']:>8,} images (official list)")
    print(f"  gallery  {ids['gallery']:>6,} ids {images['gallery']:>8,} images (official list{distractors})")
    print(f"check it with: streid info {result.dst} --check")
    return 0


def _run_folder(args: argparse.Namespace) -> int:
    from ..data.formats.folder import convert_csv, convert_folder

    options = dict(test_fraction=args.test_fraction, seed=args.seed, name=args.name, overwrite=args.overwrite)
    result = convert_folder(args.src, args.dst, **options) if args.src else convert_csv(args.csv, args.dst, **options)
    print(f"wrote {result.dst}: cameras {result.cameras}")
    print(f"  trainval {result.trainval_ids:>6,} ids {result.trainval_images:>8,} images")
    print(f"  test     {result.test_ids:>6,} ids {result.test_images:>8,} images (query = gallery)")
    print(f"check it with: streid info {result.dst} --check")
    return 0
