"""`streid transfer`: draw the person of an image in another pose with a trained ST-ReIDNet."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import StreidError
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
    from ..atomic import atomic_file, check_not_an_input, check_output_file
    from ..models.pose_transfer import PoseTransfer

    out = Path(args.out)
    image_format = writable_image_format(out, "--out")
    check_output_file(out, "--out")
    check_not_an_input(out, "--out", {"--checkpoint": args.checkpoint, "--source": args.source, "--pose": args.pose,
                                      "--source-pose": args.source_pose})
    _check_inputs(args)
    model = PoseTransfer(args.checkpoint, args.device, args.amp)
    if args.source_pose and not model.needs_source_keypoints:
        raise StreidError(f"--source-pose {args.source_pose}: this checkpoint's G does not paint the source's limbs, "
                          "so the source pose would be ignored; leave --source-pose out")
    image = model.render(args.source, args.pose, args.keypoints, source_keypoints=args.source_pose)
    with atomic_file(out, "wb") as handle:
        image.save(handle, format=image_format)
    print(f"wrote {out} ({image.width}x{image.height})")
    return 0


def _check_inputs(args: argparse.Namespace) -> None:
    """The source image and the pose files, before the checkpoint loads: a bad one is named in
    seconds rather than after E and G are built. Without --keypoints a pose file is only read as
    text here; its joints are parsed once the model says which convention it uses."""
    from ..data.keypoints import convention, read_keypoints, read_pose_text
    from ..data.validation import image_problem

    problem = image_problem(str(args.source))
    if problem:
        raise StreidError(f"--source {problem}")
    for flag, pose in (("--pose", args.pose), ("--source-pose", args.source_pose)):
        if not pose:
            continue
        try:
            if args.keypoints:
                read_keypoints(pose, convention(args.keypoints))
            else:
                read_pose_text(pose)
        except StreidError as exc:
            raise StreidError(f"{flag} {exc}") from None


def writable_image_format(out: Path, flag: str) -> str:
    """The PIL format `out`'s extension names, checked (by writing a 1x1 RGB image to memory)
    to be one PIL can write an RGB image in: a read-only format (.psd) or one of another mode
    (.xbm) would otherwise fail only after the drawing."""
    import io

    from PIL import Image

    image_format = Image.registered_extensions().get(out.suffix.lower())
    if image_format is None:
        raise StreidError(f"{flag} {out}: unknown image extension {out.suffix!r}; use .png or .jpg")
    try:
        Image.new("RGB", (1, 1)).save(io.BytesIO(), format=image_format)
    except Exception:  # KeyError (no writer), OSError / ValueError (mode): all mean "cannot write it"
        raise StreidError(f"{flag} {out}: PIL cannot write an RGB image as {out.suffix!r}; use .png or .jpg") from None
    return image_format
