"""Hue rotation of RGB images: a rotation of the colour cube about its grey diagonal.

G's appearance path learns a map from E's feature to clothing colours. With a few dozen training
dancers it learns their colours and not colour in general (reports/transfer-curve). Rotating the
hue of a source frame and of its target by the same angle makes every training pair a new
wardrobe with the same pose and shading, so the map must carry colour through E's feature.

Grey (r = g = b) stays where it is; the rotation is taken about mid-grey (0.5, 0.5, 0.5) so a
colour moves by as little as it can and the result is clamped to [0, 1] only at the cube's edge.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def hue_rotation_matrices(angles: Tensor) -> Tensor:
    """(n,) angles in radians -> (n, 3, 3) rotations about the axis (1, 1, 1) / sqrt(3)
    (Rodrigues: cos I + sin [k]x + (1 - cos) k k^T)."""
    c, s = torch.cos(angles)[:, None, None], torch.sin(angles)[:, None, None]
    k = torch.full((3,), 1.0 / math.sqrt(3.0), dtype=angles.dtype, device=angles.device)
    cross = torch.tensor([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]],
                         dtype=angles.dtype, device=angles.device)
    eye = torch.eye(3, dtype=angles.dtype, device=angles.device)
    return c * eye + s * cross + (1.0 - c) * torch.outer(k, k)


def rotate_hue(images: Tensor, angles: Tensor) -> Tensor:
    """(n, 3, H, W) images in [0, 1], each rotated by its own angle about mid-grey, clamped to [0, 1]."""
    rotation = hue_rotation_matrices(angles.to(torch.float32)).to(images)
    centred = images - 0.5
    rotated = torch.einsum("nij,njhw->nihw", rotation, centred) + 0.5
    return rotated.clamp_(0.0, 1.0)
