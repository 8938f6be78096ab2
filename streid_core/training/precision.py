"""Mixed precision for training steps: the loss scaler. Tasks wrap their forward passes in
streid_core.numerics.autocast (bf16 on CPU or CUDA, fp16 on CUDA; "off" a no-op, as below every
layer evaluation, models and tracking use it too) and step through this GradScaler, which is
active only for fp16."""
from __future__ import annotations

import torch


def grad_scaler(amp: str, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaler: active only for fp16, where small gradients would underflow."""
    return torch.amp.GradScaler(device.type, enabled=amp == "fp16")
