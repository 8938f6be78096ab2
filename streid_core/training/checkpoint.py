"""Checkpoints: full training state, written atomically, read with `weights_only=True`.

A streid checkpoint is a dict:

    format          "streid-checkpoint"
    version         1
    epoch           completed (1-based) epochs
    task            the task's state_dict (networks, optimisers, schedulers, loss scaler)
    encoder         the re-ID encoder's state_dict (what evaluation, export and tracking use)
    encoder_config  EncoderConfig as a dict (arch, last_stride, pool, use_bn, test_bn,
                    stem_relu, num_classes, emb_type, height, width)
    rng             python / numpy / torch / cuda generator states, as tensors and lists
    selection       best-model bookkeeping of the loop (metric, value, epoch)
    history         evaluation results so far (list of dicts)
    config          the run's configuration (JSON types)

Only tensors, numbers, strings, lists and dicts are stored, so `torch.load(weights_only=True)`
reads it: loading a checkpoint never runs code from the file.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_file
from ..errors import StreidError
from ..models.torch_file import first_line, load_torch_file
from .config import EncoderConfig

FORMAT = "streid-checkpoint"
VERSION = 1
CHECKPOINT_NAME = "checkpoint.pth.tar"  # the original's file names, so old habits still work
BEST_NAME = "model_best.pth.tar"


def capture_rng_state() -> dict[str, Any]:
    """Every generator a training run draws from, in weights_only-safe types."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """torch.save through a temporary sibling renamed into place: a crash (even SIGKILL) leaves
    either the previous file or the new one, never a torn one."""
    with atomic_file(path, "wb") as handle:
        torch.save(state, handle)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a streid checkpoint on the CPU (weights_only). Anything else is a StreidError."""
    path = Path(path)
    state = load_torch_file(path, "checkpoint", "pass the checkpoint.pth.tar or model_best.pth.tar of a streid run")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        hint = " (an open-reid/original checkpoint holds only weights: retrain with streid)" if (
            isinstance(state, dict) and "state_dict" in state) else ""
        raise StreidError(f"{path}: not a streid checkpoint{hint}")
    version = state.get("version")
    if not _is_int(version) or version < 1:
        raise StreidError(f"{path}: checkpoint version {version!r} is not a version number; the file is damaged, "
                          "use another checkpoint")
    if version > VERSION:
        raise StreidError(f"{path}: checkpoint version {version} is newer than this streid understands; update streid")
    epoch = state.get("epoch", 0)  # a weights-only file may have none; resume requires it
    if not _is_int(epoch) or epoch < 0:
        raise StreidError(f"{path}: checkpoint epoch {epoch!r} is not a number of epochs; the file is damaged, "
                          "use another checkpoint")
    return state


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def load_encoder(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, tuple[int, int]]:
    """Rebuild the inference encoder of any streid checkpoint (baseline or ST-ReIDNet).

    Returns the encoder in eval mode on `device` and the (height, width) it was trained at.
    """
    state = load_checkpoint(path)
    if "encoder" not in state or "encoder_config" not in state:
        raise StreidError(f"{path}: checkpoint has no encoder; it was not written by a streid trainer")
    config = EncoderConfig.from_checkpoint(state["encoder_config"], path)
    encoder = config.build()
    if not isinstance(state["encoder"], dict):
        raise StreidError(f"{path}: the checkpoint's encoder is not a state dict; the file is damaged, use another one")
    try:
        encoder.load_state_dict(state["encoder"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise StreidError(f"{path}: encoder weights do not match its encoder_config ({first_line(exc)}); "
                          "the file is damaged, use another checkpoint") from None
    return encoder.to(device).eval(), (config.height, config.width)
