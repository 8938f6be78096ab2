"""The ST-ReIDNet training task (docs/original-system.md §2-§3): E, G, Di and Dp, their four
optimisers and schedules, and what one iteration does.

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
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from ..device import resolve_device
from ..errors import StreidError
from ..losses import (
    RELEASE_SWAP_PROBABILITY,
    GANLoss,
    batch_hard_triplet_loss,
    label_smoothed_cross_entropy,
    masked_l1_loss,
    painting_l1_loss,
    reconstruction_loss,
    siamese_verification_loss,
)
from ..models.image_range import imagenet_to_tanh_range, imagenet_to_unit
from ..models.loading import load_network
from .distributed import (DistContext, all_gather_thirds, convert_sync_batchnorm, gather_thirds_with_grad,
                          wrap_ddp)
from .phase_timer import PhaseTimer
from ..numerics import autocast, check_amp
from .precision import grad_scaler
from .streidnet_config import PRETRAIN_STAGES, StreidNetConfig
from .streidnet_losses import generator_objective, pose_discriminator_pairs
from .streidnet_schedule import linear_decay_scheduler, stage_learning_rates

# The release's panel (model/trainer.py get_current_visuals), in its order.
VISUAL_NAMES = (
    "ach", "ach_pose", "ach_mask", "ach_fake1", "ach_fake2",
    "pos", "pos_pose", "pos_mask", "pos_fake1", "pos_fake2",
)


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
        self.architecture = cfg.architecture()
        self.num_keypoints = self.architecture.num_keypoints
        quirks = cfg.quirks

        self.encoder = self.architecture.build_encoder(pretrained=cfg.pretrained if cfg.stage == 0 else None)
        self.generator = self.architecture.build_generator(self.encoder.feature_dim)
        self.image_discriminator = self.architecture.build_image_discriminator(
            pretrained=cfg.pretrained_di if cfg.stage != 2 else None)
        self.pose_discriminator = self.architecture.build_pose_discriminator()
        for role, net in (("E", self.encoder), ("G", self.generator), ("Di", self.image_discriminator),
                          ("Dp", self.pose_discriminator)):
            if cfg.stage in PRETRAIN_STAGES[role]:
                load_network(net, getattr(cfg, f"net{role}_pretrain"), role, f"--net{role}-pretrain")
        for net in self.networks.values():
            net.to(self.device)
        # G, Di and Dp in channels_last: oneDNN's convolutions then skip a reorder per layer (the
        # same float32 arithmetic, about 5 % of the iteration; benchmarks/train_speed.py). E stays
        # as it was: E is 4 % of the iteration, and in channels_last its rounding moved across a
        # ReLU's kink in the 2-process test, whose tight bound on E's gradient then failed.
        for net in (self.generator, self.image_discriminator, self.pose_discriminator):
            net.to(memory_format=torch.channels_last)
        self.dist = dist or DistContext()
        if sync_bn and self.dist.is_distributed:  # before the optimisers: the CPU conversion makes new parameters
            for net in (self.encoder,) * (cfg.stage == 0) + (self.generator, self.pose_discriminator):
                convert_sync_batchnorm(net, self.device)

        lrs = stage_learning_rates(cfg.stage, cfg.lr, cfg.lr_g)
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
            if generator.part_layer:
                feats, feature_map = self.encoder(images, map_layer=generator.part_layer)
                fake = generator(pose, feats, parts=generator.part_features(feature_map, pose))
            else:
                feats = self.encoder(images)
                fake = generator(pose, feats)
            return [feats, fake, self.image_discriminator(fake)]
        finally:
            for name, net in self.networks.items():
                net.train(was_training[name])

    def use_float32(self) -> None:
        self.amp = "off"

    def _encode(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        """Pre-BN features of [anchors; positives; negatives], E's maps of them when G's painting
        reads the source's limbs (else None), and the ID (or verification) loss."""
        cfg = self.config
        b = images.shape[0] // 3
        anchors, positives, negatives = images[:b], images[b: 2 * b], images[2 * b:]
        map_layer = self.generator.part_layer

        def run(encoder: nn.Module, x: Tensor) -> tuple:
            out = encoder(x, map_layer=map_layer)
            return out if map_layer else (out, None)

        def maps(parts: list) -> Tensor | None:
            return torch.cat(parts) if map_layer else None

        if cfg.stage == 1:  # fixed encoder: eval mode, no graph, no classification loss
            with torch.no_grad():
                outs = [run(self.encoder, part) for part in (anchors, positives, negatives)]
            return torch.cat([o for o, _ in outs]), maps([m for _, m in outs]), torch.zeros((), device=images.device)
        encoder = self._ddp["E"]
        if cfg.emb_type == "Siamese":
            # E sees (anchor, positive) pairs and (anchor, negative) pairs; the head judges each.
            (same, same_map), (other, other_map) = (run(encoder, torch.cat([anchors, x])) for x in (positives, negatives))
            feats = torch.cat([same.feat, other.feat[b:]])
            la, lp, ln = labels[:b], labels[b: 2 * b], labels[2 * b:]
            cls = 0.5 * (siamese_verification_loss(same.logits, torch.cat([la, lp]))
                         + siamese_verification_loss(other.logits, torch.cat([la, ln])))
            return feats, maps([same_map, other_map[b:]] if map_layer else []), cls
        outs = [run(encoder, part) for part in (anchors, positives, negatives)]
        feats = torch.cat([o.feat for o, _ in outs])
        logits = torch.cat([o.logits for o, _ in outs])
        cls = label_smoothed_cross_entropy(logits, labels, 0.1 if cfg.emb_smooth else 0.0)
        return feats, maps([m for _, m in outs]), cls

    def _generate(self, pose: Tensor, feats: Tensor, maps: Tensor | None
                  ) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor] | None]:
        """Self-reconstructions [G(p,e); G(p+,e+); G(p-,e-)] and swaps [G(p,e+); G(p+,e)],
        one G call per chunk so G's BatchNorm sees the release's sub-batches; with
        --lambda-paint, G's limb paintings of both, in the same order (else None).
        maps: E's maps of the images, which a source-limbs painting reads under each image's own
        pose (the image whose feature e_j is, is the one posed p_j)."""
        b = pose.shape[0] // 3
        p, e = pose.split(b), feats.split(b)
        generator = self._ddp["G"]
        # the limb painting's stroke masks depend on the pose alone: made once for the 3 poses, not 5 times
        painting = self.generator.limb_painting
        strokes = None if painting is None else painting.stroke_masks(pose)
        s = [None] * 3 if strokes is None else strokes.split(b)
        parts = [None] * 3 if maps is None else self.generator.part_features(maps, pose, strokes).split(b)
        calls = [(p[i], e[i], s[i], parts[i]) for i in range(3)] + [(p[0], e[1], s[0], parts[1]),
                                                                    (p[1], e[0], s[1], parts[0])]
        if self.config.lambda_paint > 0:
            drawn, paintings = zip(*(generator(pi, ej, with_painting=True, strokes=si, parts=aj)
                                     for pi, ej, si, aj in calls))
            painted = (torch.cat(paintings[:3]), torch.cat(paintings[3:]))
        else:
            drawn, painted = [generator(pi, ej, strokes=si, parts=aj) for pi, ej, si, aj in calls], None
        return torch.cat(drawn[:3]), torch.cat(drawn[3:]), painted

    def train_step(self, batch: dict[str, Tensor]) -> dict[str, float]:
        cfg, quirks = self.config, self.config.quirks
        dev = self.device
        images = batch["image"].to(dev, non_blocking=True)
        targets = _channels_last(batch["target"].to(dev, non_blocking=True))
        if not quirks.imagenet_targets:
            targets = imagenet_to_tanh_range(targets)
        pose = _channels_last(batch["pose"].to(dev, non_blocking=True))
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
                feats, maps, loss_cls = self._encode(images, labels)
            with timer("G forward"):
                fake, swap_fake, painted = self._generate(pose, feats, maps)

        # A discriminator whose adversarial weight is 0 changes neither G nor E: it is not run
        # (--lambda-d 0 / --lambda-dp 0 train G on reconstruction alone, several times faster).
        use_di, use_dp = cfg.lambda_d > 0, cfg.lambda_dp > 0
        unused = torch.zeros((), device=dev)
        loss_di = loss_dp = gan_di = gan_dp = unused

        # Di: real targets vs all five kinds of generated images, in one call: Di's BatchNorm is
        # frozen, so each image's verdict is the same as in separate calls, and one larger batch
        # runs faster than two
        if use_di:
            opt_di = self.optimizers["Di"]
            with timer("Di step (forward, backward, update)"):
                opt_di.zero_grad(set_to_none=True)
                with self._autocast():
                    logits = self._ddp["Di"](torch.cat([targets, fake.detach(), swap_fake.detach()]))
                    real_logits, fake_logits = logits[:n], logits[n:]
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
            loss_paint = unused
            if painted is not None:
                loss_paint = reconstruction_loss(painting_l1_loss(painted[1], targets[: 2 * b]),
                                                 painting_l1_loss(painted[0], targets))
                loss_g = loss_g + cfg.lambda_recon * cfg.lambda_paint * loss_paint
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
        if painted is not None:
            values["G_paint"] = loss_paint
        losses = {name: float(value.detach()) for name, value in values.items()}
        # what the NaN guard watches: every objective optimised in this iteration
        losses["loss"] = losses["E"] + losses["D_i"] + losses["D_p"]
        return losses

    # -------------------------------------------------------- display

    def generated_to_unit(self, images: Tensor) -> Tensor:
        return self.architecture.generated_to_unit(images)

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


def _channels_last(images: Tensor) -> Tensor:
    return images.contiguous(memory_format=torch.channels_last)


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
