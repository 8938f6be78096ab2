"""Mixed precision for training steps: bf16 autocast (CPU or CUDA) or fp16 autocast with loss
scaling (CUDA only). Tasks wrap their forward passes in `autocast` and step through `GradScaler`
so the same code runs in every mode; "off" makes both no-ops. The device-independent part
(`amp_dtype`, `check_amp`, `autocast`) lives in streid_core.numerics, below every layer, so that
evaluation, models and tracking use it too."""
from __future__ import annotations

import torch

from ..numerics import amp_dtype, autocast, check_amp

__all__ = ["amp_dtype", "autocast", "check_amp", "grad_scaler"]


def grad_scaler(amp: str, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaler: active only for fp16, where small gradients would underflow."""
    return torch.amp.GradScaler(device.type, enabled=amp == "fp16")
