"""Tiny ST-ReIDNet configs and batches for tests: ResNet-18 encoder, 64x32 canvas, b triplets
laid out [anchors; positives; negatives] like TripletBatchSampler's batches."""
from __future__ import annotations

import torch

from streid_core.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from streid_core.training.streidnet_config import StreidNetConfig

HEIGHT, WIDTH = 64, 32
NUM_JOINTS = 17


def tiny_config(**overrides) -> StreidNetConfig:
    values = dict(num_classes=4, arch="resnet18", height=HEIGHT, width=WIDTH, soft_margin=True, mask=True,
                  lambda_d=0.1, lambda_dp=0.1, lambda_recon=10.0, niter=2, niter_decay=2)
    values.update(overrides)
    return StreidNetConfig(**values)


def normalise(unit: torch.Tensor) -> torch.Tensor:
    """[0, 1] pixels (N, 3, H, W) -> ImageNet-normalised, as the dataset delivers images."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (unit - mean) / std


def tiny_batch(b: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """b triplets: anchor i and positive i share identity i % 2 (0/1); negatives are 2/3."""
    g = torch.Generator().manual_seed(seed)
    n = 3 * b
    unit = torch.rand(n, 3, HEIGHT, WIDTH, generator=g)
    anchor_ids = torch.arange(b) % 2
    return {
        "image": normalise(unit),
        "target": normalise(unit),
        "pose": torch.rand(n, NUM_JOINTS, HEIGHT, WIDTH, generator=g),
        "mask": (torch.rand(n, 1, HEIGHT, WIDTH, generator=g) > 0.5).float(),
        "label": torch.cat([anchor_ids, anchor_ids, 2 + anchor_ids]),
    }


def one_thread():
    """Generator for an autouse fixture: torch on one thread while a test module runs. On this
    shared 2-core machine two OpenMP threads per process thrash against the other processes
    (an iteration takes 5-30 s instead of 1-2 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
