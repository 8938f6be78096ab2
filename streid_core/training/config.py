"""Configuration dataclasses of the training runs.

- `LoopConfig`: what the shared loop (engine) needs, the same for every task.
- `ReleaseQuirks`: the released code's behaviours that change its numbers, for both trainers.
- `BaselineConfig`: every option of the original `baseline.py` plus streid's extras.

Both serialise to plain JSON (`dataclasses.asdict`) for `config.json` and checkpoints.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields

from ..atomic import check_output_dir
from ..errors import StreidError
from ..models.loading import EncoderConfig

AMP_MODES = ("off", "bf16", "fp16")
SELECT_ON = ("val", "test")


def check_rate(flag: str, value: float, *, positive: bool = False) -> None:
    """A learning rate, weight or decay: a finite number, > 0 (`positive`) or >= 0. NaN fails
    every comparison, so `value <= 0` alone would let it through."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
            or value < 0 or (positive and value == 0):
        raise StreidError(f"{flag} {value}: must be a finite number {'> 0' if positive else '>= 0'}")


def check_seed(flag: str, value: int) -> None:
    if not 0 <= value < 2**32:
        raise StreidError(f"{flag} {value}: must be between 0 and 2**32 - 1")


@dataclass
class LoopConfig:
    """Epochs, evaluation, checkpoints and the machinery around a task's iterations."""

    logs_dir: str = "checkpoints"
    epochs: int = 50
    eval_step: int = 20  # evaluate after every eval_step-th (1-based) epoch and after the last
    select_on: str = "val"  # "val": held-out identities; "test": the original's optimistic choice
    seed: int = 1
    deterministic: bool = False
    device: str = "auto"
    amp: str = "off"
    workers: int = 4
    eval_batch_size: int = 64
    max_iters_per_epoch: int | None = None  # cut epochs short (quick experiments, tests)
    print_freq: int = 50  # log.txt line every print_freq iterations
    resume: str = ""
    progress: bool = True  # tqdm bars (on rank 0)

    def validate(self) -> None:
        if self.epochs < 1:
            raise StreidError(f"--epochs {self.epochs}: train for at least 1 epoch")
        if self.eval_step < 1:
            raise StreidError(f"--eval-step {self.eval_step}: must be >= 1 (evaluate every N epochs)")
        if self.select_on not in SELECT_ON:
            raise StreidError(f"--select-on {self.select_on}: choose val or test")
        if self.amp not in AMP_MODES:
            raise StreidError(f"--amp {self.amp}: choose one of {', '.join(AMP_MODES)}")
        if self.workers < 0:
            raise StreidError(f"-j/--workers {self.workers}: must be >= 0")
        if self.max_iters_per_epoch is not None and self.max_iters_per_epoch < 1:
            raise StreidError(f"--max-iters-per-epoch {self.max_iters_per_epoch}: must be >= 1")
        if self.print_freq < 1:
            raise StreidError(f"--print-freq {self.print_freq}: must be >= 1")
        if self.eval_batch_size < 1:
            raise StreidError(f"eval_batch_size {self.eval_batch_size}: must be >= 1")
        check_seed("--seed", self.seed)
        if self.resume and not os.path.isfile(self.resume):
            raise StreidError(f"--resume {self.resume}: no such checkpoint file; pass the checkpoint.pth.tar of a run")


@dataclass(frozen=True)
class ReleaseQuirks:
    """Behaviours of the released code that change its numbers (docs/original-system.md §12; the
    § below are that document's). All off by default, the corrected behaviour;
    `ReleaseQuirks.release()` turns all of them on (--release-compat of both trainers). The
    baseline has an encoder and data, so only stem_without_relu, frozen_bn_neck and
    data_pipeline change it; ST-ReIDNet uses all of them."""

    double_generator_gradient: bool = False  # L_G back-propagated twice into E and G (§3.4)
    imagenet_targets: bool = False  # targets ImageNet-normalised, G outputs tanh (§3.1)
    stem_without_relu: bool = False  # ResNet stem without ReLU in E and Di (§2.1)
    frozen_bn_neck: bool = False  # E's BN-neck weight in no optimiser (§2.1, §3.5)
    zero_lr_last_epoch: bool = False  # schedule reaches 0 in the last epoch (§3.5)
    # the data pipeline's: release sampler, eraser and flips, and a split whose query and gallery
    # share identities accepted (the release's DanceReID split)
    data_pipeline: bool = False

    @classmethod
    def release(cls) -> "ReleaseQuirks":
        return cls(**{f.name: True for f in fields(cls)})

    @classmethod
    def switched(cls, release_compat: bool) -> "ReleaseQuirks":
        """What --release-compat sets: all of them, or none."""
        return cls.release() if release_compat else cls()


@dataclass
class BaselineConfig:
    """`streid baseline`: the options of the original baseline.py (docs/original-system.md §1.1)
    and streid's extras.

    Field names follow the original flags (`--lambda-tri` -> lambda_tri). Defaults are the
    original's except data_dir ("data", where every streid command looks for datasets).
    """

    # data
    dataset: str = "DanceReID"
    batch_size: int = 256  # triplets (Single) or pairs (Siamese) per iteration, over all processes
    workers: int = 4
    split: int = 0
    height: int | None = None  # None -> 256
    width: int | None = None  # None -> 128
    combine_trainval: bool = False
    np_ratio: int = 3
    inst_mode: bool = False
    data_dir: str = "data"
    skip_validation: bool = False  # trust the data: no check of images, poses and split before the run
    # model
    arch: str = "resnet50"
    emb_type: str = "Single"
    last_stride: int = 1
    use_bn: bool = False
    test_bn: bool = False
    pool: str = "max"
    pretrained: str | None = None
    quirks: ReleaseQuirks = field(default_factory=ReleaseQuirks)  # --release-compat: all on
    # losses
    soft_margin: bool = False
    margin: float = 4.0
    lambda_tri: float = 1.0
    lambda_cla: float = 1.0
    label_smoothing: bool = False
    eraser: bool = False
    # optimiser and schedule
    lr: float = 0.01
    opt_name: str = "Adam"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    step_size: int = 40
    sync_bn: bool = False
    # loop
    epochs: int = 50
    eval_step: int = 20
    select_on: str = "val"
    seed: int = 1
    deterministic: bool = False
    device: str = "auto"
    amp: str = "off"
    max_iters_per_epoch: int | None = None
    print_freq: int = 50
    logs_dir: str = "checkpoints"
    resume: str = ""
    evaluate: bool = False

    @property
    def input_size(self) -> tuple[int, int]:
        # `is None`, not `or`: --height 0 must be refused, not silently become 256
        return (256 if self.height is None else self.height, 128 if self.width is None else self.width)

    def validate(self) -> None:
        if self.batch_size < 1:
            raise StreidError(f"-b/--batch-size {self.batch_size}: must be >= 1")
        if self.split < 0:
            raise StreidError(f"--split {self.split}: must be >= 0 (an index into splits.json)")
        for flag, value in (("--height", self.height), ("--width", self.width)):
            if value is not None and value < 1:
                raise StreidError(f"{flag} {value}: must be a positive number of pixels")
        check_rate("--lr", self.lr, positive=True)
        check_rate("--momentum", self.momentum)
        if self.opt_name != "SGD" and self.momentum != BaselineConfig.momentum:
            # make_optimizer gives momentum to SGD alone; any other optimiser would silently ignore it
            raise StreidError(f"--momentum {self.momentum}: only --opt-name SGD uses it (this run uses "
                              f"{self.opt_name}); pass --opt-name SGD, or drop --momentum")
        check_rate("--weight-decay", self.weight_decay)
        check_rate("--lambda-tri", self.lambda_tri)
        check_rate("--lambda-cla", self.lambda_cla)
        if not self.soft_margin:
            check_rate("--margin", self.margin, positive=True)
        if self.emb_type not in ("Single", "Siamese"):
            raise StreidError(f"--emb-type {self.emb_type}: choose Single or Siamese")
        if self.np_ratio < 1:
            raise StreidError(f"--np-ratio {self.np_ratio}: need at least 1 negative pair per positive pair")
        if self.step_size < 1:
            raise StreidError(f"--step-size {self.step_size}: must be >= 1 epoch")
        height, width = self.input_size
        if height < 16 or width < 8:
            raise StreidError(f"--height {height} --width {width}: input too small for a ResNet (need >= 16 x 8)")
        if self.evaluate and not self.resume:
            raise StreidError("--evaluate needs --resume PATH: the checkpoint to evaluate")
        if self.pretrained and not os.path.isfile(self.pretrained):
            raise StreidError(f"--pretrained {self.pretrained}: no such file; pass a local torchvision ResNet state dict")
        self.loop_config().validate()
        if self.evaluate:  # log_test.txt goes beside the checkpoint
            check_output_dir(os.path.dirname(self.resume) or ".", "--resume")
        else:
            check_output_dir(self.logs_dir, "--logs-dir")

    def loop_config(self) -> LoopConfig:
        return LoopConfig(
            logs_dir=self.logs_dir, epochs=self.epochs, eval_step=self.eval_step, select_on=self.select_on,
            seed=self.seed, deterministic=self.deterministic, device=self.device, amp=self.amp,
            workers=self.workers,
            max_iters_per_epoch=self.max_iters_per_epoch, print_freq=self.print_freq, resume=self.resume,
        )

    def encoder_config(self, num_classes: int) -> EncoderConfig:
        height, width = self.input_size
        return EncoderConfig(
            arch=self.arch, last_stride=self.last_stride, pool=self.pool, use_bn=self.use_bn,
            test_bn=self.test_bn, stem_relu=not self.quirks.stem_without_relu,
            num_classes=2 if self.emb_type == "Siamese" else num_classes,
            emb_type=self.emb_type, height=height, width=width,
        )
