"""What a trainer must provide so the shared training loop (engine) can run it.

The loop owns epochs, data loading, evaluation, best-model selection, checkpoints, resume,
logging and the NaN guard. A task owns its networks, optimisers, schedules and what one
iteration does. The baseline and ST-ReIDNet are the two tasks.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

from ..models.reid import ReIDEncoder


@runtime_checkable
class TrainingTask(Protocol):
    encoder: ReIDEncoder  # the network evaluation and export use

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One iteration: forward, backward, optimiser steps. Returns detached scalar losses;
        the key "loss" is the total the NaN guard watches."""

    def on_epoch_start(self, epoch: int) -> None:
        """Put networks in train mode (and freeze what must stay frozen) for 1-based `epoch`."""

    def on_epoch_end(self, epoch: int) -> None:
        """Step the learning-rate schedules after 1-based `epoch`."""

    def learning_rates(self) -> dict[str, float]:
        """Current learning rate of each optimiser parameter group, by name, for logging."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: networks, optimisers, schedulers."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        ...

    def precision_probe(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Outputs of every network on (a few rows of) `batch`, changing nothing (no running
        statistics, no gradients): what the bf16 self-check compares with float32."""

    def use_float32(self) -> None:
        """Run every later step in float32 (the bf16 self-check failed on this CPU)."""

    def visuals(self) -> dict[str, torch.Tensor] | None:
        """Images worth showing for the last iteration (name -> CxHxW in [0, 1]), or None."""
