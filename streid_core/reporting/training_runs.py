"""Training runs as notebooks and the demo use them: trained with hooks (live plots, image
grids), and reused when the same run already exists.

    run = reuse_or_train(train_baseline, config, hooks=[plot])   # trains, or reuses its folder
    run.best_checkpoint, run.test, run.history, run.reused

A run folder is reused when its results.json exists and its config.json records the same
settings (paths, worker counts and the device aside); an interrupted run (a checkpoint but no
results.json) is resumed; different settings are a StreidError asking to start over
(`reuse=False`, which clears the folder first — only if it is a streid run folder).
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ..errors import StreidError
from ..training.checkpoint import CHECKPOINT_NAME
from ..training.engine import RESULTS_NAME
from ..training.hooks import TrainingHook
from ..training.run_logging import CONFIG_NAME

# Settings that do not change what a run computes (or are filled in from the data and machine).
_IGNORED = {"resume", "logs_dir", "checkpoints", "name", "workers", "print_freq", "display", "device", "dataroot",
            "data_dir", "progress"}
_IGNORED_MODEL = {"device", "num_classes", "keypoints"}


@dataclass
class TrainingRun:
    """A finished run: its folder and what its results.json says."""

    logs_dir: Path
    results: dict[str, Any]
    reused: bool

    @property
    def best_checkpoint(self) -> Path:
        """The selected model (model_best.pth.tar, or the last checkpoint without selection)."""
        return Path(self.results["checkpoint"])

    @property
    def last_checkpoint(self) -> Path:
        return self.logs_dir / CHECKPOINT_NAME

    @property
    def test(self) -> dict[str, float]:
        return self.results["test"]

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.results["history"]


# ------------------------------------------------------------------ reuse


def finished_run(logs_dir: str | os.PathLike) -> TrainingRun | None:
    """The finished run in `logs_dir` whatever its settings, or None when it holds none."""
    results = Path(logs_dir) / RESULTS_NAME
    if not results.is_file():
        return None
    return TrainingRun(Path(logs_dir), json.loads(results.read_text(encoding="utf-8")), reused=True)


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """The settings that decide what a run computes, in JSON types."""
    plain = json.loads(json.dumps(config))
    out = {k: v for k, v in plain.items() if k not in _IGNORED}
    if isinstance(out.get("model"), dict):
        out["model"] = {k: v for k, v in out["model"].items() if k not in _IGNORED_MODEL}
    return out


def _differences(stored: dict[str, Any], wanted: dict[str, Any], prefix: str = "") -> list[str]:
    diff = []
    for key in sorted(set(stored) | set(wanted)):
        a, b = stored.get(key), wanted.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diff += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            diff.append(f"{prefix}{key}={a!r} (now {b!r})")
    return diff


def prepare_run_dir(logs_dir: Path, run_config: dict[str, Any], reuse: bool) -> tuple[dict[str, Any] | None, str]:
    """Decide what to do with `logs_dir`: returns (results to reuse or None, checkpoint to resume
    or ""). With reuse=False an existing streid run folder is cleared first."""
    config_file, results_file, last = logs_dir / CONFIG_NAME, logs_dir / RESULTS_NAME, logs_dir / CHECKPOINT_NAME
    if not reuse and logs_dir.exists():
        if any(logs_dir.iterdir()) and not (config_file.exists() or last.exists()):
            raise StreidError(f"{logs_dir}: not a streid run folder, refusing to clear it; choose another logs dir")
        shutil.rmtree(logs_dir)
    if not (config_file.exists() and last.exists()):
        return None, ""
    stored = json.loads(config_file.read_text(encoding="utf-8")).get("config", {})
    diff = _differences(_comparable(stored), _comparable(run_config))
    if diff:
        raise StreidError(f"{logs_dir} holds a run with other settings ({'; '.join(diff[:4])}); start over with "
                          "reuse=False (streid demo --fresh) or choose another logs dir")
    if results_file.exists():
        return json.loads(results_file.read_text(encoding="utf-8")), ""
    return None, str(last)


def reuse_or_train(train: Callable[..., Any], config: Any, hooks: Sequence[TrainingHook] = (),
                   reuse: bool = True) -> TrainingRun:
    """`train(config, hooks=hooks)` (`train_baseline` or `train_streidnet`), or reuse / resume
    the run folder of `config` (see the module doc)."""
    logs_dir = Path(config.loop_config().logs_dir)
    reused, resume = prepare_run_dir(logs_dir, asdict(config), reuse)
    if reused is not None:
        return TrainingRun(logs_dir, reused, reused=True)
    train(replace(config, resume=resume), hooks=hooks)
    return replace(finished_run(logs_dir), reused=False)


# ------------------------------------------------------------------ checkpoints of runs


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file as given, or for a run folder the checkpoint its results.json selected."""
    path = Path(path)
    if path.is_dir():
        run = finished_run(path)
        if run is None:
            raise StreidError(f"{path}: no finished run ({RESULTS_NAME} missing); train it first or pass a checkpoint file")
        return run.best_checkpoint
    return path


def encoder_last_stride(checkpoint: str | os.PathLike) -> int:
    """The layer-4 stride a streid checkpoint's encoder (or a run folder's selected one) was trained
    with. A trunk taken from it with `encoder_trunk_weights` must run at that stride: the same
    weights at the other stride give other features (the demo's ST-ReIDNet lost 7 test mAP points
    when a stride-1 baseline trunk ran at the release's default stride 2)."""
    from ..models.loading import load_checkpoint

    path = resolve_checkpoint(checkpoint)
    config = load_checkpoint(path).get("encoder_config") or {}
    if config.get("last_stride") not in (1, 2):
        raise StreidError(f"{path}: its encoder configuration records no last stride; pass a streid run's checkpoint")
    return int(config["last_stride"])


def encoder_trunk_weights(checkpoint: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the ResNet trunk of a streid checkpoint's encoder (or a run folder's selected one) as a torchvision-style state dict
    (the format `--pretrained` reads), e.g. to start ST-ReIDNet's E from a trained baseline
    where no ImageNet weights are available. Written atomically; returns `out`."""
    from ..atomic import atomic_file
    from ..models.loading import load_checkpoint

    state = load_checkpoint(resolve_checkpoint(checkpoint))
    trunk = {k[len("trunk."):]: v for k, v in state["encoder"].items() if k.startswith("trunk.")}
    if not trunk:
        raise StreidError(f"{checkpoint}: its encoder has no ResNet trunk weights; pass a streid run's checkpoint")
    with atomic_file(out, "wb") as handle:
        torch.save(trunk, handle)
    return Path(out)

