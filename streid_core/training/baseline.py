"""The RGB re-ID baseline (the original baseline.py, docs/original-system.md §1.1, §3.3, §3.5) as a
TrainingTask.

Single: a batch of b triplets (3b images) -> encoder -> batch-hard triplet on the pre-BN pooled
    feature (every row an anchor) + ID cross entropy (label smoothing 0.1 with
    --label-smoothing) on the logits.
Siamese: a batch of b pairs (2b images) -> batch-hard triplet on the same features + binary
    same/different cross entropy of the Siamese head.
Optimiser: any torch.optim class by name (SGD with momentum), the ResNet trunk at 0.1 x lr and
    the new layers at lr, both x 0.1 every step_size epochs (lr * 0.1^((epoch-1) // step_size)
    during 1-based epoch `epoch`, as the original's 0-based adjust_lr).

Differences from the release, all deliberate:
- One forward pass over the whole batch instead of one per third (anchors, positives,
  negatives): BatchNorm sees all 3b images together, and it is faster.
- The BN-neck weight is trained (the release left it out of the optimiser) and the stem has
  its ReLU; `ReleaseQuirks` (--release-compat) restores both.
- Incomplete last batches are dropped (a few images cannot form a batch-hard batch).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..data.dataset import load_dataset, resolve_dataset_dir
from ..data.validation import check_run_data, check_train_identities
from ..data.preprocessor import ReidImageDataset
from ..data.pair_sampler import PairBatchSampler
from ..data.samplers import RandomTripletSampler, TripletBatchSampler
from ..errors import StreidError
from ..losses import batch_hard_triplet_loss, label_smoothed_cross_entropy, siamese_verification_loss
from ..models.loading import load_encoder
from ..models.reid import ReIDEncoder
from .config import BaselineConfig
from .distributed import all_gather, convert_sync_batchnorm, gather_with_grad, wrap_ddp
from .engine import EvalData, FitResult, RunContext, check_resume, evaluate_split, fit, start_run
from .hooks import TrainingHook
from .loader import TrainData
from ..numerics import autocast
from .precision import grad_scaler
from .run_logging import RunLog

BACKBONE_LR_MULT = 0.1
PROBE_ROWS = 8  # images the bf16 self-check embeds
LABEL_SMOOTHING = 0.1
LR_DECAY = 0.1


def make_optimizer(name: str, groups: list[dict], lr: float, momentum: float, weight_decay: float) -> torch.optim.Optimizer:
    """`torch.optim.<name>` over `groups` (each with its own lr); SGD also gets `momentum`."""
    cls = getattr(torch.optim, name, None)
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        known = sorted(n for n, c in vars(torch.optim).items()
                       if isinstance(c, type) and issubclass(c, torch.optim.Optimizer) and c is not torch.optim.Optimizer)
        raise StreidError(f"--opt-name {name}: not a torch.optim optimiser; use one of {', '.join(known)}")
    if name == "SGD":
        return cls(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    return cls(groups, lr=lr, weight_decay=weight_decay)


class BaselineTask:
    """TrainingTask for the baseline. `encoder` must be built for this run (num_classes = the
    training identities, or 2 for Siamese)."""

    def __init__(self, encoder: ReIDEncoder, config: BaselineConfig, run: RunContext) -> None:
        self.run = run
        self.config = config
        self.encoder = encoder.to(run.device, memory_format=torch.channels_last)
        if config.sync_bn and run.dist.is_distributed:
            convert_sync_batchnorm(self.encoder, run.device)
        self.model = wrap_ddp(self.encoder, run.dist, run.device)
        groups = self.encoder.param_groups(config.lr, BACKBONE_LR_MULT, train_bn_neck=not config.quirks.frozen_bn_neck)
        self.optimizer = make_optimizer(config.opt_name, groups, config.lr, config.momentum, config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=config.step_size, gamma=LR_DECAY)
        self.amp = config.amp
        self.scaler = grad_scaler(config.amp, run.device)
        # --margin only matters without --soft-margin (the original's MarginRankingLoss margin)
        self.margin: float | str = "soft" if config.soft_margin else float(config.margin)

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        device, ctx, cfg = self.run.device, self.run.dist, self.config
        images = batch["image"].to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        labels = batch["label"].to(device, non_blocking=True)
        with autocast(self.amp, device):
            out = self.model(images)
        # batch-hard mining over the global batch (see distributed.py for why the triplet term
        # is scaled by world_size in the backward pass only)
        triplet = batch_hard_triplet_loss(gather_with_grad(out.feat.float(), ctx), all_gather(labels, ctx),
                                          margin=self.margin)
        if cfg.emb_type == "Siamese":
            classification = siamese_verification_loss(out.logits, labels)
            half = len(labels) // 2
            targets = (labels[:half] == labels[half:]).long()
        else:
            classification = label_smoothed_cross_entropy(out.logits, labels, LABEL_SMOOTHING if cfg.label_smoothing else 0.0)
            targets = labels
        loss = cfg.lambda_cla * classification + cfg.lambda_tri * triplet
        objective = cfg.lambda_cla * classification + cfg.lambda_tri * ctx.world_size * triplet
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(objective).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        precision = (out.logits.detach().argmax(1) == targets).float().mean()
        return {"loss": loss.item(), "triplet": triplet.item(), "classification": classification.item(),
                "precision": precision.item()}

    def precision_probe(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        images = batch["image"][:PROBE_ROWS].to(self.run.device).contiguous(memory_format=torch.channels_last)
        was_training = self.encoder.training
        self.encoder.eval()  # running statistics stay untouched; the convolutions are what differ
        try:
            return [self.encoder(images)]  # eval mode: the descriptor
        finally:
            self.encoder.train(was_training)

    def use_float32(self) -> None:
        self.amp = "off"

    def on_epoch_start(self, epoch: int) -> None:
        self.model.train()

    def on_epoch_end(self, epoch: int) -> None:
        self.scheduler.step()

    def learning_rates(self) -> dict[str, float]:
        return {g.get("name", str(i)): g["lr"] for i, g in enumerate(self.optimizer.param_groups)}

    def state_dict(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.encoder.load_state_dict(state["encoder"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])

    def visuals(self) -> dict[str, torch.Tensor] | None:
        return None


def baseline_data(config: BaselineConfig, run: RunContext) -> tuple[TrainData, EvalData, int]:
    """Training data (dataset + this process's batch sampler), evaluation sets, #classes."""
    dataset = load_dataset(resolve_dataset_dir(config.data_dir, config.dataset), config.split, config.combine_trainval)
    records, labels = dataset.train_set, dataset.labels
    check_train_identities(dataset, records, None if config.combine_trainval else "--combine-trainval")  # before the samplers are built
    height, width = config.input_size
    images = ReidImageDataset(records, labels, "baseline_train", height, width, eraser=config.eraser, seed=config.seed)
    world, rank = run.dist.world_size, run.dist.rank
    if config.emb_type == "Siamese":
        batches = PairBatchSampler(records, labels, config.batch_size, config.np_ratio, config.seed, world, rank)
        unit, per_epoch = "pairs", batches.num_pairs
    else:
        sampler = RandomTripletSampler(records, labels, inst_mode=config.inst_mode, seed=config.seed,
                                       num_replicas=world, rank=rank)
        batches = TripletBatchSampler(sampler, config.batch_size, drop_last=True)
        unit, per_epoch = "triplets", len(records)
    if len(batches) == 0:
        raise StreidError(f"-b/--batch-size {config.batch_size}: an epoch has only {per_epoch} {unit} "
                          f"({len(records)} training images); use a batch size of at most {per_epoch // world * world}")
    if config.combine_trainval:
        val, note = [], "--combine-trainval trains on the validation identities"
    else:
        val, note = dataset.val, "" if dataset.val else "the split leaves no validation identities"
    if not config.skip_validation:
        check_run_data(dataset, records, val, progress=run.dist.rank == 0, allow_split_overlap=config.quirks.data_pipeline)
    evaluation = EvalData(query=dataset.query, gallery=dataset.gallery, protocol=dataset.protocol,
                          height=height, width=width, val=val, val_note=note)
    return TrainData(images, batches), evaluation, dataset.num_classes


def train_baseline(config: BaselineConfig, hooks: Sequence[TrainingHook] = ()) -> FitResult:
    """Everything `streid baseline` does when training: seed, data, encoder, task, fit (which
    also calls `hooks`)."""
    config.validate()
    loop = config.loop_config()
    if loop.resume:  # refuse a resume that cannot continue this run before any work
        check_resume(loop, asdict(config))
    run = start_run(loop)
    train, evaluation, num_classes = baseline_data(config, run)
    encoder_config = config.encoder_config(num_classes)
    encoder = encoder_config.build(pretrained=config.pretrained)
    task = BaselineTask(encoder, config, run)
    return fit(task, train, evaluation, loop, run, encoder_config, asdict(config), hooks=hooks)


def evaluate_baseline(config: BaselineConfig) -> dict[str, float]:
    """`--evaluate`: metrics of the --resume checkpoint on the dataset's test set, logged to
    log_test.txt beside the checkpoint (as the original did)."""
    config.validate()
    loop = config.loop_config()
    run = start_run(loop)
    encoder, (height, width) = load_encoder(config.resume, run.device)
    dataset = load_dataset(resolve_dataset_dir(config.data_dir, config.dataset), config.split, config.combine_trainval)
    if not config.skip_validation:
        check_run_data(dataset, [], progress=True, allow_split_overlap=config.quirks.data_pipeline)
    evaluation = EvalData(query=dataset.query, gallery=dataset.gallery, protocol=dataset.protocol,
                          height=height, width=width)
    metrics = evaluate_split(encoder.to(memory_format=torch.channels_last), evaluation, "test", loop, run.device)
    log = RunLog(Path(config.resume).parent, log_name="log_test.txt", tensorboard=False)
    try:
        summary = ", ".join(f"{k} {100 * v:.1f}" for k, v in metrics.items())
        log.line(f"{config.resume} on {dataset.name} test (protocol {dataset.protocol}): {summary}")
    finally:
        log.close()
    return metrics
