"""ST-ReIDNet's learning rates: each network's initial rate per stage, and the linear decay of all
four over the last --niter-decay epochs."""
from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LambdaLR

from ..errors import StreidError


def stage_learning_rates(stage: int, lr: float, lr_g: float | None = None) -> dict[str, float]:
    """Initial LR of each network's optimiser (docs/original-system.md §3.5). E always uses --lr;
    the others are fixed per stage, except in stage 1 where they follow --lr. `lr_g` (--lr-g, not
    in the release) replaces G's."""
    if stage == 0:
        rates = {"E": lr, "G": 1e-5, "Di": 4e-5, "Dp": 4e-5}
    elif stage == 1:
        rates = {"E": lr, "G": 0.1 * lr, "Di": lr, "Dp": lr}
    elif stage == 2:
        rates = {"E": lr, "G": 1e-6, "Di": 1e-5, "Dp": 1e-5}
    else:
        raise StreidError(f"--stage {stage}: use 0 (end-to-end), 1 (fixed E) or 2 (fine-tune all)")
    return rates if lr_g is None else {**rates, "G": lr_g}


def lr_factor(epoch: int, niter: int, niter_decay: int, zero_last_epoch: bool = False) -> float:
    """LR multiplier during 1-based `epoch`: 1 for the first `niter` epochs, then a linear
    decay over `niter_decay` epochs that would reach 0 one epoch after the last:
        1 - max(0, epoch - niter) / (niter_decay + 1)       (50/50: epoch 51 -> 50/51, 100 -> 1/51)
    The release's rule is shifted by one epoch, so its constant phase is niter - 1 epochs and
    the last epoch trains at LR 0 (zero_last_epoch):
        1 - max(0, epoch + 1 - niter) / (niter_decay + 1)   (50/50: epoch 50 -> 50/51, 100 -> 0)
    """
    shift = 1 if zero_last_epoch else 0
    return 1.0 - max(0, epoch + shift - niter) / float(niter_decay + 1)


def linear_decay_scheduler(optimizer: torch.optim.Optimizer, niter: int, niter_decay: int,
                           zero_last_epoch: bool = False) -> LambdaLR:
    """LambdaLR stepped once per epoch; its internal counter is the 0-based epoch."""
    def factor(zero_based_epoch: int) -> float:
        return lr_factor(zero_based_epoch + 1, niter, niter_decay, zero_last_epoch)

    return LambdaLR(optimizer, factor)


