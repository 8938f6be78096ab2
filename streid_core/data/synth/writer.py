"""Render a planned dataset and write it in the DanceReID layout (docs/original-system.md §6.3):

    images/NNNN_FFFFFF.jpg   global pid, raw frame number
    poses/NNNN_FFFFFF.txt    17 COCO "x y" lines, "-1 -1" for a missing joint
    meta.json                {"name", "shot": "single", "identities": [pid] -> [file names],
                              "n_detects": [per video], "total_detects"}
    splits.json              [{"trainval", "query", "gallery"}], query = gallery = test pids
    video.json               {video key: [pids]}
    synth.json               generation parameters, seed, per-video facts, outfit twins, statistics

The folder is built beside its destination and renamed into place only when complete. Videos
are rendered in parallel; each has its own random stream, so the bytes written depend on the
seed alone, not on the number of workers.
"""
from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ...atomic import atomic_directory, write_json
from ...errors import StreidError
from ..keypoints import COCO17, format_keypoints
from .config import SynthConfig
from .plan import DatasetPlan, VideoPlan, plan_dataset
from .scene import Dancer, VideoScene

GENERATOR_VERSION = 1
DATASET_NAME = "SynthDance"


@dataclass(frozen=True)
class VideoResult:
    names: tuple[str, ...]  # image file names, in the order they were rendered
    pids: tuple[int, ...]
    frames: tuple[int, ...]
    visible: tuple[float, ...]
    blurred: tuple[bool, ...]
    missing_joints: tuple[int, ...]
    style: str
    venue: str
    frame_size: tuple[int, int]


@dataclass(frozen=True)
class SynthResult:
    root: Path
    config: SynthConfig
    plan: DatasetPlan
    videos: tuple[VideoResult, ...]


def image_name(pid: int, frame: int) -> str:
    return f"{pid:04d}_{frame:06d}.jpg"


def render_video(config: SynthConfig, plan: VideoPlan, root: str) -> VideoResult:
    """Render one video and write its images and poses under `root`."""
    import cv2

    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 1, plan.index]))
    dancers = [Dancer(pid, look) for pid, look in zip(plan.pids, plan.looks)]
    scene = VideoScene(rng, dancers, list(plan.frames), (config.height, config.width))
    quality = [cv2.IMWRITE_JPEG_QUALITY, scene.stage.jpeg_quality]
    names, pids, frames, visible, blurred, missing = [], [], [], [], [], []
    for det in scene.detections():
        name = image_name(det.pid, det.frame)
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(det.image, cv2.COLOR_RGB2BGR), quality)
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for {name}")
        # Plain writes: the whole folder is atomic, so per-file temp+fsync would only cost time.
        with open(os.path.join(root, "images", name), "wb") as handle:
            handle.write(jpeg.tobytes())
        with open(os.path.join(root, "poses", name[:-4] + ".txt"), "w", encoding="utf-8") as handle:
            handle.write(format_keypoints(det.keypoints, COCO17))
        names.append(name)
        pids.append(det.pid)
        frames.append(det.frame)
        visible.append(round(det.visible, 4))
        blurred.append(det.blurred)
        missing.append(int(np.isnan(det.keypoints[:, 0]).sum()))
    return VideoResult(
        names=tuple(names), pids=tuple(pids), frames=tuple(frames), visible=tuple(visible),
        blurred=tuple(blurred), missing_joints=tuple(missing), style=scene.style.name, venue=scene.stage.venue,
        frame_size=scene.stage.frame_size,
    )


def _single_threaded_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core already; OpenCV threads would only contend


def _render_all(config: SynthConfig, plan: DatasetPlan, root: Path, workers: int, progress: bool) -> list[VideoResult]:
    from tqdm import tqdm

    bar = tqdm(total=len(plan.videos), desc="rendering videos", unit="video", disable=not progress)
    with bar:
        if workers <= 1:
            results = []
            for v in plan.videos:
                results.append(render_video(config, v, str(root)))
                bar.update()
            return results
        # spawn, not fork: the caller (a notebook, a trainer) may hold threads that fork would copy.
        ctx = multiprocessing.get_context("spawn")
        with futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_single_threaded_worker) as pool:
            # Longest videos first so that no worker is left with a long one at the end.
            order = sorted(plan.videos, key=lambda v: -len(v.pids) * len(v.frames))
            jobs = {v.index: pool.submit(render_video, config, v, str(root)) for v in order}
            for _ in futures.as_completed(jobs.values()):
                bar.update()
            return [jobs[v.index].result() for v in plan.videos]


def _statistics(results: list[VideoResult]) -> dict:
    visible = np.array([x for r in results for x in r.visible])
    missing = np.array([x for r in results for x in r.missing_joints])
    blurred = np.array([x for r in results for x in r.blurred])
    return {
        "images": int(len(visible)),
        "partly_occluded": round(float(np.mean(visible < 0.9)), 4),  # share of images with >10 % hidden
        "heavily_occluded": round(float(np.mean(visible < 0.7)), 4),
        "blurred": round(float(np.mean(blurred)), 4),
        "with_missing_joints": round(float(np.mean(missing > 0)), 4),
        "missing_joints": round(float(missing.sum() / (17 * len(missing))), 4),
    }


def generate(out: str | os.PathLike, config: SynthConfig = SynthConfig(), overwrite: bool = False, workers: int = 1,
             progress: bool = False) -> SynthResult:
    """Generate the dataset into `out` (replaced only if `overwrite`); see the module docstring.

    workers > 1 renders videos in that many processes (started with spawn: a script calling this
    needs the usual `if __name__ == "__main__":` guard)."""
    config.validate()
    out = Path(out)
    if out.exists() and not overwrite:
        raise StreidError(f"{out} already exists; pass --overwrite to replace it or choose another --out")
    plan = plan_dataset(config)
    with atomic_directory(out, overwrite=overwrite) as tmp:
        (tmp / "images").mkdir()
        (tmp / "poses").mkdir()
        results = _render_all(config, plan, tmp, max(1, min(workers, len(plan.videos))), progress)
        identities: list[list[str]] = [[] for _ in range(config.ids)]
        for res in results:
            for name, pid in zip(res.names, res.pids):
                identities[pid].append(name)
        n_detects = [len(r.names) for r in results]
        write_json(tmp / "meta.json", {
            "name": DATASET_NAME, "shot": "single", "identities": [sorted(n) for n in identities],
            "n_detects": n_detects, "total_detects": int(sum(n_detects)),
        })
        test = plan.pids("test")
        write_json(tmp / "splits.json", [{"trainval": plan.pids("trainval"), "query": test, "gallery": test}])
        write_json(tmp / "video.json", {v.key: list(v.pids) for v in plan.videos})
        write_json(tmp / "synth.json", {
            "generator": "streid synth",
            "version": GENERATOR_VERSION,
            "params": asdict(config),
            "videos": [
                {"key": v.key, "split": v.split, "pids": list(v.pids), "images": len(r.names), "frames": len(v.frames),
                 "frame_range": [v.frames[0], v.frames[-1]], "style": r.style, "venue": r.venue,
                 "source_frame_size": list(r.frame_size), "themed_outfits": v.themed}
                for v, r in zip(plan.videos, results)
            ],
            "outfit_twins": [list(t) for t in plan.twins],
            "statistics": _statistics(results),
        })
    return SynthResult(root=out, config=config, plan=plan, videos=tuple(results))
