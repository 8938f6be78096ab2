"""How ST-ReIDNet's losses combine: G's objective, and the (pose, image) pairs Dp judges."""
from __future__ import annotations

import torch
from torch import Tensor

from ..losses import reconstruction_loss


def generator_objective(gan_di: Tensor, gan_dp: Tensor, rec_self: Tensor, rec_swap: Tensor,
                        lambda_d: float, lambda_dp: float, lambda_recon: float) -> Tensor:
    """L_G = lambda_d L_Di + lambda_dp L_Dp + lambda_recon (0.7 L_swap + 0.3 L_self)."""
    return lambda_d * gan_di + lambda_dp * gan_dp + lambda_recon * reconstruction_loss(rec_swap, rec_self)


def pose_discriminator_pairs(pose: Tensor, targets: Tensor, fake: Tensor, swap_fake: Tensor
                             ) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """Dp's real and fake (pose, image) batches (docs/original-system.md §3.2, paper eq. 5).

    pose, targets: (3b, ...) [anchors; positives; negatives]; fake: the three self-
    reconstructions (3b); swap_fake: [G(p, e+); G(p+, e)] (2b).
    real: (pose, targets). fake: (a) (pose, fake), (b) ([p; p+], swap_fake), (c) mismatched real
    pairs ([p+; p], [t; t+]) — a real image in the wrong pose must be judged fake too, which is
    what teaches Dp to check the pose rather than the realism.
    """
    b = pose.shape[0] // 3
    pair_pose = pose[: 2 * b]
    swapped_pose = torch.cat([pose[b: 2 * b], pose[:b]])
    fake_pose = torch.cat([pose, pair_pose, swapped_pose])
    fake_images = torch.cat([fake, swap_fake, targets[: 2 * b]])
    return (pose, targets), (fake_pose, fake_images)
