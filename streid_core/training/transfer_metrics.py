"""Pose-transfer metrics while ST-ReIDNet trains: a training hook that scores E and G with the
pose-transfer evaluation (`evaluation.pose_transfer`: body L1, SSIM, pose and identity accuracy, E
rank-1 of the drawings, on held-out test dancers) every `every` iterations and after the last one.

Each evaluation is one TensorBoard scalar per metric, `transfer/<metric>` at the global iteration,
through the run's own writer, the first four pairs' drawings as the image `transfer/examples`,
and one JSON line in `<logs-dir>/transfer_metrics.jsonl` (iteration,
epoch, training seconds, G's row and the two references), which notebook 03 and the reports plot.
`streid train --transfer-eval-every N` adds it. The pairs are drawn with a fixed seed, so every
point of the curve scores the same pairs.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..data.records import LoadedDataset
from ..errors import StreidError
from ..evaluation.pose_transfer import (METRICS, GeneratorDraw, TestFrames, evaluate_pose_transfer, example_grid,
                                        load_test_frames, records_to_draw, reference_mean_image)
from .hooks import TrainContext, TrainingHook

if TYPE_CHECKING:
    from .engine import FitResult

TRANSFER_METRICS_FILE = "transfer_metrics.jsonl"


def read_transfer_metrics(logs_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of `<logs_dir>/transfer_metrics.jsonl` by iteration (a resumed run that measured
    an iteration again keeps the later line); [] when the run logged none."""
    path = Path(logs_dir) / TRANSFER_METRICS_FILE
    if not path.is_file():
        return []
    by_iteration = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            by_iteration[int(row["iteration"])] = row
        except (ValueError, KeyError, TypeError):
            raise StreidError(f"{path}:{number}: not a pose-transfer metrics line; delete the file or the line") from None
    return [by_iteration[k] for k in sorted(by_iteration)]


class TransferMetricsHook(TrainingHook):
    """Evaluate pose transfer every `every` global iterations (and once after training)."""

    def __init__(self, dataset: LoadedDataset, image_size: tuple[int, int], every: int, *, pairs: int = 64,
                 seed: int = 0, imagenet_targets: bool = False) -> None:
        if every < 1:
            raise ValueError(f"evaluate every {every} iterations: must be >= 1")
        self.dataset, self.image_size, self.every = dataset, image_size, every
        self.pairs, self.seed, self.imagenet_targets = pairs, seed, imagenet_targets
        self._last = 0
        # the test frames and the mean image, read once: they do not change while training
        self._frames: TestFrames | None = None
        self._mean: torch.Tensor | None = None
        self._train_seconds = 0.0
        self._tick = time.perf_counter()

    def before_train(self, ctx: TrainContext) -> None:
        self._tick = time.perf_counter()

    def after_step(self, ctx: TrainContext, epoch: int, iteration: int, losses: dict[str, float]) -> None:
        step = (epoch - 1) * ctx.iterations + iteration
        if step % self.every == 0:
            self._evaluate(ctx, epoch, step)

    def after_train(self, ctx: TrainContext, result: FitResult) -> None:
        step = result.epochs * ctx.iterations
        if step != self._last:
            self._evaluate(ctx, result.epochs, step)

    def _evaluate(self, ctx: TrainContext, epoch: int, step: int) -> None:
        # The evaluation's own time is not training time: the curve's x axis is training seconds.
        self._train_seconds += time.perf_counter() - self._tick
        task = ctx.task
        draw = GeneratorDraw(task.encoder, task.generator, self.imagenet_targets)
        device = next(task.generator.parameters()).device
        if self._frames is None and self.dataset.keypoints != "none":  # without poses the evaluation says so
            height, width = self.image_size
            self._frames = load_test_frames(records_to_draw(self.dataset), height, width, self.dataset.keypoints)
            self._mean, _ = reference_mean_image(self.dataset, height, width)
        report = evaluate_pose_transfer(task.encoder, draw, self.dataset, self.image_size, pairs=self.pairs,
                                        seed=self.seed, device=device, examples=4, frames=self._frames,
                                        mean=self._mean)
        generator = report.scores["generator"]
        ctx.log.scalars("transfer", {m: float(generator[m]) for m in METRICS}, step)
        grid = np.asarray(example_grid(report), dtype=np.float32) / 255.0
        ctx.log.image("transfer/examples", torch.from_numpy(grid).permute(2, 0, 1), step)
        ctx.log.flush()
        row = {"iteration": step, "epoch": epoch, "train_seconds": round(self._train_seconds, 1),
               "pairs": report.pairs, **{k: report.scores[k] for k in ("generator", "source", "mean")}}
        with open(ctx.logs_dir / TRANSFER_METRICS_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        ctx.log.line(f"pose transfer at iteration {step}: body L1 {generator['body_l1']:.3f} (source "
                     f"{report.scores['source']['body_l1']:.3f}, mean image {report.scores['mean']['body_l1']:.3f}), "
                     f"pose acc. {generator['pose_accuracy']:.2f}, identity acc. {generator['identity_accuracy']:.2f}")
        self._last = step
        self._tick = time.perf_counter()
