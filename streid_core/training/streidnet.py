"""The ST-ReIDNet training task (spec §2-§3): E, G, Di and Dp, their four optimisers and
schedules, and what one iteration does.

One iteration on a batch laid out [anchors; positives; negatives] (b triplets, 3b images):
  1. forward: E on each third (BN statistics per sub-batch, as the release), G on the five
     chunks the release generates — self-reconstructions G(p, e), G(p+, e+), G(p-, e-) and the
     swaps inside the positive pair G(p, e+), G(p+, e);
  2. Di step on real targets vs the detached fakes;
  3. Dp step on real (pose, image) pairs vs three kinds of fakes: (pose, self-reconstruction),
     (pose, swap) and mismatched real pairs (the positive's pose with the anchor's image);
  4. generator step, against the just-updated Di and Dp: L_G = lambda_d L_Di + lambda_dp L_Dp +
     lambda_recon (0.7 L_swap + 0.3 L_self); one backward of L_G + lambda_tri L_tri +
     lambda_class L_cls, then G and E step (E never steps in stage 1).

Stages: 0 trains everything from ImageNet weights; 1 loads E, keeps it in eval mode and never
steps it; 2 loads all four networks and fine-tunes them with E's and Di's BatchNorm frozen.
Di's BatchNorm is frozen in every stage.

Release behaviours that change published numbers are `ReleaseQuirks` (all on with
--release-compat); the defaults are the corrected ones.
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR

from ..atomic import atomic_file, check_output_dir
from ..data.dataset import load_dataset, resolve_dataset_dir
from ..data.validation import check_run_data
from ..data.keypoints import convention
from ..data.preprocessor import ReidImageDataset
from ..data.records import LoadedDataset
from ..data.samplers import SparseTemporalTripletSampler, TripletBatchSampler
from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ..device import resolve_device
from ..errors import StreidError
from ..losses import (
    RELEASE_SWAP_PROBABILITY,
    GANLoss,
    batch_hard_triplet_loss,
    label_smoothed_cross_entropy,
    masked_l1_loss,
    reconstruction_loss,
    siamese_verification_loss,
)
from ..models.discriminators import ImageDiscriminator, PoseDiscriminator
from ..models.generator import RELEASE_NGF, PoseGenerator
from ..models.reid import ReIDEncoder
from ..models.torch_file import load_torch_file
from .checkpoint import FORMAT as CHECKPOINT_FORMAT
from .checkpoint import load_checkpoint
from .config import EncoderConfig, LoopConfig, check_rate
from .display import DisplayOptions, TrainingDisplay
from .distributed import (DistContext, all_gather_thirds, check_batch_split, convert_sync_batchnorm,
                          gather_thirds_with_grad, launched_world_size, rank_failure, wrap_ddp)
from .engine import EvalData, FitResult, RunContext, barrier, check_resume, evaluate_split, fit, start_run
from .hooks import TrainContext, TrainingHook
from .transfer_metrics import TransferMetricsHook
from .loader import TrainData
from .precision import autocast, check_amp, grad_scaler

STAGES = (0, 1, 2)
# The release's panel (model/trainer.py get_current_visuals), in its order.
VISUAL_NAMES = (
    "ach", "ach_pose", "ach_mask", "ach_fake1", "ach_fake2",
    "pos", "pos_pose", "pos_mask", "pos_fake1", "pos_fake2",
)


@dataclass(frozen=True)
class ReleaseQuirks:
    """Behaviours of the released code that change its numbers (spec §12). All off by default;
    `ReleaseQuirks.release()` turns all of them on (--release-compat). The data-side quirks
    (sampler, eraser, flips) live in the data pipeline's own `release_compat` options."""

    double_generator_gradient: bool = False  # L_G back-propagated twice into E and G (§3.4)
    imagenet_targets: bool = False  # targets ImageNet-normalised, G outputs tanh (§3.1)
    stem_without_relu: bool = False  # ResNet stem without ReLU in E and Di (§2.1)
    frozen_bn_neck: bool = False  # E's BN-neck weight in no optimiser (§2.1, §3.5)
    zero_lr_last_epoch: bool = False  # schedule reaches 0 in the last epoch (§3.5)

    @classmethod
    def release(cls) -> "ReleaseQuirks":
        return cls(True, True, True, True, True)


@dataclass
class StreidNetConfig:
    """Everything that defines the ST-ReIDNet networks and their optimisation (train.py flags)."""

    num_classes: int  # training identities (ID classifier size for emb_type Single)
    keypoints: str = "coco17"  # pose convention: 17 channels (DanceReID) or openpose18
    stage: int = 0
    arch: str = "resnet50"
    emb_type: str = "Single"
    last_stride: int = 2
    height: int = 256
    width: int = 128
    norm: str = "batch"
    drop: float = 0.2
    connect_layers: int = 0
    fuse_mode: str = "cat"
    pose_feature_size: int = 128
    ngf: int = RELEASE_NGF  # G's base width
    lr: float = 0.001
    niter: int = 50
    niter_decay: int = 50
    lambda_d: float = 1.0
    lambda_dp: float = 1.0
    lambda_recon: float = 1.0
    lambda_tri: float = 1.0
    lambda_class: float = 1.0
    smooth_label: bool = False
    soft_margin: bool = False
    margin: float = 1.0
    mask: bool = False
    emb_smooth: bool = False
    pretrained: str | None = None  # local ImageNet state dict of E's arch (stage 0)
    pretrained_di: str | None = None  # local ImageNet resnet18 state dict for Di (stages 0, 1)
    netE_pretrain: str = ""
    netG_pretrain: str = ""
    netDi_pretrain: str = ""
    netDp_pretrain: str = ""
    quirks: ReleaseQuirks = field(default_factory=ReleaseQuirks)
    device: str = "cpu"
    amp: str = "off"  # "off", "bf16" (CPU or CUDA) or "fp16" (CUDA, with loss scaling)

    def validate(self) -> None:
        """Every number in range, each error naming its train.py flag."""
        if self.stage not in STAGES:
            raise StreidError(f"--stage {self.stage}: use 0 (end-to-end), 1 (fixed E) or 2 (fine-tune all)")
        for flag, value in (("--height", self.height), ("--width", self.width)):
            if value < 32 or value % 32:
                raise StreidError(f"{flag} {value}: must be positive and divisible by 32 (G halves the image 5 times), e.g. 256x128")
        check_rate("--lr", self.lr, positive=True)
        if not (math.isfinite(self.drop) and 0.0 <= self.drop < 1.0):
            raise StreidError(f"--drop {self.drop}: a dropout probability, >= 0 and < 1")
        if self.pose_feature_size < 1:
            raise StreidError(f"--pose-feature-size {self.pose_feature_size}: must be >= 1")
        if self.ngf < 1:
            raise StreidError(f"--ngf {self.ngf}: G's base width must be >= 1 (the release's is {RELEASE_NGF})")
        if self.niter < 0 or self.niter_decay < 0 or self.niter + self.niter_decay < 1:
            raise StreidError(f"--niter {self.niter} --niter-decay {self.niter_decay}: need >= 0 each and at least 1 epoch in total")
        for flag, value in (("--lambda-d", self.lambda_d), ("--lambda-dp", self.lambda_dp),
                            ("--lambda-recon", self.lambda_recon), ("--lambda-tri", self.lambda_tri),
                            ("--lambda-class", self.lambda_class)):
            check_rate(flag, value)
        if not self.soft_margin:
            check_rate("--margin", self.margin, positive=True)

    def to_dict(self) -> dict[str, Any]:
        """Plain values only, so a checkpoint holding it loads with weights_only=True."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "StreidNetConfig":
        values = dict(values)
        values["quirks"] = ReleaseQuirks(**values.get("quirks", {}))
        return cls(**values)


# ---------------------------------------------------------------- learning rates


def stage_learning_rates(stage: int, lr: float) -> dict[str, float]:
    """Initial LR of each network's optimiser (spec §3.5). E always uses --lr; the others are
    fixed per stage, except in stage 1 where they follow --lr."""
    if stage == 0:
        return {"E": lr, "G": 1e-5, "Di": 4e-5, "Dp": 4e-5}
    if stage == 1:
        return {"E": lr, "G": 0.1 * lr, "Di": lr, "Dp": lr}
    if stage == 2:
        return {"E": lr, "G": 1e-6, "Di": 1e-5, "Dp": 1e-5}
    raise StreidError(f"--stage {stage}: use 0 (end-to-end), 1 (fixed E) or 2 (fine-tune all)")


def lr_factor(epoch: int, niter: int, niter_decay: int, zero_last_epoch: bool = False) -> float:
    """LR multiplier during 1-based `epoch`: 1 for the first `niter` epochs, then a linear
    decay over `niter_decay` epochs that would reach 0 one epoch after the last:
        1 - max(0, epoch - niter) / (niter_decay + 1)       (50/50: epoch 51 -> 50/51, 100 -> 1/51)
    The release's rule is shifted by one epoch, so its constant phase is niter - 1 epochs and
    the last epoch trains at LR 0 (zero_last_epoch):
        1 - max(0, epoch + 1 - niter) / (niter_decay + 1)   (50/50: epoch 50 -> 50/51, 100 -> 0)
    """
    shift = 1 if zero_last_epoch else 0
    return 1.0 - max(0, epoch + shift - niter) / float(niter_decay + 1)


def linear_decay_scheduler(optimizer: torch.optim.Optimizer, niter: int, niter_decay: int,
                           zero_last_epoch: bool = False) -> LambdaLR:
    """LambdaLR stepped once per epoch; its internal counter is the 0-based epoch."""
    def factor(zero_based_epoch: int) -> float:
        return lr_factor(zero_based_epoch + 1, niter, niter_decay, zero_last_epoch)

    return LambdaLR(optimizer, factor)


# ---------------------------------------------------------------- loss pieces


def generator_objective(gan_di: Tensor, gan_dp: Tensor, rec_self: Tensor, rec_swap: Tensor,
                        lambda_d: float, lambda_dp: float, lambda_recon: float) -> Tensor:
    """L_G = lambda_d L_Di + lambda_dp L_Dp + lambda_recon (0.7 L_swap + 0.3 L_self)."""
    return lambda_d * gan_di + lambda_dp * gan_dp + lambda_recon * reconstruction_loss(rec_swap, rec_self)


def pose_discriminator_pairs(pose: Tensor, targets: Tensor, fake: Tensor, swap_fake: Tensor
                             ) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """Dp's real and fake (pose, image) batches (spec §3.2, paper eq. 5).

    pose, targets: (3b, ...) [anchors; positives; negatives]; fake: the three self-
    reconstructions (3b); swap_fake: [G(p, e+); G(p+, e)] (2b).
    real: (pose, targets). fake: (a) (pose, fake), (b) ([p; p+], swap_fake), (c) mismatched real
    pairs ([p+; p], [t; t+]) — a real image in the wrong pose must be judged fake too, which is
    what teaches Dp to check the pose rather than the realism.
    """
    b = pose.shape[0] // 3
    pair_pose = pose[: 2 * b]
    swapped_pose = torch.cat([pose[b: 2 * b], pose[:b]])
    fake_pose = torch.cat([pose, pair_pose, swapped_pose])
    fake_images = torch.cat([fake, swap_fake, targets[: 2 * b]])
    return (pose, targets), (fake_pose, fake_images)


_MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def imagenet_to_unit(images: Tensor) -> Tensor:
    """ImageNet-normalised images -> [0, 1] pixels (undo Normalize)."""
    return images * _STD.to(images) + _MEAN.to(images)


def imagenet_to_tanh_range(images: Tensor) -> Tensor:
    """ImageNet-normalised images -> [-1, 1], the range of G's tanh output."""
    return imagenet_to_unit(images) * 2.0 - 1.0


def generated_to_unit(images: Tensor, imagenet_targets: bool = False) -> Tensor:
    """G's output -> [0, 1] pixels, by the inverse of the mapping its targets went through:
    (x + 1) / 2 for [-1, 1] targets, un-normalising for the release's ImageNet-normalised ones."""
    if imagenet_targets:
        return imagenet_to_unit(images).clamp(0.0, 1.0)
    return ((images + 1.0) * 0.5).clamp(0.0, 1.0)


# ---------------------------------------------------------------- checkpoints of single networks

# The release names its modules differently; these prefixes map its state dicts onto ours.
_RELEASE_ENCODER_KEYS = (("base_model.", "trunk."), ("bottleneck.", "bn_neck."))
_RELEASE_GENERATOR_KEYS = (
    ("en_conv1.", "encoder.0."), ("en_conv2.", "encoder.1."), ("en_conv3.", "encoder.2."),
    ("en_conv4.", "encoder.3."), ("en_conv5.", "encoder.4."), ("en_avg.", "pose_head."),
    ("de_avg.", "decoder_stem."), ("de_conv5.", "up_blocks.0."), ("de_conv4.", "up_blocks.1."),
    ("de_conv3.", "up_blocks.2."), ("de_conv2.", "up_blocks.3."), ("de_conv1.", "up_blocks.4."),
    ("W_reid.", "project_reid."), ("W_pose.", "project_pose."),
)


def _rename(state: dict[str, Tensor], prefixes: tuple[tuple[str, str], ...], under: str = "") -> dict[str, Tensor]:
    out = {}
    for key, value in state.items():
        for old, new in prefixes:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[under + key] = value
    return out


def read_network_state(path: str | os.PathLike, role: str, flag: str) -> dict[str, Tensor]:
    """A network's state dict from `path`: a plain state dict (the release's `<epoch>_net_X.pth`,
    `module.` prefixes of DataParallel stripped), an open-reid {"state_dict": ...} checkpoint,
    or a streid checkpoint (its encoder for E — a baseline run's too —, else the ST-ReIDNet
    task's network `role`)."""
    if not path or not os.path.isfile(path):
        raise StreidError(f"{flag} {path or '(empty)'}: file not found; pass the saved net_{role} weights")
    obj = load_torch_file(path, f"{flag} file", f"pass the saved net_{role} weights (a file saved with torch.save)")
    obj = _unwrap_checkpoint(obj, role, str(path), flag)
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise StreidError(f"{flag} {path}: not a state dict of net_{role}; pass the saved net_{role} weights")
    state = {}
    for key, value in obj.items():
        while key.startswith("module."):
            key = key[len("module."):]
        state[key] = value
    return state


def _unwrap_checkpoint(obj: Any, role: str, path: str, flag: str) -> Any:
    if not isinstance(obj, dict):
        return obj
    if obj.get("format") == CHECKPOINT_FORMAT:  # a streid run: baseline or ST-ReIDNet
        if role == "E" and isinstance(obj.get("encoder"), dict):
            return obj["encoder"]
        networks = (obj.get("task") or {}).get("networks") or {}
        if role not in networks:
            raise StreidError(f"{flag} {path}: this streid checkpoint holds no net_{role} (model_best.pth.tar keeps "
                              f"only the encoder); pass the ST-ReIDNet run's checkpoint.pth.tar or <epoch>_net_{role}.pth")
        return networks[role]
    if isinstance(obj.get("state_dict"), dict):  # open-reid / baseline.py
        return obj["state_dict"]
    return obj


def load_network(net: nn.Module, path: str, role: str, flag: str) -> None:
    """Load `path` into `net`, accepting the release's module names; a mismatch is a StreidError."""
    state = read_network_state(path, role, flag)
    expected = net.state_dict()
    if role == "E":
        state = _rename(state, _RELEASE_ENCODER_KEYS)
    elif role == "Di" and not any(k.startswith("encoder.") for k in state):  # the release's SingleNet
        state = _rename(state, _RELEASE_ENCODER_KEYS, under="encoder.")
    elif role == "G":
        state = _rename(state, _RELEASE_GENERATOR_KEYS)
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = "; ".join(f"{what} {keys[:3]}" for what, keys in
                           (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys)
        raise StreidError(
            f"{flag} {path}: does not fit net_{role} as configured ({detail}); "
            "check --arch/--emb-type/--norm/--fuse-mode/--connect-layers/--pose-feature-size and the dataset")
    net.load_state_dict(state, strict=False)


# ---------------------------------------------------------------- networks


def encoder_config(cfg: StreidNetConfig) -> EncoderConfig:
    """E: ResNet, global max pooling, BN-neck; the pre-BN feature is the descriptor (spec §2.1).
    The same description goes into every checkpoint, so `load_encoder` rebuilds E exactly."""
    return EncoderConfig(
        arch=cfg.arch, last_stride=cfg.last_stride, pool="max", use_bn=True, test_bn=False,
        stem_relu=not cfg.quirks.stem_without_relu, num_classes=cfg.num_classes if cfg.emb_type == "Single" else 2,
        emb_type=cfg.emb_type, height=cfg.height, width=cfg.width)


def build_encoder(cfg: StreidNetConfig, pretrained: str | None = None) -> ReIDEncoder:
    return encoder_config(cfg).build(pretrained=pretrained)


def build_generator(cfg: StreidNetConfig, reid_feature_size: int) -> PoseGenerator:
    """G: pose encoder + decoder fed with E's feature (spec §2.2)."""
    return PoseGenerator(
        convention(cfg.keypoints).num_joints, reid_feature_size, pose_feature_size=cfg.pose_feature_size,
        image_size=(cfg.height, cfg.width), fuse_mode=cfg.fuse_mode,
        connect_layers=cfg.connect_layers, norm=cfg.norm, dropout=cfg.drop, ngf=cfg.ngf)


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


class PhaseTimer:
    """Wall time of the phases of an iteration, when `enabled` (benchmarks, profiling). On CUDA
    each phase ends with a synchronisation, so only enable it to measure."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.enabled = False
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        yield
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start


# ---------------------------------------------------------------- the task


class StreidNetTask:
    """ST-ReIDNet as a `TrainingTask` for the shared training loop.

    Batches are dicts from `ReidImageDataset(transform_mode="streid_train", with_pose=True,
    with_mask=...)` collated in the [anchors; positives; negatives] layout of
    `TripletBatchSampler`: image (E input), target (clean image), pose, mask (optional unless
    config.mask), label.

    Several processes (torchrun, `dist`): each rank holds b / world_size triplets of every
    global batch. Every network that steps is wrapped in DistributedDataParallel (E not in stage
    1: it never steps) and called through its wrapper where its own gradient is wanted (E and G
    in their forward, Di and Dp in their steps); G's loss goes through the plain Di and Dp, whose
    gradients are not wanted there. The update order and the four optimisers are those of one
    process. Batch-hard mining sees the global batch (each third gathered on its own), and the
    triplet term is scaled by world_size in the backward pass as in the baseline (distributed.py
    says why). sync_bn: the BatchNorm layers that run in train mode (E in stage 0, G, Dp) use
    the global sub-batch statistics; Di's and stage 2 E's are frozen and need none.
    """

    def __init__(self, config: StreidNetConfig, dist: DistContext | None = None, sync_bn: bool = False) -> None:
        cfg = config
        cfg.validate()
        if cfg.num_classes < 2 and cfg.emb_type == "Single":
            raise StreidError(f"the training set has {cfg.num_classes} identities; ST-ReIDNet needs at least 2")
        self.config = cfg
        self.device = resolve_device(cfg.device)
        self.num_keypoints = convention(cfg.keypoints).num_joints
        quirks = cfg.quirks

        self.encoder = build_encoder(cfg, pretrained=cfg.pretrained if cfg.stage == 0 else None)
        self.generator = build_generator(cfg, self.encoder.feature_dim)
        self.image_discriminator = ImageDiscriminator(
            pretrained=cfg.pretrained_di if cfg.stage != 2 else None, stem_relu=not quirks.stem_without_relu)
        self.pose_discriminator = PoseDiscriminator(self.num_keypoints, norm=cfg.norm)
        if cfg.stage in (1, 2):
            load_network(self.encoder, cfg.netE_pretrain, "E", "--netE-pretrain")
        if cfg.stage == 2:
            load_network(self.generator, cfg.netG_pretrain, "G", "--netG-pretrain")
            load_network(self.image_discriminator, cfg.netDi_pretrain, "Di", "--netDi-pretrain")
            load_network(self.pose_discriminator, cfg.netDp_pretrain, "Dp", "--netDp-pretrain")
        for net in self.networks.values():
            net.to(self.device)
        self.dist = dist or DistContext()
        if sync_bn and self.dist.is_distributed:  # before the optimisers: the CPU conversion makes new parameters
            for net in (self.encoder,) * (cfg.stage == 0) + (self.generator, self.pose_discriminator):
                convert_sync_batchnorm(net, self.device)

        lrs = stage_learning_rates(cfg.stage, cfg.lr)
        # lr_mult 1 for the backbone: the release declared 0.1 but its scheduler overwrote it,
        # so the published recipe (--lr 2e-5) was tuned with every group at --lr.
        e_groups = self.encoder.param_groups(lrs["E"], 1.0, train_bn_neck=not quirks.frozen_bn_neck)
        self.optimizers: dict[str, torch.optim.Optimizer] = {
            "E": torch.optim.SGD(e_groups, lr=lrs["E"], momentum=0.9, weight_decay=5e-4),
            "G": torch.optim.Adam(self.generator.parameters(), lr=lrs["G"], betas=(0.5, 0.999)),
            "Di": torch.optim.SGD(_trainable(self.image_discriminator), lr=lrs["Di"], momentum=0.9, weight_decay=1e-4),
            "Dp": torch.optim.SGD(_trainable(self.pose_discriminator), lr=lrs["Dp"], momentum=0.9, weight_decay=1e-4),
        }
        self.schedulers = {
            name: linear_decay_scheduler(opt, cfg.niter, cfg.niter_decay, quirks.zero_lr_last_epoch)
            for name, opt in self.optimizers.items()
        }
        self.gan_discriminator = GANLoss(
            smooth_labels=cfg.smooth_label,
            swap_probability=RELEASE_SWAP_PROBABILITY if cfg.smooth_label else 0.0)
        self.gan_generator = GANLoss()
        self.margin: float | str = "soft" if cfg.soft_margin else float(cfg.margin)
        check_amp(cfg.amp, self.device)
        self.amp = cfg.amp
        self.scaler = grad_scaler(cfg.amp, self.device)
        # what each forward that must average its network's gradients over the ranks calls
        self._ddp: dict[str, nn.Module] = {
            name: wrap_ddp(net, self.dist, self.device) for name, net in self.networks.items()
            if not (name == "E" and cfg.stage == 1)}
        self._last: dict[str, Tensor] = {}
        self.timer = PhaseTimer(self.device)  # timer.enabled = True: per-phase seconds in timer.seconds

    # -------------------------------------------------------- protocol

    @property
    def networks(self) -> dict[str, nn.Module]:
        return {"E": self.encoder, "G": self.generator, "Di": self.image_discriminator, "Dp": self.pose_discriminator}

    def on_epoch_start(self, epoch: int) -> None:
        stage = self.config.stage
        for net in self.networks.values():
            net.train()
        self.image_discriminator.freeze_batchnorm(True)
        if stage == 1:
            self.encoder.eval()
        self.encoder.freeze_batchnorm(stage == 2)

    def on_epoch_end(self, epoch: int) -> None:
        for scheduler in self.schedulers.values():
            scheduler.step()

    def learning_rates(self) -> dict[str, float]:
        rates = {}
        for name, opt in self.optimizers.items():
            for group in opt.param_groups:
                key = f"{name}/{group['name']}" if "name" in group else name
                rates[key] = float(group["lr"])
        return rates

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "networks": {name: net.state_dict() for name, net in self.networks.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedulers": {name: s.state_dict() for name, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, net in self.networks.items():
            net.load_state_dict(state["networks"][name])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state["schedulers"][name])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])

    # -------------------------------------------------------- one iteration

    def _autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.amp, self.device)

    def precision_probe(self, batch: dict[str, Tensor]) -> list[Tensor]:
        """E's descriptor, G's drawing and Di's verdict on the batch's anchors; E and Di in eval
        mode, G on a copy (its BatchNorm normalises with batch statistics, as in training)."""
        b = batch["image"].shape[0] // 3
        images = batch["image"][:b].to(self.device)
        pose = batch["pose"][:b].to(self.device)
        was_training = {name: net.training for name, net in self.networks.items()}
        self.encoder.eval()
        self.image_discriminator.eval()
        generator = copy.deepcopy(self.generator).train()
        try:
            feats = self.encoder(images)
            fake = generator(pose, feats)
            return [feats, fake, self.image_discriminator(fake)]
        finally:
            for name, net in self.networks.items():
                net.train(was_training[name])

    def use_float32(self) -> None:
        self.amp = "off"

    def _encode(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Pre-BN features of [anchors; positives; negatives] and the ID (or verification) loss."""
        cfg = self.config
        b = images.shape[0] // 3
        anchors, positives, negatives = images[:b], images[b: 2 * b], images[2 * b:]
        if cfg.stage == 1:  # fixed encoder: eval mode, no graph, no classification loss
            with torch.no_grad():
                feats = torch.cat([self.encoder(anchors), self.encoder(positives), self.encoder(negatives)])
            return feats, torch.zeros((), device=images.device)
        encoder = self._ddp["E"]
        if cfg.emb_type == "Siamese":
            # E sees (anchor, positive) pairs and (anchor, negative) pairs; the head judges each.
            same = encoder(torch.cat([anchors, positives]))
            other = encoder(torch.cat([anchors, negatives]))
            feats = torch.cat([same.feat, other.feat[b:]])
            la, lp, ln = labels[:b], labels[b: 2 * b], labels[2 * b:]
            cls = 0.5 * (siamese_verification_loss(same.logits, torch.cat([la, lp]))
                         + siamese_verification_loss(other.logits, torch.cat([la, ln])))
            return feats, cls
        outs = [encoder(part) for part in (anchors, positives, negatives)]
        feats = torch.cat([o.feat for o in outs])
        logits = torch.cat([o.logits for o in outs])
        cls = label_smoothed_cross_entropy(logits, labels, 0.1 if cfg.emb_smooth else 0.0)
        return feats, cls

    def _generate(self, pose: Tensor, feats: Tensor) -> tuple[Tensor, Tensor]:
        """Self-reconstructions [G(p,e); G(p+,e+); G(p-,e-)] and swaps [G(p,e+); G(p+,e)],
        one G call per chunk so G's BatchNorm sees the release's sub-batches."""
        b = pose.shape[0] // 3
        p, e = pose.split(b), feats.split(b)
        generator = self._ddp["G"]
        fake = torch.cat([generator(p[i], e[i]) for i in range(3)])
        swap_fake = torch.cat([generator(p[0], e[1]), generator(p[1], e[0])])
        return fake, swap_fake

    def train_step(self, batch: dict[str, Tensor]) -> dict[str, float]:
        cfg, quirks = self.config, self.config.quirks
        dev = self.device
        images = batch["image"].to(dev, non_blocking=True)
        targets = batch["target"].to(dev, non_blocking=True)
        if not quirks.imagenet_targets:
            targets = imagenet_to_tanh_range(targets)
        pose = batch["pose"].to(dev, non_blocking=True)
        labels = batch["label"].to(dev, non_blocking=True)
        if cfg.mask and "mask" not in batch:
            raise StreidError("--mask needs skeleton masks in the batch; build the dataset with with_mask=True")
        mask = batch["mask"].to(dev, non_blocking=True) if cfg.mask else None
        n = images.shape[0]
        if n % 3 or n == 0:
            raise ValueError(f"an ST-ReIDNet batch holds [anchors; positives; negatives]; got {n} images")
        b = n // 3

        timer = self.timer
        timer.seconds = {}
        with self._autocast():
            with timer("E forward"):
                feats, loss_cls = self._encode(images, labels)
            with timer("G forward"):
                fake, swap_fake = self._generate(pose, feats)

        # A discriminator whose adversarial weight is 0 changes neither G nor E: it is not run
        # (--lambda-d 0 / --lambda-dp 0 train G on reconstruction alone, several times faster).
        use_di, use_dp = cfg.lambda_d > 0, cfg.lambda_dp > 0
        unused = torch.zeros((), device=dev)
        loss_di = loss_dp = gan_di = gan_dp = unused

        # Di: real targets vs all five kinds of generated images
        if use_di:
            opt_di = self.optimizers["Di"]
            with timer("Di step (forward, backward, update)"):
                opt_di.zero_grad(set_to_none=True)
                with self._autocast():
                    real_logits = self._ddp["Di"](targets)
                    fake_logits = self._ddp["Di"](torch.cat([fake, swap_fake]).detach())
                    loss_di = self.gan_discriminator.discriminator_loss(real_logits, fake_logits)
                self.scaler.scale(loss_di).backward()
                self.scaler.step(opt_di)

        # Dp: matching (pose, image) pairs vs generated and mismatched ones
        if use_dp:
            opt_dp = self.optimizers["Dp"]
            with timer("Dp step (forward, backward, update)"):
                opt_dp.zero_grad(set_to_none=True)
                with self._autocast():
                    (real_pose, real_img), (fake_pose, fake_img) = pose_discriminator_pairs(
                        pose, targets, fake.detach(), swap_fake.detach())
                    loss_dp = self.gan_discriminator.discriminator_loss(
                        self._ddp["Dp"](real_pose, real_img), self._ddp["Dp"](fake_pose, fake_img))
                self.scaler.scale(loss_dp).backward()
                self.scaler.step(opt_dp)

        # G and E against the updated discriminators
        self.optimizers["G"].zero_grad(set_to_none=True)
        self.optimizers["E"].zero_grad(set_to_none=True)
        with timer("G/E losses (Di, Dp forward)"), self._autocast(), \
                _no_parameter_grads(self.image_discriminator, self.pose_discriminator):
            rec_self = masked_l1_loss(fake.float(), targets, mask)
            rec_swap = masked_l1_loss(swap_fake.float(), targets[: 2 * b], None if mask is None else mask[: 2 * b])
            if use_di:
                gan_di = self.gan_generator.generator_loss(self.image_discriminator(torch.cat([fake, swap_fake])))
            if use_dp:
                _, (fake_pose, fake_img) = pose_discriminator_pairs(pose, targets, fake, swap_fake)
                gan_dp = self.gan_generator.generator_loss(self.pose_discriminator(fake_pose, fake_img))
            loss_g = generator_objective(gan_di, gan_dp, rec_self, rec_swap, cfg.lambda_d, cfg.lambda_dp, cfg.lambda_recon)
            # mined over the global batch, [anchors; positives; negatives] of all ranks
            world = self.dist.world_size
            loss_tri = batch_hard_triplet_loss(gather_thirds_with_grad(feats, self.dist),
                                               all_gather_thirds(labels, self.dist), margin=self.margin,
                                               anchor_rows=2 * b * world)
            # The release backpropagates L_G, then L_G + re-ID losses again: L_G counts twice.
            generator_weight = 2.0 if quirks.double_generator_gradient else 1.0
            loss_e = loss_g + cfg.lambda_tri * loss_tri + cfg.lambda_class * loss_cls
            objective = loss_e + (generator_weight - 1.0) * loss_g
            if world > 1:  # this rank holds only its own rows' share of the triplet gradient: x world_size
                objective = objective + (world - 1) * cfg.lambda_tri * loss_tri
        with timer("G/E backward (through Di, Dp, G, E)"):
            self.scaler.scale(objective).backward()
        with timer("G update"):
            self.scaler.step(self.optimizers["G"])
        if cfg.stage != 1:
            with timer("E update"):
                self.scaler.step(self.optimizers["E"])
        self.scaler.update()

        fake, swap_fake = fake.detach(), swap_fake.detach()  # keep the images for visuals(), not the graph
        self._last = {
            "ach": images[0], "pos": images[b],
            "ach_pose": pose[0], "pos_pose": pose[b],
            "ach_fake1": fake[0], "ach_fake2": swap_fake[0],
            "pos_fake1": fake[b], "pos_fake2": swap_fake[b],
        }
        if "mask" in batch:
            self._last["ach_mask"], self._last["pos_mask"] = batch["mask"][0], batch["mask"][b]
        values = {
            "E_t": loss_tri, "E_c": loss_cls, "E": loss_e, "G_r": reconstruction_loss(rec_swap, rec_self),
            "G_gan_Di": gan_di, "G_gan_Dp": gan_dp, "G": loss_g, "D_i": loss_di, "D_p": loss_dp,
        }
        losses = {name: float(value.detach()) for name, value in values.items()}
        # what the NaN guard watches: every objective optimised in this iteration
        losses["loss"] = losses["E"] + losses["D_i"] + losses["D_p"]
        return losses

    # -------------------------------------------------------- display

    def generated_to_unit(self, images: Tensor) -> Tensor:
        return generated_to_unit(images, self.config.quirks.imagenet_targets)

    def visuals(self) -> dict[str, Tensor] | None:
        """The release's 2x5 panel for the first triplet of the last batch: anchor (E's input),
        its pose (channels summed, clipped to 1), its mask, G(p, e), G(p, e+); then the same for
        the positive: positive, pose, mask, G(p+, e+), G(p+, e). CxHxW float in [0, 1]."""
        if not self._last:
            return None
        last = {k: v.float().cpu() for k, v in self._last.items()}
        out: dict[str, Tensor] = {}
        for name in VISUAL_NAMES:
            if name not in last:
                continue
            image = last[name]
            if name in ("ach", "pos"):
                out[name] = imagenet_to_unit(image[None])[0].clamp(0.0, 1.0)
            elif name.endswith("_pose"):
                out[name] = image.sum(0, keepdim=True).clamp(0.0, 1.0)
            elif name.endswith("_mask"):
                out[name] = image.reshape(1, *image.shape[-2:]).clamp(0.0, 1.0)
            else:
                out[name] = self.generated_to_unit(image[None])[0]
        return out


def _trainable(net: nn.Module) -> list[nn.Parameter]:
    return [p for p in net.parameters() if p.requires_grad]


@contextlib.contextmanager
def _no_parameter_grads(*nets: nn.Module) -> Iterator[None]:
    """Skip weight gradients of the discriminators while G's loss goes through them: they are
    discarded anyway (each discriminator zeroes its gradients before its own step)."""
    params = [p for net in nets for p in net.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


# ---------------------------------------------------------------- a whole run (`streid train`)


@dataclass
class StreidNetRunConfig:
    """`streid train`: the original train.py's data, loop and display options around the model
    (field names follow its flags). Defaults are the original's, except dataroot ("data", where
    every streid command looks for datasets) and select_on ("val": hold out identities).
    model.num_classes, model.keypoints and model.device are filled in from the dataset and the
    machine when the run starts."""

    model: StreidNetConfig
    dataset: str = "DanceReID"
    dataroot: str = "data"
    checkpoints: str = "./checkpoints/"
    name: str = "my_session"
    batch_size: int = 16  # triplets per iteration
    workers: int = 4
    skip_frame: int = 20
    inter_rate: float = 0.7
    pose_aug: str = "no"
    eraser: bool = False
    release_compat: bool = False  # the data side: release sampler, eraser and flips
    save_step: int = 20
    eval_step: int = 5
    print_freq: int = 10  # samples (triplets) between log lines, as the original counts
    select_on: str = "val"
    seed: int = 1
    resume: str = ""
    max_iters_per_epoch: int | None = None
    display: DisplayOptions | None = None  # None: no live display
    skip_validation: bool = False  # trust the data: no check of images, poses and split before the run
    sync_bn: bool = False  # several processes: BatchNorm statistics over the global batch
    transfer_eval_every: int = 0  # > 0: pose-transfer metrics every N iterations (training/transfer_metrics.py)
    transfer_eval_pairs: int = 64

    @property
    def run_dir(self) -> Path:
        return Path(self.checkpoints) / self.name

    def loop_config(self) -> LoopConfig:
        return LoopConfig(
            logs_dir=str(self.run_dir), epochs=self.model.niter + self.model.niter_decay, eval_step=self.eval_step,
            select_on=self.select_on, seed=self.seed, device=self.model.device, amp=self.model.amp,
            workers=self.workers, max_iters_per_epoch=self.max_iters_per_epoch,
            print_freq=max(1, round(self.print_freq / max(1, self.batch_size))), resume=self.resume)

    def validate(self) -> None:
        self.model.validate()
        if self.workers < 0:
            raise StreidError(f"-j/--workers {self.workers}: must be >= 0")
        if self.skip_frame < 0:
            raise StreidError(f"--skip-frame {self.skip_frame}: must be >= 0")
        if self.eval_step < 1:
            raise StreidError(f"--eval-step {self.eval_step}: must be >= 1 (evaluate every N epochs)")
        if self.batch_size < 2:
            raise StreidError(f"-b/--batch-size {self.batch_size}: need at least 2 triplets (E's BatchNorm runs on each third of the batch)")
        check_batch_split(self.batch_size, launched_world_size())
        if not 0.0 <= self.inter_rate <= 1.0:
            raise StreidError(f"--inter-rate {self.inter_rate}: a probability, between 0 and 1")
        if self.print_freq < 1:
            raise StreidError(f"--print-freq {self.print_freq}: must be >= 1")
        if self.save_step < 1:
            raise StreidError(f"--save-step {self.save_step}: must be >= 1 (save the networks every N epochs)")
        if self.transfer_eval_every < 0:
            raise StreidError(f"--transfer-eval-every {self.transfer_eval_every}: must be >= 0 (0: off)")
        if self.transfer_eval_pairs < 1:
            raise StreidError(f"--transfer-eval-pairs {self.transfer_eval_pairs}: must be >= 1")
        if self.display is not None and self.display.display_id > 0:
            for flag, value in (("--display-freq", self.display.display_freq),
                                ("--update-html-freq", self.display.update_html_freq)):
                if value < 1:
                    raise StreidError(f"{flag} {value}: must be >= 1 sample (or turn the display off with --display-id 0)")
            if not 1 <= self.display.display_port <= 65535:
                raise StreidError(f"--display-port {self.display.display_port}: a TCP port, 1 to 65535")
            if self.display.display_winsize < 1 or self.display.single_pane_ncols < 0:
                raise StreidError(f"--display-winsize {self.display.display_winsize} --display-single-pane-ncols "
                                  f"{self.display.single_pane_ncols}: need >= 1 and >= 0")
        check_output_dir(self.run_dir, "--checkpoints/--name")
        self.loop_config().validate()


_ARCHITECTURE_FIELDS = ("keypoints", "stage", "arch", "emb_type", "last_stride", "height", "width", "norm",
                        "connect_layers", "fuse_mode", "pose_feature_size", "ngf", "num_classes", "quirks")


def check_same_architecture(checkpoint: dict[str, Any], current: StreidNetConfig, source: str) -> None:
    """A resumed state must come from the same networks and optimiser layout."""
    stored = (checkpoint.get("task") or {}).get("config")
    if not isinstance(stored, dict):
        raise StreidError(f"{source}: not an ST-ReIDNet run's checkpoint (no generator and discriminators); "
                          "resume from the checkpoint.pth.tar of a `streid train` run")
    now = current.to_dict()
    diff = [f"{k}={stored.get(k)!r} (now {now[k]!r})" for k in _ARCHITECTURE_FIELDS if stored.get(k) != now[k]]
    if diff:
        raise StreidError(f"{source}: the checkpoint's ST-ReIDNet differs ({', '.join(diff)}); resume with the flags it was trained with")


def resolve_pretrained(path: str | None, arch: str) -> tuple[str | None, str | None]:
    """--pretrained -> (E's weights, Di's resnet18 weights). PATH is a torchvision state dict
    file (E's arch; also Di's when E is a resnet18) or a folder holding `<arch>.pth` /
    `<arch>-<hash>.pth` files, torch hub's cache layout (~/.cache/torch/hub/checkpoints)."""
    if not path:
        return None, None
    where = Path(path)
    if where.is_file():
        return str(where), str(where) if arch == "resnet18" else None
    if not where.is_dir():
        raise StreidError(f"--pretrained {path}: no such file or folder; pass a torchvision ResNet state dict or a folder of them")

    def find(name: str) -> str | None:
        found = sorted(p for p in where.iterdir() if p.is_file() and (p.name == f"{name}.pth" or p.name.startswith(f"{name}-")))
        if len(found) > 1:
            raise StreidError(f"--pretrained {path}: several {name} weight files ({', '.join(p.name for p in found)}); keep one")
        return str(found[0]) if found else None

    encoder = find(arch)
    if encoder is None:
        raise StreidError(f"--pretrained {path}: no {arch}.pth or {arch}-*.pth in the folder; add E's ImageNet weights")
    return encoder, find("resnet18")


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
    if not records:
        raise StreidError(f"{root}: split 0 has no training images; check splits.json")
    m = cfg.model
    images = ReidImageDataset(records, labels, "streid_train", m.height, m.width, keypoints=dataset.keypoints,
                              with_pose=True, with_mask=True, pose_aug=cfg.pose_aug, eraser=cfg.eraser,
                              release_compat=cfg.release_compat, seed=cfg.seed)
    sampler = SparseTemporalTripletSampler(records, labels, cfg.inter_rate, cfg.skip_frame, videos=dataset.videos or None,
                                           release_compat=cfg.release_compat, seed=cfg.seed,
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
        check_run_data(dataset, records, val, with_poses=True, progress=dist.is_main, allow_split_overlap=cfg.release_compat)
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
    return fit(task, train, evaluation, loop, run, encoder_config(model), asdict(replace(cfg, model=model)),
               hooks=[*own, *hooks])
