"""Mixed precision for training steps: bf16 autocast (CPU or CUDA) or fp16 autocast with loss
scaling (CUDA only). Tasks wrap their forward passes in `autocast` and step through `GradScaler`
so the same code runs in every mode; "off" makes both no-ops."""
from __future__ import annotations

import contextlib

import torch

from ..errors import StreidError

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def amp_dtype(amp: str) -> torch.dtype | None:
    """The autocast dtype of an --amp mode, None for "off"."""
    return _DTYPES.get(amp)


def check_amp(amp: str, device: torch.device) -> None:
    if amp == "fp16" and device.type != "cuda":
        raise StreidError("--amp fp16 needs a CUDA device (fp16 kernels are GPU-only); use --amp bf16 on the CPU")


def autocast(amp: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast context for `amp` on `device`; a null context when amp is "off"."""
    dtype = amp_dtype(amp)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(amp: str, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaler: active only for fp16, where small gradients would underflow."""
    return torch.amp.GradScaler(device.type, enabled=amp == "fp16")
