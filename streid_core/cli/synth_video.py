"""`streid synth-video`: render dance videos with tracking ground truth (MOTChallenge layout)."""
from __future__ import annotations

import argparse
import os
import time

from ._args import command_parser


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..data.synth_video.config import DetectorNoise, VideoConfig

    d, n = VideoConfig(), DetectorNoise()
    p = command_parser(
        subparsers, "synth-video",
        help="render dance videos with tracking ground truth and simulated detections (MOTChallenge layout)",
        description="Render videos of groups dancing one choreography: they cross paths, hide one another and "
                    "walk out of the frame and back. Each sequence gets img1/ frames, gt/gt.txt (ids, boxes, "
                    "visibility), det/det.txt (a simulated detector) and seqinfo.ini; synth_video.json records "
                    "the parameters, the dancers' identities (new people, numbered from 10000) and their exits.",
    )
    p.add_argument("--out", default="data/synthdance-mot", help="folder to write (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed; the same seed writes the same bytes (default: %(default)s)")
    p.add_argument("--sequences", type=int, default=d.sequences, help="number of videos (default: %(default)s)")
    p.add_argument("--frames", type=int, default=d.frames, help="frames per video (default: %(default)s)")
    p.add_argument("--width", type=int, default=d.width, help="frame width in pixels (default: %(default)s)")
    p.add_argument("--height", type=int, default=d.height, help="frame height in pixels (default: %(default)s)")
    p.add_argument("--frame-step", type=int, default=d.frame_step,
                   help="30 fps dance frames per video frame: 2 makes a 15 fps video (default: %(default)s)")
    p.add_argument("--min-dancers", type=int, default=d.min_dancers, help="fewest dancers in a video (default: %(default)s)")
    p.add_argument("--max-dancers", type=int, default=d.max_dancers, help="most dancers in a video (default: %(default)s)")
    p.add_argument("--exits", type=float, default=d.exits_per_100_frames,
                   help="dancers walking out of the frame and back, per 100 frames (default: %(default)s)")
    p.add_argument("--min-exit-gap", type=int, default=d.min_exit_gap,
                   help="fewest frames a dancer who walked off stays out of view (default: %(default)s)")
    p.add_argument("--max-exit-gap", type=int, default=d.max_exit_gap,
                   help="most frames a dancer who walked off stays out of view (default: %(default)s)")
    p.add_argument("--det-noise", type=float, default=n.box_noise,
                   help="detector box noise: std of each edge as a fraction of the box size (default: %(default)s)")
    p.add_argument("--miss-rate", type=float, default=n.miss_rate,
                   help="chance the detector misses a visible dancer (default: %(default)s)")
    p.add_argument("--fp-rate", type=float, default=n.fp_rate,
                   help="false detections per frame, on average (default: %(default)s)")
    p.add_argument("--min-visibility", type=float, default=n.min_visibility,
                   help="dancers less visible than this are never detected (default: %(default)s)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="rendering processes (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_output_dir
    from ..data.synth_video import DetectorNoise, VideoConfig, generate_videos
    from ..errors import StreidError

    config = VideoConfig(
        seed=args.seed, sequences=args.sequences, frames=args.frames, width=args.width, height=args.height,
        frame_step=args.frame_step, min_dancers=args.min_dancers, max_dancers=args.max_dancers,
        exits_per_100_frames=args.exits, min_exit_gap=args.min_exit_gap, max_exit_gap=args.max_exit_gap,
        detector=DetectorNoise(box_noise=args.det_noise, miss_rate=args.miss_rate, fp_rate=args.fp_rate,
                               min_visibility=args.min_visibility),
    )
    if args.workers < 1:
        raise StreidError(f"--workers {args.workers}: must be >= 1 (rendering processes)")
    check_output_dir(args.out, "--out")
    start = time.perf_counter()
    result = generate_videos(args.out, config, overwrite=args.overwrite, workers=args.workers, progress=True)
    seconds = time.perf_counter() - start
    for seq in result.sequences:
        boxes = sum(len(t.ids) for t in seq.truth)
        detections = sum(len(d.boxes) for d in seq.detections)
        people = len({int(i) for t in seq.truth for i in t.ids})
        print(f"{seq.name}: {people} dancers, {boxes} ground-truth boxes, {detections} detections")
    print(f"wrote {result.root}: {config.sequences} sequences of {config.frames} frames ({config.width}x{config.height}, "
          f"{config.fps:g} fps) in {seconds:.1f} s")
    return 0
