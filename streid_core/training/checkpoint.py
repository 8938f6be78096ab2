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
reads it: loading a checkpoint never runs code from the file. Reading one back (and rebuilding
the encoder) is `models.loading`.
"""
from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_file

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
