"""A whole `streid train` run: its data (`streidnet_data`), the four networks' snapshots every
--save-step epochs, and `train_streidnet`, what the command and the notebooks call."""
from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import asdict, replace

import torch

from ..atomic import atomic_file
from ..data.dataset import load_dataset, resolve_dataset_dir
from ..data.preprocessor import ReidImageDataset
from ..data.records import LoadedDataset
from ..data.samplers import SparseTemporalTripletSampler, TripletBatchSampler
from ..data.validation import check_run_data, check_train_identities
from ..errors import StreidError
from ..models.loading import load_checkpoint
from .config import LoopConfig
from .display import TrainingDisplay
from .distributed import DistContext, rank_failure
from .engine import EvalData, FitResult, RunContext, barrier, check_resume, evaluate_split, fit, start_run
from .hooks import TrainContext, TrainingHook
from .loader import TrainData
from .streidnet import StreidNetTask
from .streidnet_config import StreidNetRunConfig, check_same_architecture
from .transfer_metrics import TransferMetricsHook


class NetworkSnapshots(TrainingHook):
    """train.py's --save-step: every `save_step` epochs, `<epoch>_net_{E,G,Di,Dp}.pth` (plain
    state dicts, as the original names them) in the run's folder; --net*-pretrain reads them back."""

    def __init__(self, save_step: int) -> None:
        if save_step < 1:
            raise StreidError(f"--save-step {save_step}: must be >= 1 (save the networks every N epochs)")
        self.save_step = save_step

    def after_epoch(self, ctx: TrainContext, epoch: int, metrics: dict[str, float]) -> None:
        if epoch % self.save_step:
            return
        for name, net in ctx.task.networks.items():
            with atomic_file(ctx.logs_dir / f"{epoch}_net_{name}.pth", "wb") as handle:
                torch.save(net.state_dict(), handle)



def streidnet_data(cfg: StreidNetRunConfig, dist: DistContext | None = None) -> tuple[TrainData, EvalData, LoadedDataset]:
    """Training data ([anchors; positives; negatives] batches of pose-annotated images), the
    evaluation sets, and the loaded dataset. With select_on="test" the model trains on all of
    trainval as the original did; with "val" the last identities are held out for selection.
    Several processes (`dist`): every rank draws the same epoch of whole triplets and keeps its
    own batch_size / world_size of each global batch."""
    dist = dist or DistContext()
    root = resolve_dataset_dir(cfg.dataroot, cfg.dataset)
    dataset = load_dataset(root, 0, combine_trainval=cfg.select_on == "test")
    if dataset.keypoints == "none":
        raise StreidError(f"{root}: the dataset has no pose files; ST-ReIDNet needs keypoints (poses/) for every "
                          "training image (streid baseline trains without them)")
    records, labels = dataset.train_set, dataset.labels
    check_train_identities(dataset, records, None if cfg.select_on == "test" else "--select-on test")  # before the sampler is built
    m = cfg.model
    images = ReidImageDataset(records, labels, "streid_train", m.height, m.width, keypoints=dataset.keypoints,
                              with_pose=True, with_mask=True, pose_aug=cfg.pose_aug, eraser=cfg.eraser,
                              release_compat=m.quirks.data_pipeline, seed=cfg.seed)
    sampler = SparseTemporalTripletSampler(records, labels, cfg.inter_rate, cfg.skip_frame, videos=dataset.videos or None,
                                           release_compat=m.quirks.data_pipeline, seed=cfg.seed,
                                           num_replicas=dist.world_size, rank=dist.rank)
    batches = TripletBatchSampler(sampler, cfg.batch_size, drop_last=True)
    if len(batches) == 0:
        most = len(records) // dist.world_size * dist.world_size
        raise StreidError(f"-b/--batch-size {cfg.batch_size}: an epoch has only {len(records)} triplets (one per "
                          f"training image); use a batch size of at most {most}")
    if cfg.select_on == "test":
        val, note = [], "--select-on test trains on all trainval identities"
    else:
        val, note = dataset.val, "" if dataset.val else "the split leaves no validation identities"
    if not cfg.skip_validation:
        check_run_data(dataset, records, val, with_poses=True, progress=dist.is_main,
                       allow_split_overlap=m.quirks.data_pipeline)
    evaluation = EvalData(query=dataset.query, gallery=dataset.gallery, protocol=dataset.protocol,
                          height=m.height, width=m.width, val=val, val_note=note)
    return TrainData(images, batches), evaluation, dataset


def train_streidnet(cfg: StreidNetRunConfig, hooks: Sequence[TrainingHook] = ()) -> FitResult:
    """Everything `streid train` does: seed, data, the four networks, network snapshots, the
    live display, fit (which also calls `hooks`). Returns the loop's FitResult."""
    cfg.validate()
    loop = cfg.loop_config()
    if loop.resume:  # refuse a resume that cannot continue this run before any work
        check_resume(loop, asdict(cfg), "--checkpoints/--name")
    run = start_run(loop)
    if not run.dist.is_distributed:
        return _train(cfg, loop, run, hooks)
    try:
        return _train(cfg, loop, run, hooks)
    except Exception as exc:  # one line naming this rank; torchrun stops the others
        raise StreidError(rank_failure(exc, run.dist)) from exc


def _train(cfg: StreidNetRunConfig, loop: LoopConfig, run: RunContext, hooks: Sequence[TrainingHook]) -> FitResult:
    train, evaluation, dataset = streidnet_data(cfg, run.dist)
    model = replace(cfg.model, num_classes=dataset.num_classes, keypoints=dataset.keypoints, device=str(run.device))
    random_init = [net for net, weights, used in (("E", model.pretrained, model.stage == 0),
                                                  ("Di", model.pretrained_di, model.stage != 2)) if used and weights is None]
    if random_init and run.dist.is_main:
        print(f"streid train: no ImageNet weights for {' and '.join(random_init)} (--pretrained): random "
              "initialisation (the paper starts from ImageNet)", file=sys.stderr)
    if loop.resume:
        check_same_architecture(load_checkpoint(loop.resume), model, f"--resume {loop.resume}")
    task = StreidNetTask(model, run.dist, cfg.sync_bn)
    if model.stage == 2 and not loop.resume and run.dist.is_main:
        metrics = evaluate_split(task.encoder, evaluation, "test", loop, run.device)
        print(f"stage 2, the loaded encoder on the test set: mAP {100 * metrics['mAP']:.1f}, R1 {100 * metrics['R1']:.1f}")
    barrier(run.dist)
    own: list[TrainingHook] = [NetworkSnapshots(cfg.save_step)]
    if cfg.display is not None and cfg.display.display_id > 0:
        own.append(TrainingDisplay(cfg.display, triplets_per_iteration=cfg.batch_size))
    if cfg.transfer_eval_every > 0:
        own.append(TransferMetricsHook(dataset, (model.height, model.width), cfg.transfer_eval_every,
                                       pairs=cfg.transfer_eval_pairs, imagenet_targets=model.quirks.imagenet_targets))
    return fit(task, train, evaluation, loop, run, model.architecture().encoder_config(),
               asdict(replace(cfg, model=model)), hooks=[*own, *hooks])
