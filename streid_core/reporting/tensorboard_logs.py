"""Read back what a training run logged to TensorBoard (`<run>/tensorboard`): scalar series
(losses per iteration, evaluation metrics per epoch) and images (the generator's visuals per
epoch). Reports use it to draw a finished or reused run exactly like a live one."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from ..training.run_logging import TENSORBOARD_DIR


def _accumulator(logs_dir: str | os.PathLike, kind: str):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder = Path(logs_dir) / TENSORBOARD_DIR
    if not folder.is_dir():
        return None
    accumulator = EventAccumulator(str(folder), size_guidance={kind: 0})  # 0: keep every event
    accumulator.Reload()
    return accumulator


def read_scalars(logs_dir: str | os.PathLike, prefix: str = "") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """tag -> (steps, values) of every scalar tag starting with `prefix`, sorted by step (the
    last value wins when a resumed run logged a step twice). Empty when nothing was logged."""
    accumulator = _accumulator(logs_dir, "scalars")
    if accumulator is None:
        return {}
    out = {}
    for tag in accumulator.Tags().get("scalars", []):
        if not tag.startswith(prefix):
            continue
        # by wall time, not file order: two event files opened in the same second are read in
        # the lexicographic order of their counter suffix ("10" before "9")
        by_step = {event.step: event.value for event in sorted(accumulator.Scalars(tag), key=lambda e: e.wall_time)}
        steps = np.array(sorted(by_step), dtype=np.int64)
        out[tag] = (steps, np.array([by_step[s] for s in steps], dtype=np.float64))
    return out


def read_images(logs_dir: str | os.PathLike, prefix: str) -> dict[str, dict[int, np.ndarray]]:
    """tag -> {step: HxWx3 uint8 image} of every image tag starting with `prefix`."""
    from PIL import Image

    accumulator = _accumulator(logs_dir, "images")
    if accumulator is None:
        return {}
    out: dict[str, dict[int, np.ndarray]] = {}
    for tag in accumulator.Tags().get("images", []):
        if tag.startswith(prefix):
            out[tag] = {event.step: np.asarray(Image.open(io.BytesIO(event.encoded_image_string)).convert("RGB"))
                        for event in accumulator.Images(tag)}
    return out
