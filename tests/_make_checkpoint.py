"""A small streid checkpoint for tests of the commands that read one (evaluate, export)."""
from __future__ import annotations

from pathlib import Path

import torch

from streid_core.models.loading import FORMAT, VERSION, EncoderConfig
from streid_core.training.checkpoint import save_checkpoint


def make_checkpoint(path: Path, arch: str = "resnet18", height: int = 64, width: int = 32, seed: int = 0,
                    **encoder_options) -> Path:
    """Write a checkpoint holding a randomly initialised encoder (what `load_encoder` reads)."""
    torch.manual_seed(seed)
    config = EncoderConfig(arch=arch, height=height, width=width, **encoder_options)
    encoder = config.build()
    save_checkpoint(path, {"format": FORMAT, "version": VERSION, "epoch": 1,
                           "encoder": encoder.state_dict(), "encoder_config": config.as_dict()})
    return path
