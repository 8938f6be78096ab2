"""Every loss of the baseline and of ST-ReIDNet (docs/original-system.md §3).

- batch-hard triplet (soft or hard margin) on raw features with Euclidean distances
- label-smoothed cross entropy for ID classification, binary CE for the Siamese head
- BCE-with-logits GAN loss with the release's optional label smoothing / rare label swap
- masked L1 reconstruction and the 0.7 swap + 0.3 self combination
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from streid_core.errors import StreidError

# The release draws its discriminator label swap from a list of 1 True and 10000 False.
RELEASE_SWAP_PROBABILITY = 1.0 / 10001


# ---------------------------------------------------------------- triplet


def euclidean_distances(features: Tensor) -> Tensor:
    """(N, D) -> (N, N) Euclidean distances, sqrt of squared distances clamped at 1e-12.

    The clamp keeps the gradient of sqrt finite on the diagonal. Computed in float32 even under
    bf16 autocast: distance differences are what the triplet loss ranks.
    """
    x = features.float()
    squared = x.pow(2).sum(1)
    d2 = squared[:, None] + squared[None, :] - 2.0 * (x @ x.T)
    return d2.clamp(min=1e-12).sqrt()


def batch_hard_distances(features: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Per row: hardest positive distance d_ap and hardest negative distance d_an.

    d_ap = max distance to another sample of the same ID. As in the release (a max over the
    distance row multiplied by the positive mask), a row whose ID has no other sample in the batch
    gets d_ap = 0 — its loss then only pushes the nearest negative away.
    d_an = min distance to a sample of a different ID.
    """
    dist = euclidean_distances(features)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive = same & ~eye
    d_ap = (dist * positive).amax(dim=1)
    if bool(same.all(dim=1).any()):
        raise StreidError(
            "a triplet batch row has no sample of another identity; sample at least 2 identities per batch")
    d_an = dist.masked_fill(same, float("inf")).amin(dim=1)
    return d_ap, d_an


def batch_hard_triplet_loss(
    features: Tensor,
    labels: Tensor,
    *,
    margin: float | Literal["soft"] = "soft",
    anchor_rows: int | None = None,
) -> Tensor:
    """Batch-hard triplet loss on raw (un-normalised) features.

    margin="soft": mean softplus(-(d_an - d_ap)), with d_an - d_ap clamped at >= -50 as the release.
    margin=float m: mean relu(m - (d_an - d_ap)).
    anchor_rows: only the first `anchor_rows` rows act as anchors; all rows stay candidates.
        ST-ReIDNet passes [anchors; positives; negatives] with anchor_rows = 2 * triplets (its
        "distractor" mode); None (the baseline) uses every row as an anchor.
    """
    d_ap, d_an = batch_hard_distances(features, labels)
    if anchor_rows is not None:
        if not 1 <= anchor_rows <= len(labels):
            raise ValueError(f"anchor_rows must be in [1, {len(labels)}], got {anchor_rows}")
        d_ap, d_an = d_ap[:anchor_rows], d_an[:anchor_rows]
    gap = d_an - d_ap
    if margin == "soft":
        return F.softplus(-gap.clamp(min=-50.0)).mean()
    return F.relu(float(margin) - gap).mean()


# ---------------------------------------------------------------- classification


def label_smoothed_cross_entropy(logits: Tensor, targets: Tensor, epsilon: float = 0.1) -> Tensor:
    """Batch mean of -sum_k q_k log softmax(logits)_k with q = (1 - eps) onehot + eps / K."""
    return F.cross_entropy(logits.float(), targets, label_smoothing=epsilon)


def siamese_verification_loss(pair_logits: Tensor, labels: Tensor) -> Tensor:
    """Binary same/different cross entropy for the Siamese head.

    labels: IDs of the whole batch (N,); pair i is (row i, row i + N/2), as the encoder's Siamese
    head pairs the two halves. Target 1 = same ID, 0 = different.
    """
    half = len(labels) // 2
    if len(labels) % 2 or pair_logits.shape[0] != half:
        raise ValueError(f"expected {half} pair logits for {len(labels)} labels (even batch), got {pair_logits.shape[0]}")
    same = (labels[:half] == labels[half:]).long()
    return F.cross_entropy(pair_logits.float(), same)


# ---------------------------------------------------------------- adversarial


def bce_with_logits(logits: Tensor, target: float) -> Tensor:
    """Mean BCE-with-logits against one scalar target for every element (every patch for Dp)."""
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


@dataclass(frozen=True)
class GANLoss:
    """BCE-with-logits GAN objective.

    smooth_labels: discriminator targets drawn once per call, real ~ U(0.9, 1.0), fake ~ U(0.0, 0.1).
    swap_probability: chance per discriminator step that real and fake targets trade places (the
        release uses RELEASE_SWAP_PROBABILITY with --smooth-label, 0 otherwise).
    Generator targets are never smoothed. Random draws use `generator` (a torch.Generator) or,
    when None, torch's global RNG.
    """

    smooth_labels: bool = False
    swap_probability: float = 0.0

    def target(self, is_real: bool, generator: torch.Generator | None = None) -> float:
        if not self.smooth_labels:
            return 1.0 if is_real else 0.0
        u = float(torch.rand((), generator=generator))
        return 0.9 + 0.1 * u if is_real else 0.1 * u

    def discriminator_loss(
        self, real_logits: Tensor, fake_logits: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """0.5 * [BCE(real, real target) + BCE(fake, fake target)]."""
        if self.swap_probability > 0 and float(torch.rand((), generator=generator)) < self.swap_probability:
            real_logits, fake_logits = fake_logits, real_logits
        real = bce_with_logits(real_logits, self.target(True, generator))
        fake = bce_with_logits(fake_logits, self.target(False, generator))
        return 0.5 * (real + fake)

    def generator_loss(self, fake_logits: Tensor) -> Tensor:
        """BCE(fake, 1): the generator wants its images judged real."""
        return bce_with_logits(fake_logits, 1.0)


# ---------------------------------------------------------------- reconstruction


def masked_l1_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None, alpha: float = 9.0) -> Tensor:
    """(L1(pred, target) + alpha * L1(pred * m, target * m)) / (1 + alpha); plain mean L1 without mask.

    Both terms are means over all N*C*H*W elements (the masked term is not renormalised by the
    mask area), as in the release. mask: (N, H, W) or (N, 1, H, W), broadcast over channels.
    """
    global_loss = F.l1_loss(pred, target)
    if mask is None:
        return global_loss
    if mask.dim() == pred.dim() - 1:
        mask = mask.unsqueeze(1)
    mask = mask.to(pred.dtype)
    masked_loss = F.l1_loss(pred * mask, target * mask)
    return (global_loss + alpha * masked_loss) / (1.0 + alpha)


def painting_l1_loss(painting: Tensor, target: Tensor) -> Tensor:
    """Mean |RGB - target| over the pixels a limb painting covers (models/limb_painting.py):
    painting (N, 4, H, W) = RGB and coverage in {0, 1}; target (N, 3, H, W), both in [-1, 1].
    0 where nothing is covered."""
    cover = painting[:, 3:4].float()
    error = ((painting[:, :3].float() - target.float()).abs() * cover).sum()
    return error / (3.0 * cover.sum()).clamp_min(1.0)


def reconstruction_loss(swap_loss: Tensor, self_loss: Tensor, swap_weight: float = 0.7) -> Tensor:
    """L_rec = 0.7 * L_swap (identity swapped within the positive pair) + 0.3 * L_self."""
    return swap_weight * swap_loss + (1.0 - swap_weight) * self_loss
