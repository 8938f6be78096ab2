"""Cache extracted descriptors on disk, keyed by the model and the images they came from.

Embedding a test set is the slow part of an evaluation (DanceReID: 19,526 images, ~10 min on a
CPU); trying another protocol, AP convention, re-ranking or figure should not redo it.

One cache file per *slot*: the same model source (checkpoint path, or an in-memory module's
weights), the same record paths in the same order, input size, flip and dtype. Inside the
file is a *stamp*: the checkpoint's fingerprint and every image file's size and mtime. A
lookup is a hit only when slot and stamp both match; otherwise the features are extracted
again and the slot's file is replaced (atomically). So a checkpoint.pth.tar rewritten every
epoch, or a dataset regenerated in place, invalidates its entry instead of piling up files.

Checkpoint fingerprint: size + mtime + SHA-1 of the first MiB (fast, the default), or the
SHA-1 of the whole file (`full_hash=True`, for checkpoints copied with their mtime preserved).
An in-memory module's fingerprint is the SHA-1 of its weights and buffers plus each
submodule's class and plain settings (e.g. the encoder's `test_bn`, which changes the output
without changing any weight).
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_file
from ..data.images import H5_SEPARATOR
from ..data.records import Record
from ..errors import StreidError

# Bump when the extraction itself changes (preprocessing, descriptor definition): every
# existing entry then misses.
CACHE_VERSION = 1
_HEAD_BYTES = 2**20


@dataclass
class CachedFeatures:
    """Descriptors of `records` in their order, and where they came from."""

    features: np.ndarray  # (N, D) float32
    pids: np.ndarray  # (N,) int64
    camids: np.ndarray  # (N,) int64
    path: Path  # the cache file
    hit: bool  # True when read from the cache, False when extracted now


def checkpoint_fingerprint(path: str | os.PathLike, full_hash: bool = False) -> str:
    """Identify a checkpoint file's content: size, mtime and SHA-1 of its first MiB, or the
    SHA-1 of the whole file."""
    path = Path(path)
    if not path.is_file():
        raise StreidError(f"{path}: checkpoint not found; pass the checkpoint.pth.tar or model_best.pth.tar of a run")
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        if full_hash:
            for block in iter(lambda: handle.read(_HEAD_BYTES), b""):
                digest.update(block)
            return f"sha1:{digest.hexdigest()}"
        digest.update(handle.read(_HEAD_BYTES))
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}:{digest.hexdigest()}"


def module_fingerprint(model: nn.Module) -> str:
    """SHA-1 of a module's weights, buffers, submodule classes and plain attributes."""
    digest = hashlib.sha1()
    for name, module in model.named_modules():
        settings = {k: v for k, v in vars(module).items()
                    if not k.startswith("_") and k != "training" and isinstance(v, (bool, int, float, str, tuple))}
        digest.update(f"{name}:{type(module).__qualname__}:{sorted(settings.items())!r}".encode())
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _image_file(record_path: str) -> str:
    return record_path.split(H5_SEPARATOR, 1)[0]


def images_fingerprint(records: Sequence[Record]) -> str:
    """SHA-1 over each image file's size and mtime (the HDF5 file for "<file.h5>::<key>" paths)."""
    digest = hashlib.sha1()
    seen: dict[str, str] = {}
    for record in records:
        file = _image_file(record.path)
        if file not in seen:
            try:
                stat = os.stat(file)
                seen[file] = f"{stat.st_size}:{stat.st_mtime_ns}"
            except OSError:
                seen[file] = "missing"  # extraction will report it; the stamp just cannot match
        digest.update(f"{record.path}|{seen[file]}\n".encode())
    return digest.hexdigest()


def _dtype_name(dtype: torch.dtype | None) -> str:
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")


def _json_key(obj: dict) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _read_entry(path: Path, stamp: str, count: int) -> np.ndarray | None:
    """The cached features if `path` holds an intact entry with this stamp, else None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["stamp"]) != stamp:
                return None
            features = data["features"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # a damaged entry is a miss: it gets rewritten
    if features.ndim != 2 or len(features) != count:
        return None
    return features


def cached_features(
    model_or_checkpoint: nn.Module | str | os.PathLike,
    records: Sequence[Record],
    cache_dir: str | os.PathLike,
    *,
    height: int | None = None,
    width: int | None = None,
    flip: bool = False,
    dtype: torch.dtype | None = None,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    num_workers: int = 0,
    full_hash: bool = False,
) -> CachedFeatures:
    """Descriptors of `records` from the cache in `cache_dir`, extracting them on a miss.

    `model_or_checkpoint`: an encoder already on `device` (its eval forward returns the
    descriptor) or a streid checkpoint path; a checkpoint is only loaded on a miss.
    `height`/`width` default to the checkpoint's training size (256x128 for a module).
    flip/dtype/batch_size/device/num_workers are passed to `extract_features`; flip and dtype
    are part of the key, the others do not change the features. See the module docstring for
    what invalidates an entry.
    """
    from .features import extract_features

    if not records:
        raise StreidError("no images to embed: the record list is empty")
    if (height is None) != (width is None):
        raise StreidError(f"input size {height}x{width}: give both height and width, or neither")
    is_module = isinstance(model_or_checkpoint, nn.Module)
    if is_module:
        fingerprint = module_fingerprint(model_or_checkpoint)
        source = f"module:{fingerprint}"
        height, width = height or 256, width or 128
    else:
        checkpoint = Path(model_or_checkpoint).resolve()
        fingerprint = checkpoint_fingerprint(checkpoint, full_hash)
        source = f"checkpoint:{checkpoint}"
    size = [height, width] if height else "checkpoint"
    paths_digest = hashlib.sha1("\n".join(r.path for r in records).encode()).hexdigest()
    slot = _json_key({"version": CACHE_VERSION, "source": source, "records": paths_digest, "count": len(records),
                      "input_size": size, "flip": bool(flip), "dtype": _dtype_name(dtype)})
    stamp = _json_key({"slot": slot, "model": fingerprint, "images": images_fingerprint(records)})
    path = Path(cache_dir) / f"features-{hashlib.sha1(slot.encode()).hexdigest()[:24]}.npz"
    pids = np.array([r.pid for r in records], dtype=np.int64)
    camids = np.array([r.camid for r in records], dtype=np.int64)

    features = _read_entry(path, stamp, len(records))
    if features is not None:
        return CachedFeatures(features, pids, camids, path, hit=True)

    if is_module:
        model = model_or_checkpoint
    else:
        from ..models.loading import load_encoder

        model, (trained_h, trained_w) = load_encoder(checkpoint, device)
        height, width = (height, width) if height else (trained_h, trained_w)
    feats, _, _ = extract_features(model, records, batch_size=batch_size, device=device, dtype=dtype, flip=flip,
                                   num_workers=num_workers, height=height, width=width)
    features = feats.numpy().astype(np.float32, copy=False)
    with atomic_file(path, "wb") as handle:
        np.savez(handle, features=features, stamp=np.array(stamp), slot=np.array(slot))
    return CachedFeatures(features, pids, camids, path, hit=False)
