"""The smoke-size training runs the notebooks fall back on, so that the evaluation notebook
runs alone on a fresh checkout: ResNet-18 at 64x32, one epoch of three iterations, on the CPU.
The same settings as the default parameters of notebooks 02 and 03."""
from __future__ import annotations

import os
from pathlib import Path

from ..training.config import BaselineConfig
from .training_runs import TrainingRun, finished_run, reuse_or_train

RUN_FOLDERS = {"baseline": "baseline", "ST-ReIDNet": "streidnet"}


def smoke_baseline_config(data_dir: str | os.PathLike, dataset: str, logs_dir: str | os.PathLike) -> BaselineConfig:
    return BaselineConfig(
        dataset=dataset, data_dir=str(data_dir), logs_dir=str(logs_dir), arch="resnet18", height=64, width=32,
        batch_size=4, workers=0, epochs=1, eval_step=1, soft_margin=True, inst_mode=True, use_bn=True,
        label_smoothing=True, lr=3e-4, device="cpu", max_iters_per_epoch=3, seed=1)


def smoke_streidnet_config(data_dir: str | os.PathLike, dataset: str, logs_dir: str | os.PathLike):
    from ..training.streidnet_config import StreidNetConfig, StreidNetRunConfig

    model = StreidNetConfig(num_classes=0, arch="resnet18", height=64, width=32, niter=1, niter_decay=0, lr=1e-3,
                            mask=True, soft_margin=True, emb_smooth=True, lambda_recon=10.0, lambda_d=0.1, lambda_dp=0.1,
                            device="cpu")
    logs_dir = Path(logs_dir)
    return StreidNetRunConfig(model=model, dataset=dataset, dataroot=str(data_dir), checkpoints=str(logs_dir.parent),
                              name=logs_dir.name, batch_size=4, workers=0, skip_frame=10, max_iters_per_epoch=3,
                              eval_step=1, seed=1, display=None)


def report_runs(runs_dir: str | os.PathLike, data_dir: str | os.PathLike, dataset: str) -> dict[str, TrainingRun]:
    """The baseline and ST-ReIDNet runs under `runs_dir` (`baseline/`, `streidnet/`): finished runs
    are used whatever their settings; a missing one is trained at smoke size first."""
    runs = {}
    for label, folder in RUN_FOLDERS.items():
        logs_dir = Path(runs_dir) / folder
        run = finished_run(logs_dir)
        if run is None:
            if label == "baseline":
                from ..training.baseline import train_baseline

                run = reuse_or_train(train_baseline, smoke_baseline_config(data_dir, dataset, logs_dir))
            else:
                from ..training.streidnet_run import train_streidnet

                run = reuse_or_train(train_streidnet, smoke_streidnet_config(data_dir, dataset, logs_dir))
        runs[label] = run
    return runs
