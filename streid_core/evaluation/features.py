"""Descriptors of images by a trained encoder (`pipeline.evaluate_reid` turns them into metrics).

The original evaluation (docs/original-system.md §7): each image of query ∪ gallery is embedded once, at the test
transform (resize, ImageNet normalisation), by the encoder in eval mode; no flip. streid adds
optional bf16 autocast and flip averaging (the mean of the image's and its mirror's
descriptors), both off by default so published numbers are reproduced.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..data.preprocessor import ReidImageDataset
from ..data.records import Record
from ..errors import StreidError
from ..numerics import check_bf16, say
from ..seeding import seed_worker


def _bf16_or_none(model: nn.Module, images: torch.Tensor) -> torch.dtype | None:
    """bfloat16 if this CPU's bf16 kernels agree with float32 on `model` and `images`."""
    check = check_bf16(lambda: [model(images)])
    if check.agrees:
        return torch.bfloat16
    say(check.message("feature extraction"))
    return None


def extract_features(
    model: nn.Module,
    records: Sequence[Record],
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    flip: bool = False,
    num_workers: int = 0,
    height: int = 256,
    width: int = 128,
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Embed `records` with `model` (already on `device`; its eval-mode forward returns the
    descriptor). Returns (float32 CPU features (N, D), pids (N,), camids (N,)) in record order.

    dtype: torch.bfloat16 (or float16 on CUDA) runs the network under autocast; None = float32.
        bf16 on the CPU first passes the self-check of numerics.py on the first batch, or the
        extraction runs in float32 and says so.
    flip: average the descriptors of each image and its horizontal mirror.
    The model's train/eval mode is restored afterwards.
    """
    if not records:
        raise StreidError("no images to embed: the record list is empty")
    if batch_size < 1:
        raise StreidError(f"batch size {batch_size}: must be >= 1")
    device = torch.device(device)
    dataset = ReidImageDataset(records, {}, "test", height=height, width=width)
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
        worker_init_fn=seed_worker, pin_memory=device.type == "cuda",
    )
    was_training = model.training
    model.eval()
    chunks: list[torch.Tensor] = []
    try:
        check_pending = dtype == torch.bfloat16 and device.type == "cpu"
        with torch.inference_mode():
            for batch in loader:
                images = batch["image"].to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                if check_pending:  # on the first batch the loop reads anyway: no second pass over the data
                    dtype, check_pending = _bf16_or_none(model, images), False
                with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                    feats = model(images).float()
                    if flip:
                        feats = (feats + model(torch.flip(images, dims=[3])).float()) / 2
                chunks.append(feats.cpu())
    finally:
        model.train(was_training)
    pids = np.array([r.pid for r in records], dtype=np.int64)
    camids = np.array([r.camid for r in records], dtype=np.int64)
    return torch.cat(chunks), pids, camids
