"""The configuration of ST-ReIDNet training: `StreidNetConfig` (the networks, their optimisation
and the release's quirks) and `StreidNetRunConfig` (a whole `streid train` run: data, loop and
display around the model), with the checks a resume and --pretrained need before any work."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import check_output_dir
from ..errors import StreidError
from ..models.generator import RELEASE_NGF
from ..models.limb_painting import PAINT_SOURCES
from ..models.reid import MAP_LAYERS
from ..models.streidnet import StreidNetArchitecture
from .config import LoopConfig, ReleaseQuirks, check_rate
from .display import DisplayOptions
from .distributed import check_batch_split, launched_world_size

STAGES = (0, 1, 2)
# The stages that load each network's --net*-pretrain file (docs/original-system.md §1.2): stage 1
# starts from a trained E, stage 2 fine-tunes all four.
PRETRAIN_STAGES: dict[str, tuple[int, ...]] = {"E": (1, 2), "G": (2,), "Di": (2,), "Dp": (2,)}


# Named settings of `streid train --preset NAME` (explicit flags override them). "cpu-draw": the
# recipe under which G learns to draw on a CPU budget (reports/transfer-curve): G at half the
# release's width, 5 skip connections, no dropout, reconstruction losses only (Di and Dp are not
# run), Adam 2e-4 for G whatever the stage, and the limb painting with its own loss, its colours
# read from E's stage-1 map under the source's limbs (with E's descriptor, new dancers' clothes
# were not drawn: identity accuracy 0.64 against 0.84). Deviations from the paper, each measured there.
PRESETS: dict[str, dict[str, object]] = {
    "cpu-draw": {"ngf": 32, "connect_layers": 5, "drop": 0.0, "lambda_d": 0.0, "lambda_dp": 0.0, "lr_g": 2e-4,
                 "paint_limbs": True, "lambda_paint": 1.0, "paint_from": "source-limbs", "paint_layer": 1},
}


def check_painting_source(paint_from: str, paint_layer: int) -> None:
    """--paint-from and --paint-layer each one of their values (StreidNetConfig, the comparison budget)."""
    if paint_from not in PAINT_SOURCES:
        raise StreidError(f"--paint-from {paint_from!r}: choose one of {', '.join(PAINT_SOURCES)}")
    if paint_layer not in MAP_LAYERS:
        raise StreidError(f"--paint-layer {paint_layer}: a stage of E's ResNet trunk, one of "
                          f"{', '.join(map(str, MAP_LAYERS))}")


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
    paint_limbs: bool = False  # G's pose input also holds the limb painting (models/limb_painting.py); not in the release
    paint_from: str = "descriptor"  # the painting's colours: from E's descriptor or E's map under the source's limbs
    paint_layer: int = 4  # which stage of E's trunk a source-limbs painting reads (4: the descriptor's map)
    lr: float = 0.001
    # G's Adam learning rate; None: the stage's (stage 0: 1e-5, stage 1: 0.1 x lr, stage 2: 1e-6). Not in
    # the release: at its stage-0 rate G needs the paper's GPU budget to draw (reports/transfer-curve)
    lr_g: float | None = None
    niter: int = 50
    niter_decay: int = 50
    lambda_d: float = 1.0
    lambda_dp: float = 1.0
    lambda_recon: float = 1.0
    # with --paint-limbs: the painting's own L1 against the real target under its strokes, weighted
    # lambda_recon * lambda_paint, swap and self as in the reconstruction (not in the release)
    lambda_paint: float = 0.0
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
        if self.lr_g is not None:
            check_rate("--lr-g", self.lr_g, positive=True)
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
                            ("--lambda-class", self.lambda_class), ("--lambda-paint", self.lambda_paint)):
            check_rate(flag, value)
        if self.lambda_paint > 0 and not self.paint_limbs:
            raise StreidError(f"--lambda-paint {self.lambda_paint}: weighs the loss of a limb painting G does not have; "
                              "add --paint-limbs, or pass --lambda-paint 0 (also with --preset cpu-draw --no-paint-limbs)")
        check_painting_source(self.paint_from, self.paint_layer)
        if self.paint_from != "descriptor" and not self.paint_limbs:
            raise StreidError(f"--paint-from {self.paint_from}: chooses the colours of a limb painting G does not have; "
                              "add --paint-limbs, or drop --paint-from")
        if self.paint_layer != 4 and self.paint_from != "source-limbs":
            raise StreidError(f"--paint-layer {self.paint_layer}: the stage a source-limbs painting reads; "
                              "add --paint-from source-limbs, or drop --paint-layer")
        if not self.soft_margin:
            check_rate("--margin", self.margin, positive=True)
        self._check_pretrain_files_are_read()

    def _check_pretrain_files_are_read(self) -> None:
        """A --net*-pretrain file the stage does not load would be ignored without a word (as
        the release does): say so before the run starts."""
        for net, stages in PRETRAIN_STAGES.items():
            path = getattr(self, f"net{net}_pretrain")
            if path and self.stage not in stages:
                start = "E starts from --pretrained" if net == "E" else f"{net} starts from fresh weights, as in the release"
                read_in = " and ".join(map(str, stages))
                raise StreidError(
                    f"--net{net}-pretrain {path}: stage {self.stage} does not read it ({start}); it is read in "
                    f"stage{'s' if len(stages) > 1 else ''} {read_in}: use --stage {stages[0]}, or drop the flag")

    def to_dict(self) -> dict[str, Any]:
        """Plain values only, so a checkpoint holding it loads with weights_only=True."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "StreidNetConfig":
        values = dict(values)
        values["quirks"] = ReleaseQuirks(**values.get("quirks", {}))
        return cls(**values)

    def architecture(self) -> StreidNetArchitecture:
        """What builds the four networks (as pose transfer reads it back from a checkpoint)."""
        return StreidNetArchitecture.from_config(self.to_dict())




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
        if self.display is not None and self.display.display_id < 0:  # would be read as "off" without a word
            raise StreidError(f"--display-id {self.display.display_id}: must be >= 1 (visdom window id), or 0 to turn "
                              "the display off")
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
        name = Path(self.name)
        if not self.name.strip() or name.is_absolute() or ".." in name.parts or name == Path("."):
            # the run must get its own folder under --checkpoints, not the folder itself or one outside it
            raise StreidError(f"--name {self.name!r}: must name a folder under --checkpoints, e.g. --name dance_run1")
        check_output_dir(self.run_dir, "--checkpoints/--name")
        self.loop_config().validate()


_ARCHITECTURE_FIELDS = ("keypoints", "stage", "arch", "emb_type", "last_stride", "height", "width", "norm",
                        "connect_layers", "fuse_mode", "pose_feature_size", "ngf", "paint_limbs", "paint_from", "paint_layer",
                        "num_classes", "quirks")


def check_same_architecture(checkpoint: dict[str, Any], current: StreidNetConfig, source: str) -> None:
    """A resumed state must come from the same networks and optimiser layout."""
    stored = (checkpoint.get("task") or {}).get("config")
    if not isinstance(stored, dict):
        raise StreidError(f"{source}: not an ST-ReIDNet run's checkpoint (no generator and discriminators); "
                          "resume from the checkpoint.pth.tar of a `streid train` run")
    now = current.to_dict()
    if isinstance(stored.get("quirks"), dict):  # a quirk one streid version lacks cannot be compared
        now["quirks"] = {k: v for k, v in now["quirks"].items() if k in stored["quirks"]}
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


