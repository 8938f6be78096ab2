"""`streid synth`: generate the SynthDance dataset and its report (counts, colour baseline,
sample grid)."""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from ._args import command_parser


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..data.synth.config import SynthConfig

    d = SynthConfig()
    p = command_parser(
        subparsers, "synth",
        help="generate the procedural dance re-ID dataset (DanceReID layout)",
        description="Generate SynthDance: groups dancing one choreography per video (pose is shared, so "
                    "identity must come from the person), written in the DanceReID layout, plus a "
                    "report with counts, a colour-histogram baseline and a sample grid.",
    )
    p.add_argument("--out", default="data/synthdance", help="dataset folder to write (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed; the same seed writes the same bytes (default: %(default)s)")
    p.add_argument("--height", type=int, default=d.height, help="crop height in pixels (default: %(default)s)")
    p.add_argument("--width", type=int, default=d.width, help="crop width in pixels (default: %(default)s)")
    p.add_argument("--ids", type=int, default=d.ids, help="number of identities (default: %(default)s)")
    p.add_argument("--videos", type=int, default=d.videos, help="number of videos, 3-8 dancers each (default: %(default)s)")
    p.add_argument("--frames", type=int, default=d.frames, help="sampled frames per video, on average (default: %(default)s)")
    p.add_argument("--frame-step", type=int, default=d.frame_step, help="raw frames between samples, as DanceReID's -d (default: %(default)s)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes rendering videos (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--report-dir", default="reports/dataset", help="where summary.json and samples.png go (default: %(default)s)")
    p.add_argument("--no-report", action="store_true", help="write only the dataset")
    p.set_defaults(run=run)


def showcase_pids(synth_meta: dict, max_rows: int = 8) -> list[int]:
    """Identities for the sample grid: the dancers of one test video (same choreography, so the
    rows share poses column by column) followed by outfit-twin pairs from different videos."""
    test_videos = [v for v in synth_meta["videos"] if v["split"] == "test"] or synth_meta["videos"]
    group = max(test_videos, key=lambda v: len(v["pids"]))
    pids = list(group["pids"][:4])
    test_pids = {p for v in test_videos for p in v["pids"]}
    for pid, source in synth_meta["outfit_twins"]:
        if len(pids) + 2 > max_rows:
            break
        if pid in test_pids and source in test_pids and pid not in pids and source not in pids:
            pids += [source, pid]
    return pids


def write_report(root: Path, report_dir: Path, seconds: float, workers: int) -> dict:
    """Read the dataset back with the real loader, rank its test split by colour, draw samples."""
    import json

    from ..atomic import write_json
    from ..evaluation.color_baseline import rank_by_color
    from ..data.dataset import load_dataset
    from ..viz.figures import save_figure
    from ..viz.samples import sample_grid

    ds = load_dataset(root)
    synth_meta = json.loads((root / "synth.json").read_text(encoding="utf-8"))
    test_videos = sorted({r.video for r in ds.query})

    def counts(records: list, videos: list[str]) -> dict:
        return {"ids": len({r.pid for r in records}), "images": len(records), "videos": len(videos)}

    colour = rank_by_color(ds.query, ds.gallery, ds.protocol)
    summary = {
        "dataset": str(root),
        "params": synth_meta["params"],
        "generation_seconds": round(seconds, 2),
        "workers": workers,
        "counts": {
            "ids": len({r.pid for r in ds.trainval + ds.query}),
            "videos": len(ds.videos),
            "images": len(ds.trainval) + len(ds.query),
            "trainval": counts(ds.trainval, sorted({r.video for r in ds.trainval})),
            "test": counts(ds.query, test_videos),
        },
        "color_baseline": {"protocol": ds.protocol, "rank1": round(colour.rank1, 4), "rank5": round(colour.rank(5), 4),
                           "mAP": round(float(colour.mAP), 4), "chance_rank1": round(1 / len({r.pid for r in ds.query}), 4)},
        "hard_cases": {**synth_meta["statistics"], "outfit_twin_pairs": len(synth_meta["outfit_twins"]),
                       "themed_videos": sum(v["themed_outfits"] for v in synth_meta["videos"])},
    }
    report_dir.mkdir(parents=True, exist_ok=True)
    fig = sample_grid(ds.query + ds.trainval, ds.keypoints, n_per_id=10, pids=showcase_pids(synth_meta),
                      title="SynthDance test identities over time: one video's dancers, then outfit twins from other videos")
    save_figure(fig, report_dir / "samples.png")
    write_json(report_dir / "summary.json", summary)
    return summary


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_output_dir
    from ..data.synth import SynthConfig, generate
    from ..errors import StreidError

    config = SynthConfig(seed=args.seed, height=args.height, width=args.width, ids=args.ids, videos=args.videos,
                         frames=args.frames, frame_step=args.frame_step)
    if args.workers < 1:
        raise StreidError(f"--workers {args.workers}: must be >= 1 (rendering processes)")
    check_output_dir(args.out, "--out")
    if not args.no_report:
        check_output_dir(args.report_dir, "--report-dir")
    start = time.perf_counter()
    result = generate(args.out, config, overwrite=args.overwrite, workers=args.workers, progress=True)
    seconds = time.perf_counter() - start
    images = sum(len(v.names) for v in result.videos)
    print(f"wrote {result.root}: {config.ids} identities, {config.videos} videos, {images} images "
          f"({config.height}x{config.width}) in {seconds:.1f} s")
    if args.no_report:
        return 0
    report_dir = Path(args.report_dir)
    summary = write_report(result.root, report_dir, seconds, args.workers)
    c, b = summary["counts"], summary["color_baseline"]
    print(f"trainval: {c['trainval']['ids']} ids / {c['trainval']['images']} images / {c['trainval']['videos']} videos; "
          f"test (query = gallery): {c['test']['ids']} ids / {c['test']['images']} images / {c['test']['videos']} videos")
    print(f"colour-histogram baseline on test ({b['protocol']} protocol): rank-1 {100 * b['rank1']:.1f} %, "
          f"mAP {100 * b['mAP']:.1f} % (chance rank-1 {100 * b['chance_rank1']:.1f} %)")
    print(f"report: {report_dir / 'summary.json'}, {report_dir / 'samples.png'}")
    return 0
