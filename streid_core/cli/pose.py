"""`streid pose`: estimate COCO-17 keypoints for a folder of your own images (MediaPipe, optional)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import StreidError
from ._args import command_parser

_DESCRIPTION = """\
Estimate one person's 17 COCO keypoints in every image of --images with MediaPipe Pose (offline,
the model inside the mediapipe wheel) and write <--out>/<image name>.txt in DanceReID's format:
17 lines "x y" in image pixels, COCO-17 order, "-1 -1" for a joint not seen. A joint counts as
not seen when MediaPipe's visibility is below --min-visibility or it lies outside the image.
Images where no person is found get no pose file; they are listed at the end.

Needs the optional mediapipe extra; without it the command prints the one line that installs it.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..data.pose_estimation import DEFAULT_MIN_DETECTION_CONFIDENCE, DEFAULT_MIN_VISIBILITY

    parser = command_parser(
        subparsers, "pose", help="estimate COCO-17 keypoints for your own images (MediaPipe; DanceReID pose files)",
        description=_DESCRIPTION, raw_description=True,
    )
    parser.add_argument("--images", required=True, type=Path, help="folder of .jpg/.jpeg/.png/.bmp images")
    parser.add_argument("--out", required=True, type=Path,
                        help="folder for the pose files, e.g. <dataset>/poses (created if missing)")
    parser.add_argument("--min-visibility", type=float, default=DEFAULT_MIN_VISIBILITY,
                        help=f"joints with a lower MediaPipe visibility are written as missing "
                             f"(default {DEFAULT_MIN_VISIBILITY})")
    parser.add_argument("--min-detection-confidence", type=float, default=DEFAULT_MIN_DETECTION_CONFIDENCE,
                        help=f"MediaPipe's person-detection threshold; lower finds more people, and more "
                             f"false ones (default {DEFAULT_MIN_DETECTION_CONFIDENCE})")
    parser.add_argument("--overwrite", action="store_true", help="replace pose files that already exist")
    parser.set_defaults(run=run_pose)


def run_pose(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..data.pose_estimation import (MediaPipePoseEstimator, check_images, check_outputs, estimate_folder,
                                         list_images)

    for flag, value in (("--min-visibility", args.min_visibility),
                        ("--min-detection-confidence", args.min_detection_confidence)):
        if not 0.0 <= value <= 1.0:
            raise StreidError(f"{flag} {value}: must lie in [0, 1]")
    images = list_images(args.images)
    check_outputs(images, args.out, args.overwrite)  # before MediaPipe spends seconds loading
    check_images(images)
    with MediaPipePoseEstimator(args.min_visibility, args.min_detection_confidence) as estimator:
        summary = estimate_folder(
            images, args.out, estimator, overwrite=args.overwrite,
            progress=lambda items: tqdm(items, desc="pose", unit="img"),
        )
    print(f"wrote {len(summary.written)} pose files to {args.out} "
          f"({summary.seconds:.1f} s, {summary.seconds / len(images):.3f} s per image)")
    for path in summary.removed:
        print(f"removed {path}: nobody found in its image any more")
    if summary.no_person:
        print(f"no person found in {len(summary.no_person)} of {len(images)} images (no pose file written):")
        for path in summary.no_person:
            print(f"  {path}")
    return 0
