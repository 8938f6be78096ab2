"""How code follows a run of the shared training loop: `fit(..., hooks=[...])` calls each hook
at fixed points of its lifecycle, in the order given (fast-reid's HookBase, without its
registry):

    before_train(ctx)                           after resume, before the first epoch
      before_epoch(ctx, epoch)                  networks in train mode
        after_step(ctx, epoch, iteration, losses)   losses averaged over processes, finite
      after_epoch(ctx, epoch, metrics)          after evaluation, before the checkpoint
    after_train(ctx, result)                    after the final test

A hook that raises stops the run with its error; the checkpoint on disk is then the last epoch
whose hooks all returned. Hooks write (files, TensorBoard, notebook output), so they run on the
main process only, unless a hook sets `main_process_only = False`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .run_logging import RunLog

if TYPE_CHECKING:
    from .engine import FitResult


@dataclass(frozen=True)
class TrainContext:
    """What a hook may use: the task, the run's log (log.txt lines, and TensorBoard scalars and
    images through the run's one writer) and how many iterations an epoch has."""

    task: Any  # the TrainingTask being trained
    log: RunLog
    iterations: int  # per epoch
    is_main: bool = True

    @property
    def logs_dir(self) -> Path:
        return self.log.logs_dir


class TrainingHook:
    """Does nothing at every point; a hook overrides the points it needs."""

    main_process_only = True

    def before_train(self, ctx: TrainContext) -> None:
        pass

    def before_epoch(self, ctx: TrainContext, epoch: int) -> None:
        pass

    def after_step(self, ctx: TrainContext, epoch: int, iteration: int, losses: dict[str, float]) -> None:
        """`iteration`: 1-based within the epoch."""

    def after_epoch(self, ctx: TrainContext, epoch: int, metrics: dict[str, float]) -> None:
        """`metrics`: the epoch's evaluation as logged to TensorBoard ("val/mAP", or "test/mAP"
        when selecting on the test set); empty when the epoch was not evaluated."""

    def after_train(self, ctx: TrainContext, result: FitResult) -> None:
        pass
