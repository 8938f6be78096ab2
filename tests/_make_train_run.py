"""Tiny training runs for the trainer tests: a dataset on disk and a BaselineConfig that trains
a ResNet-18 on 32x16 inputs for a few iterations on the CPU."""
from __future__ import annotations

from pathlib import Path

from _make_datasets import make_openreid

from streid_core.training.config import BaselineConfig, ReleaseQuirks

DATASET = "Tiny"


def tiny_openreid(root: Path, trainval: int = 12, test: int = 4) -> Path:
    """An open-reid dataset `root/Tiny`: 2 cameras x 3 images per identity, colour-coded pids.
    Returns the data dir (`root`)."""
    make_openreid(root / DATASET, trainval_pids=range(trainval), test_pids=range(trainval, trainval + test),
                  num_cameras=2, per_camera=3)
    return root


def tiny_config(data_dir: Path, logs_dir: Path, **overrides) -> BaselineConfig:
    """Deterministic CPU config: ResNet-18, 32x16, batches of 4 triplets, 2 iterations per epoch."""
    values = dict(
        dataset=DATASET.lower(), data_dir=str(data_dir), logs_dir=str(logs_dir), arch="resnet18",
        height=32, width=16, batch_size=4, workers=0, epochs=2, eval_step=1, soft_margin=True,
        inst_mode=True, use_bn=True, label_smoothing=True, lr=1e-3, step_size=2, device="cpu",
        deterministic=True, max_iters_per_epoch=2, seed=3,
    )
    values.update(overrides)
    return BaselineConfig(**values)


def cli_args(config: BaselineConfig) -> list[str]:
    """The `streid baseline` command line equivalent to `config` (non-default values only)."""
    default = BaselineConfig()
    args = ["baseline"]
    for name, value in vars(config).items():
        if value == getattr(default, name):
            continue
        if name == "quirks":
            if value != ReleaseQuirks.release():
                raise ValueError(f"quirks {value}: streid baseline sets all of them (--release-compat) or none")
            args.append("--release-compat")
            continue
        flag = "--" + name.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is not False and value is not None:
            args += [flag, str(value)]
    return args


def single_thread():
    """Generator for an autouse fixture: torch on one thread during a test, restored after. On a
    shared 2-core machine two OpenMP threads that wait for each other are many times slower
    than one; the tests' tensors are tiny anyway."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
