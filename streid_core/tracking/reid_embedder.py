"""Turn a re-ID encoder into the tracker's `embedder(frame, boxes) -> (N, D)` callable."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..numerics import Precision
from .tracker import Embedder

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _crop(image: torch.Tensor, box: np.ndarray) -> torch.Tensor:
    """The box's pixels (rounded to whole pixels, clipped to the image, at least 1x1)."""
    _, height, width = image.shape
    x, y, w, h = (float(v) for v in box)
    x0 = min(max(int(round(x)), 0), width - 1)
    y0 = min(max(int(round(y)), 0), height - 1)
    x1 = min(max(int(round(x + w)), x0 + 1), width)
    y1 = min(max(int(round(y + h)), y0 + 1), height)
    return image[:, y0:y1, x0:x1]


def make_reid_embedder(model: torch.nn.Module, height: int, width: int,
                       device: torch.device | str = "cpu", amp: str = "off") -> Embedder:
    """An embedder that crops each box, resizes it to height x width, normalises it with the
    ImageNet mean and std, and runs `model` (in eval mode, under inference_mode) on all crops
    of a frame as one batch. `model(batch (N,3,H,W)) -> (N, D)` features.

    amp: off (float32), bf16 or fp16 (CUDA only) autocast for the model; under bf16 on the CPU
    the first frame with boxes runs the self-check of numerics.py, and the embedder falls back
    to float32 (one line) when bf16 is off float32.

    The returned callable takes an HxWx3 RGB uint8 frame and (N,4) x, y, w, h boxes and returns
    float32 (N, D) features; with no boxes it returns an empty (0, 0) array without running the model.
    """
    device = torch.device(device)
    precision = Precision(amp, device, "re-ID embedder")
    model = model.to(device)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)

    def embed(frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, 0), dtype=np.float32)
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB frame, got shape {frame.shape} and dtype {frame.dtype}")
        image = torch.tensor(frame, device=device).permute(2, 0, 1)  # a copy: frames may be read-only
        # Resized one by one (crops differ in size) with antialiasing, as PIL-based training
        # transforms do, then stacked into a single batch for the model.
        crops = [
            F.interpolate(_crop(image, box).unsqueeze(0).float() / 255.0, size=(height, width),
                          mode="bilinear", align_corners=False, antialias=True)
            for box in boxes
        ]
        batch = (torch.cat(crops) - mean) / std
        model.eval()
        with torch.inference_mode():
            features = precision.run(lambda: model(batch))
        if not isinstance(features, torch.Tensor) or features.ndim != 2 or features.shape[0] != len(boxes):
            raise TypeError(f"the re-ID model must return an (N, D) tensor of features; got {type(features).__name__}"
                            f"{'' if not isinstance(features, torch.Tensor) else tuple(features.shape)}")
        return features.cpu().numpy()

    return embed
