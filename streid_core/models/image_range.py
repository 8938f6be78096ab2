"""The pixel ranges images take between the data, E and G: ImageNet-normalised (E's input and
the release's targets), [-1, 1] (G's tanh output and streid's targets) and [0, 1] (pictures)."""
from __future__ import annotations

import torch
from torch import Tensor

from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD

_MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def imagenet_to_unit(images: Tensor) -> Tensor:
    """ImageNet-normalised images -> [0, 1] pixels (undo Normalize)."""
    return images * _STD.to(images) + _MEAN.to(images)


def imagenet_to_tanh_range(images: Tensor) -> Tensor:
    """ImageNet-normalised images -> [-1, 1], the range of G's tanh output."""
    return imagenet_to_unit(images) * 2.0 - 1.0


def generated_to_unit(images: Tensor, imagenet_targets: bool = False) -> Tensor:
    """G's output -> [0, 1] pixels, by the inverse of the mapping its targets went through:
    (x + 1) / 2 for [-1, 1] targets, un-normalising for the release's ImageNet-normalised ones."""
    if imagenet_targets:
        return imagenet_to_unit(images).clamp(0.0, 1.0)
    return ((images + 1.0) * 0.5).clamp(0.0, 1.0)
