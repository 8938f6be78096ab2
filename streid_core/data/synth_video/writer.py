"""Render synthetic dance videos and write them in the MOTChallenge layout:

    <out>/<seq>/img1/000001.jpg   the frames
    <out>/<seq>/gt/gt.txt         frame, id, x, y, w, h, 1, 1, visibility (ids 1..n per sequence)
    <out>/<seq>/det/det.txt       frame, -1, x, y, w, h, confidence, -1, -1, -1 (simulated detector)
    <out>/<seq>/seqinfo.ini
    <out>/synth_video.json        parameters, each sequence's dancers and their global identity
                                  numbers, exits, and statistics

The folder is built beside its destination and renamed into place only when complete. Frames
are rendered in chunks, in parallel; every frame's pixels depend on the seed, the sequence and
the frame number alone, so the bytes written do not depend on the number of workers.
Detections come from their own random stream: changing the detector's noise leaves the frames
and the ground truth unchanged.
"""
from __future__ import annotations

import concurrent.futures as futures
import functools
import multiprocessing
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ...atomic import atomic_directory, write_json
from ...errors import StreidError
from ..formats.mot import SeqInfo, write_detections, write_ground_truth, write_seqinfo
from .config import VideoConfig
from .detector import FrameDetections, detect
from .sequence import DanceSequence, FrameTruth, sequence_name

GENERATOR_VERSION = 1
# `streid synth` numbers its identities 0..9999 (4-digit file names), so video identities start
# above that range: no number, and (separate random streams) no person, is shared with it.
IDENTITY_BASE = 10_000
DETECTION_STREAM = 7003
CHUNK_FRAMES = 50


@dataclass(frozen=True)
class SequenceResult:
    name: str
    truth: tuple[FrameTruth, ...]
    detections: tuple[FrameDetections, ...]


@dataclass(frozen=True)
class VideoSetResult:
    root: Path
    config: VideoConfig
    sequences: tuple[SequenceResult, ...]


@functools.lru_cache(maxsize=2)
def _sequence(config: VideoConfig, index: int) -> DanceSequence:
    """A worker renders several chunks of a sequence: build its scene once."""
    return DanceSequence(config, index)


def render_chunk(config: VideoConfig, index: int, frames: list[int], image_dir: str) -> list[FrameTruth]:
    """Render frames of sequence `index` as JPEGs into image_dir; return their ground truth."""
    import cv2

    sequence = _sequence(config, index)
    quality = [cv2.IMWRITE_JPEG_QUALITY, sequence.stage.jpeg_quality]
    truths = []
    for image, truth in sequence.render(frames):
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), quality)
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for frame {truth.frame} of {sequence.name}")
        # Plain writes: the whole folder is atomic, so per-file temp+fsync would only cost time.
        with open(os.path.join(image_dir, f"{truth.frame:06d}.jpg"), "wb") as handle:
            handle.write(jpeg.tobytes())
        truths.append(truth)
    return truths


def _single_threaded_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core already; OpenCV threads would only contend


def _render_all(config: VideoConfig, root: Path, workers: int, progress: bool) -> list[list[FrameTruth]]:
    from tqdm import tqdm

    jobs = [(index, list(range(first, min(first + CHUNK_FRAMES, config.frames + 1))))
            for index in range(config.sequences) for first in range(1, config.frames + 1, CHUNK_FRAMES)]
    truths: list[list[FrameTruth]] = [[] for _ in range(config.sequences)]
    bar = tqdm(total=config.sequences * config.frames, desc="rendering frames", unit="frame", disable=not progress)
    with bar:
        if workers <= 1:
            for index, frames in jobs:
                truths[index] += render_chunk(config, index, frames, str(root / sequence_name(index) / "img1"))
                bar.update(len(frames))
        else:
            # spawn, not fork: the caller (a notebook, a trainer) may hold threads that fork would copy.
            ctx = multiprocessing.get_context("spawn")
            with futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_single_threaded_worker) as pool:
                pending = {pool.submit(render_chunk, config, index, frames, str(root / sequence_name(index) / "img1")):
                           (index, len(frames)) for index, frames in jobs}
                for job in futures.as_completed(pending):
                    index, count = pending[job]
                    truths[index] += job.result()
                    bar.update(count)
    return [sorted(t, key=lambda truth: truth.frame) for t in truths]


def _ground_truth_rows(truths: list[FrameTruth]) -> np.ndarray:
    rows = [[t.frame, i, *box, 1, 1, round(float(v), 4)] for t in truths for i, box, v in zip(t.ids, t.boxes, t.visibility)]
    return np.array(rows, dtype=np.float64).reshape(-1, 9)


def _frame_of(raw_time: float, config: VideoConfig) -> int | None:
    """The 1-based rendered frame at (or just after) a raw frame time; None after the video's end."""
    frame = int(np.ceil(raw_time / config.frame_step)) + 1
    return frame if frame <= config.frames else None


def _sequence_meta(sequence: DanceSequence, truths: list[FrameTruth], detections: list[FrameDetections],
                   first_identity: int) -> dict:
    config = sequence.config
    visibility = np.concatenate([t.visibility for t in truths] + [np.zeros(0)])
    sources = np.concatenate([d.sources for d in detections] + [np.zeros(0, np.int64)])
    return {
        "name": sequence.name,
        "frames": config.frames,
        "fps": config.fps,
        "size": [config.width, config.height],
        "style": sequence.style.name,
        "venue": sequence.stage.venue,
        "themed_outfits": sequence.themed,
        "dancers": [{"gt_id": i + 1, "identity": first_identity + i} for i in range(sequence.num_dancers)],
        "exits": [
            {"gt_id": e.dancer + 1, "walks_off_at": _frame_of(e.start, config), "gone_from": _frame_of(e.out, config),
             "walks_back_at": _frame_of(e.back, config), "in_place_at": _frame_of(e.end, config),
             "exit_side": "left" if e.exit_side < 0 else "right", "entry_side": "left" if e.entry_side < 0 else "right"}
            for e in sequence.exits
        ],
        "statistics": {
            "gt_boxes": int(len(visibility)),
            "mean_visibility": round(float(visibility.mean()), 4) if len(visibility) else 0.0,
            "occluded_boxes": round(float(np.mean(visibility < 0.5)), 4) if len(visibility) else 0.0,
            "detections": int(len(sources)),
            "false_detections": int(np.sum(sources < 0)),
            "missed_boxes": int(len(visibility) - np.sum(sources >= 0)),
        },
    }


def exit_spans(root: str | os.PathLike) -> dict[str, list[tuple[int, int]]]:
    """{sequence: [(first, last) frame a dancer is wholly out of the frame]} from a folder's
    synth_video.json (an absence running past the end stops at the last frame)."""
    import json

    path = Path(root) / "synth_video.json"
    if not path.is_file():
        raise StreidError(f"{path}: not found; {root} was not written by `streid synth-video`")
    meta = json.loads(path.read_text(encoding="utf-8"))
    spans = {}
    for seq in meta["sequences"]:
        spans[seq["name"]] = [(e["gone_from"], (e["walks_back_at"] or seq["frames"] + 1) - 1)
                              for e in seq["exits"] if e["gone_from"] is not None]
    return spans


def generate_videos(out: str | os.PathLike, config: VideoConfig = VideoConfig(), overwrite: bool = False,
                    workers: int = 1, progress: bool = False) -> VideoSetResult:
    """Render the videos `config` describes into `out` (replaced only if `overwrite`); see the
    module docstring. workers > 1 renders in that many processes (started with spawn: a script
    calling this needs the usual `if __name__ == "__main__":` guard)."""
    config.validate()
    out = Path(out)
    if out.exists() and not overwrite:
        raise StreidError(f"{out} already exists; pass --overwrite to replace it or choose another --out")
    with atomic_directory(out, overwrite=overwrite) as tmp:
        for index in range(config.sequences):
            (tmp / sequence_name(index) / "img1").mkdir(parents=True)
        all_truths = _render_all(config, tmp, max(1, workers), progress)
        results, metas, first_identity = [], [], IDENTITY_BASE
        for index, truths in enumerate(all_truths):
            sequence = _sequence(config, index)
            rng = np.random.default_rng(np.random.SeedSequence([config.seed, DETECTION_STREAM, index]))
            detections = [detect(rng, t, (config.width, config.height), config.detector) for t in truths]
            folder = tmp / sequence.name
            write_ground_truth(folder / "gt" / "gt.txt", _ground_truth_rows(truths))
            write_detections(folder / "det" / "det.txt",
                             np.concatenate([d.rows() for d in detections] + [np.zeros((0, 6))]))
            write_seqinfo(folder / "seqinfo.ini", SeqInfo(name=sequence.name, seq_length=config.frames,
                                                          frame_rate=config.fps, im_width=config.width,
                                                          im_height=config.height))
            metas.append(_sequence_meta(sequence, truths, detections, first_identity))
            first_identity += sequence.num_dancers
            results.append(SequenceResult(sequence.name, tuple(truths), tuple(detections)))
        write_json(tmp / "synth_video.json", {
            "generator": "streid synth-video",
            "version": GENERATOR_VERSION,
            "params": asdict(config),
            "identity_base": IDENTITY_BASE,
            "sequences": metas,
        })
    return VideoSetResult(root=out, config=config, sequences=tuple(results))
