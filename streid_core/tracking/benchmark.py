"""Track every sequence of a MOTChallenge-layout folder by motion alone and with each given re-ID
checkpoint, score all of them side by side, and record where each one lost identities.

The folder holds <seq>/img1/ frames, <seq>/det/det.txt detections, <seq>/gt/gt.txt and
<seq>/seqinfo.ini (what `streid synth-video` writes). Every tracker sees the same detections
with the same settings; only the embedder differs, so the table isolates what appearance adds.
Writes into `out`:

    results/<tracker>/<seq>.txt   MOTChallenge results, as `streid track` writes them
    table.json                    compare_trackers' comparison, plus per tracker its checkpoint,
                                  seconds, and every ID switch (frame, gt id, old and new track)
    table.md                      the comparison as a markdown table
"""
from __future__ import annotations

import re
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import numpy as np

from ..atomic import atomic_file, write_json
from ..errors import StreidError
from .comparison import compare_trackers, render_markdown
from .config import TrackerConfig
from .mot_eval import id_switches, prepare_frames
from ..data.formats.mot import (
    GroundTruthSequence,
    find_sequences,
    read_detections,
    read_ground_truth,
    read_results,
    results_file,
    write_results,
)
from .tracker import Embedder, Tracker, run_sequence

MOTION_ONLY = "motion-only"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def check_tracker_names(checkpoints: dict[str, str | Path]) -> None:
    """Names become folder names: letters, digits and . _ + -; `motion-only` is taken."""
    for name in checkpoints:
        if name == MOTION_ONLY:
            raise StreidError(f"--checkpoint {name}=...: {MOTION_ONLY!r} is always run; give the checkpoint another name")
        if not _NAME.match(name):
            raise StreidError(f"--checkpoint {name!r}: use letters, digits and . _ + - in a tracker name, e.g. st-reidnet")


def load_embedder(checkpoint: str | Path, device: str = "cpu", flag: str = "--checkpoint",
                  amp: str = "off") -> Embedder:
    """The re-ID encoder of a streid checkpoint as the tracker's embedder.

    The tracker compares embeddings by cosine, so it takes the BN-neck output when the encoder
    has one: the pre-BN descriptor (max-pooled ReLU activations, what re-ID evaluation uses) is
    all-positive, and any two crops lie within a cosine distance of about 0.05, where no gate or
    re-link threshold can tell people apart. The BN-neck centres each dimension, which spreads
    the same crops over about 0.25-0.85. `amp`: the encoder's --amp mode (see make_reid_embedder)."""
    from ..device import resolve_device
    from ..models.loading import load_encoder
    from ..numerics import check_amp
    from .reid_embedder import make_reid_embedder

    path = Path(checkpoint)
    if not path.is_file():
        raise StreidError(f"{flag} {path}: file not found; pass a checkpoint written by streid baseline/train")
    resolved = resolve_device(device)
    check_amp(amp, resolved)  # before the checkpoint is read
    try:
        encoder, (height, width) = load_encoder(path, resolved)
    except StreidError:
        raise
    except Exception as exc:
        reason = (str(exc).splitlines() or [""])[0]
        raise StreidError(f"{flag} {path}: cannot load a re-ID encoder from it ({type(exc).__name__}: "
                          f"{reason}); pass a streid re-ID checkpoint") from None
    if getattr(encoder, "bn_neck", None) is not None:
        encoder.test_bn = True
    return make_reid_embedder(encoder, int(height), int(width), resolved, amp)


def _frame_path(root: Path, seq: GroundTruthSequence, number: int) -> Path:
    return root / seq.name / seq.seqinfo.im_dir / f"{number:06d}{seq.seqinfo.im_ext}"


def _sequence_detections(root: Path, seq: GroundTruthSequence,
                         need_images: bool) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """The sequence's detections, once checked against its seqinfo.ini and (when the frames are
    needed) its frame files, so that a bad sequence stops the benchmark before any tracking."""
    folder = root / seq.name
    detections = read_detections(folder / "det" / "det.txt")
    last = max(detections, default=0)
    if last > seq.seqinfo.seq_length:
        raise StreidError(f"{folder / 'det' / 'det.txt'}: detections in frame {last}, but seqLength is "
                          f"{seq.seqinfo.seq_length}; fix {folder / 'seqinfo.ini'}")
    if need_images:
        for number in sorted(detections):
            path = _frame_path(root, seq, number)
            if not path.is_file():
                raise StreidError(f"{path}: frame missing; the sequence's {seq.seqinfo.im_dir}/ must hold every frame")
    return detections


def _frames(root: Path, seq: GroundTruthSequence, detections: dict[int, tuple[np.ndarray, np.ndarray]],
            need_images: bool, progress: str | None) -> Iterator[tuple[int, np.ndarray | None, np.ndarray, np.ndarray]]:
    """What run_sequence takes, for one sequence: frame number, image (only when needed), boxes, scores."""
    from tqdm import tqdm

    from ..data.images import load_image

    empty = (np.zeros((0, 4)), np.zeros(0))
    for number in tqdm(range(1, seq.seqinfo.seq_length + 1), desc=progress, unit="frame", disable=progress is None):
        boxes, scores = detections.get(number, empty)
        image = None
        if need_images and len(boxes):
            image = np.asarray(load_image(str(_frame_path(root, seq, number))).convert("RGB"))
        yield number, image, boxes, scores


def switch_events(gt_root: str | Path, results_dir: str | Path) -> dict[str, list[dict]]:
    """{sequence: [{frame, gt_id, previous_track, track}]}: every ID switch CLEAR-MOT counts."""
    events = {}
    for seq in find_sequences(gt_root):
        frames = prepare_frames(read_ground_truth(seq.gt_path), read_results(results_file(results_dir, seq.name)),
                                seq.seqinfo.seq_length, seq.name)
        events[seq.name] = [asdict(s) for s in id_switches(frames)]
    return events


def run_benchmark(videos: str | Path, checkpoints: dict[str, str | Path], out: str | Path,
                  config: TrackerConfig | None = None, device: str = "cpu", use_trackeval: bool = True,
                  progress: bool = False, amp: str = "off") -> dict:
    """Track, score and tabulate (see the module docstring); returns what table.json holds.
    amp: the re-ID encoders' --amp mode (off, bf16, fp16), checked before any tracking."""
    from ..device import resolve_device
    from ..numerics import check_amp

    videos, out = Path(videos), Path(out)
    if amp != "off":  # fp16 on the CPU fails before motion-only tracking runs
        check_amp(amp, resolve_device(device))
    config = config or TrackerConfig()
    check_tracker_names(checkpoints)
    for name, path in checkpoints.items():
        if not Path(path).is_file():
            raise StreidError(f"--checkpoint {name}={path}: file not found; pass a checkpoint written by streid baseline/train")
    sequences = find_sequences(videos)
    trackers: dict[str, Path | None] = {MOTION_ONLY: None, **{name: Path(p) for name, p in checkpoints.items()}}

    # Every sequence and checkpoint is read before the first tracker runs: a damaged file found
    # after motion-only tracking would leave a half-filled results/ behind.
    detections = {seq.name: _sequence_detections(videos, seq, bool(checkpoints)) for seq in sequences}
    embedders = {name: None if checkpoint is None else load_embedder(checkpoint, device, amp=amp)
                 for name, checkpoint in trackers.items()}

    results, seconds = {}, {}
    for name, embedder in embedders.items():
        results[name] = out / "results" / name
        start = time.perf_counter()
        for seq in sequences:
            tracker = Tracker(config, embedder)
            label = f"{name} {seq.name}" if progress else None
            rows = run_sequence(tracker, _frames(videos, seq, detections[seq.name], embedder is not None, label))
            write_results(results_file(results[name], seq.name), rows)
        seconds[name] = round(time.perf_counter() - start, 2)

    comparison = compare_trackers(videos, results, use_trackeval=use_trackeval)
    comparison["tracker_config"] = asdict(config)
    comparison["amp"] = amp
    for entry in comparison["trackers"]:
        name = entry["name"]
        entry["checkpoint"] = None if trackers[name] is None else str(trackers[name])
        entry["seconds"] = seconds[name]
        entry["id_switches"] = switch_events(videos, results[name])
    write_json(out / "table.json", comparison)
    with atomic_file(out / "table.md", "w", encoding="utf-8") as handle:
        handle.write(render_markdown(comparison))
    return comparison
