"""`streid transfer`: draw the person of an image in another pose with a trained ST-ReIDNet."""
from __future__ import annotations

import argparse
from pathlib import Path

from ._args import add_amp_arg, add_checkpoint_arg, add_device_arg, command_parser

AMP_HELP = ("run E and G in autocast: bf16 (CPU or CUDA; bare --amp; on the CPU each checked against float32 on "
            "its first batch, falling back to float32 if off) or fp16 (CUDA)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = command_parser(
        subparsers, "transfer", help="pose transfer: redraw a person in a target pose with a trained ST-ReIDNet",
        description="Encode --source with the checkpoint's E, render it in the --pose keypoints with G, write "
                    "--out (the model's canvas size, e.g. 128x256). The keypoints are x, y in the source "
                    "image's pixels.")
    add_checkpoint_arg(parser, "checkpoint.pth.tar of a `streid train` run (holds G)", required=True)
    parser.add_argument("--source", required=True, help="image of the person (any format PIL reads)")
    parser.add_argument("--pose", required=True,
                        help="pose text file of the target pose: DanceReID's 17 'x y' lines (coco17) or FD-GAN's "
                             "18 'row col' lines (openpose18)")
    parser.add_argument("--source-pose", default=None, metavar="FILE",
                        help="pose text file of the source image, in --pose's format: needed by a model trained "
                             "with --paint-from source-limbs, whose G reads E's map under the source's limbs")
    parser.add_argument("--keypoints", choices=("coco17", "openpose18"), default=None,
                        help="format of --pose and --source-pose (default: the convention the model was trained on)")
    parser.add_argument("--out", required=True, help="output image; the format follows the extension (.png, .jpg)")
    add_device_arg(parser)
    add_amp_arg(parser, help=AMP_HELP)
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from PIL import Image

    from ..atomic import atomic_file, check_output_file
    from ..errors import StreidError
    from ..models.pose_transfer import transfer

    out = Path(args.out)
    image_format = Image.registered_extensions().get(out.suffix.lower())
    if image_format is None:
        raise StreidError(f"--out {out}: unknown image extension {out.suffix!r}; use .png or .jpg")
    check_output_file(out, "--out")
    image = transfer(args.checkpoint, args.source, args.pose, args.keypoints, args.device, args.amp,
                     source_keypoints=args.source_pose)
    with atomic_file(out, "wb") as handle:
        image.save(handle, format=image_format)
    print(f"wrote {out} ({image.width}x{image.height})")
    return 0
