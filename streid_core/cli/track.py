"""`streid track` (track people through a video's frames) and `streid track-eval` (score trackers)."""
from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

from ..errors import StreidError
from ._args import add_amp_arg, add_checkpoint_arg, add_device_arg, command_parser, parse_named_pairs

AMP_HELP = ("run the re-ID encoder in autocast: bf16 (CPU or CUDA; bare --amp; on the CPU checked against float32 "
            "on the first frame, falling back to float32 if off) or fp16 (CUDA); features are float32")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_SETTING_HELP = {
    "max_age": "frames a confirmed track may go unmatched and still be re-linked",
    "n_init": "consecutive matches before a new track is confirmed and reported",
    "min_iou": "smallest IoU between a predicted box and a detection for a motion match",
    "appearance_weight": "weight of the cosine distance (vs 1 - IoU) when matching active tracks",
    "max_appearance_distance": "largest cosine distance allowed when matching an active track",
    "embedding_momentum": "weight of a track's old embedding in its moving average",
    "relink_threshold": "largest cosine distance for re-linking a lost track",
    "relink_margin": "how much closer than any rival a re-link must be (cosine distance)",
    "relink_radius": "re-link gate radius in track heights for a track just lost",
    "relink_radius_growth": "added to the re-link gate radius (track heights) per frame lost",
    "iou_bridge_frames": "with appearance, a track lost for up to this many frames may also come back by IoU "
                         "(appearance-gated); longer gaps need a confident re-link",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..tracking.config import TrackerConfig

    track = command_parser(
        subparsers, "track", help="track people in a sequence of frames (MOTChallenge in and out)",
        description="Track the detections of det.txt through the frames in --frames and write MOTChallenge "
                    "results (frame,id,x,y,w,h,conf,-1,-1,-1). Appearance comes from a re-ID checkpoint; "
                    "--checkpoint none tracks by motion alone.",
    )
    track.add_argument("--frames", required=True, help="folder of frames named by number (000001.jpg, ...)")
    track.add_argument("--dets", required=True, help="MOTChallenge det.txt")
    add_checkpoint_arg(track, "re-ID checkpoint for appearance, or 'none' (motion only)", metavar="FILE|none",
                       required=True)
    track.add_argument("--out", required=True, help="results file to write")
    track.add_argument("--seqinfo", help="seqinfo.ini giving the number of frames (default: the highest frame number)")
    add_device_arg(track, " for the re-ID model")
    add_amp_arg(track, help=AMP_HELP)
    track.add_argument("--min-conf", type=float, default=None,
                       help="drop detections with a lower confidence (default: keep all)")
    for field in dataclasses.fields(TrackerConfig):
        track.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default), default=field.default,
                           help=f"{_SETTING_HELP[field.name]} (default {field.default})")
    track.set_defaults(run=run_track)

    evaluate = command_parser(
        subparsers, "track-eval", help="score tracker results against MOTChallenge ground truth (HOTA, IDF1, MOTA, IDSW)",
        description="Score one or more trackers' MOTChallenge results against <gt-root>/<seq>/gt/gt.txt and write "
                    "a comparison table as JSON and markdown.",
    )
    evaluate.add_argument("--gt-root", required=True, help="folder holding <seq>/gt/gt.txt and <seq>/seqinfo.ini")
    evaluate.add_argument("--results", required=True, nargs="+", metavar="NAME=DIR",
                          help="a tracker's name and its folder of <seq>.txt results; repeat for each tracker")
    evaluate.add_argument("--out", required=True,
                          help="table.json or table.md; both files are written side by side")
    evaluate.add_argument("--no-trackeval", action="store_true",
                          help="use only streid's own CLEAR-MOT/IDF1 scorer (no HOTA)")
    evaluate.set_defaults(run=run_track_eval)


def _numbered_frames(folder: Path, extension: str | None) -> dict[int, Path]:
    """{frame number: image path} for the images in `folder` whose name is a number."""
    if not folder.is_dir():
        raise StreidError(f"{folder}: frames folder not found; pass the folder of numbered frames (--frames)")
    suffixes = (extension.lower(),) if extension else _IMAGE_SUFFIXES
    frames = {}
    for path in folder.iterdir():
        if path.suffix.lower() in suffixes and path.stem.isdigit():
            frames[int(path.stem)] = path
    return frames


def _build_embedder(checkpoint: str, device_name: str, amp: str = "off"):
    from ..tracking.benchmark import load_embedder

    if not Path(checkpoint).is_file():
        raise StreidError(f"--checkpoint {checkpoint}: file not found; pass a re-ID checkpoint, or 'none' for motion only")
    return load_embedder(checkpoint, device_name, amp=amp)


def run_track(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from ..atomic import check_output_file
    from ..data.images import load_image
    from ..data.formats.mot import read_detections, read_seqinfo, write_results
    from ..tracking.config import TrackerConfig
    from ..tracking.tracker import Tracker, run_sequence

    from ..device import resolve_device
    from ..numerics import check_amp

    config = TrackerConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrackerConfig)})
    if args.amp != "off":  # refuse fp16 on the CPU before any work (motion-only too)
        check_amp(args.amp, resolve_device(args.device))
    check_output_file(args.out, "--out")
    if args.min_conf is not None and not math.isfinite(args.min_conf):
        raise StreidError(f"--min-conf {args.min_conf}: must be a finite number")
    detections = read_detections(args.dets)
    seqinfo = read_seqinfo(args.seqinfo) if args.seqinfo else None
    images = _numbered_frames(Path(args.frames), seqinfo.im_ext if seqinfo else None)
    if seqinfo:
        num_frames = seqinfo.seq_length
    elif images:
        num_frames = max(images)
    else:
        raise StreidError(f"{args.frames}: no numbered images (000001.jpg, ...); pass the sequence's frame folder")
    last_detected = max(detections, default=0)
    if last_detected > num_frames:
        raise StreidError(f"{args.dets}: detections in frame {last_detected}, but the sequence has {num_frames} "
                          f"frames; check --frames/--seqinfo")

    if args.checkpoint.lower() != "none":  # appearance reads the frame of every detection: all must be there first
        missing = sorted(n for n, (_, scores) in detections.items() if n not in images
                         and (args.min_conf is None or (scores >= args.min_conf).any()))
        if missing:
            raise StreidError(f"--frames {args.frames}: no image for frame {missing[0]}, which has detections "
                              f"({len(missing)} such frame(s)); add the frames, or pass --checkpoint none to track "
                              "by motion alone")
    embedder = None if args.checkpoint.lower() == "none" else _build_embedder(args.checkpoint, args.device, args.amp)
    tracker = Tracker(config, embedder)
    empty = (np.zeros((0, 4)), np.zeros(0))

    def frames():
        for number in tqdm(range(1, num_frames + 1), desc="track", unit="frame", disable=None):
            boxes, scores = detections.get(number, empty)
            if args.min_conf is not None:
                keep = scores >= args.min_conf
                boxes, scores = boxes[keep], scores[keep]
            image = None
            if embedder is not None and len(boxes):
                if number not in images:
                    raise StreidError(f"{args.frames}: no image for frame {number}, which has detections")
                image = np.asarray(load_image(str(images[number])).convert("RGB"))
            yield number, image, boxes, scores

    rows = run_sequence(tracker, frames())
    write_results(args.out, rows)
    num_ids = len(np.unique(rows[:, 1])) if len(rows) else 0
    print(f"wrote {len(rows)} boxes of {num_ids} tracks over {num_frames} frames to {args.out}")
    return 0


def run_track_eval(args: argparse.Namespace) -> int:
    from ..atomic import atomic_file, check_output_file, write_json
    from ..tracking.comparison import compare_trackers, render_markdown

    out = Path(args.out)
    if out.suffix not in (".json", ".md"):
        raise StreidError(f"--out {out}: name the table file with .json or .md (both are written)")
    for path in (out.with_suffix(".json"), out.with_suffix(".md")):
        check_output_file(path, "--out")
    results = parse_named_pairs(args.results, "--results", "DIR", "motion-only=runs/motion")
    comparison = compare_trackers(args.gt_root, results, use_trackeval=not args.no_trackeval)
    markdown = render_markdown(comparison)
    write_json(out.with_suffix(".json"), comparison)
    with atomic_file(out.with_suffix(".md"), "w", encoding="utf-8") as handle:
        handle.write(markdown)
    print(markdown, end="")
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0
