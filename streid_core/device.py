"""Pick the compute device at run time: CUDA where present, else the CPU."""
from __future__ import annotations

import torch

from .errors import StreidError


def resolve_device(name: str = "auto") -> torch.device:
    """Map 'auto' | 'cpu' | 'cuda' | 'cuda:N' to a torch.device that exists on this machine."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise StreidError(f"--device {name}: no CUDA device is visible here; use --device cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise StreidError(f"--device {name}: not a device name; use auto, cpu, cuda or cuda:N") from None
