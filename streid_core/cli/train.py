"""`streid train`: train ST-ReIDNet with the flags of the original train.py (same names, same
meanings, same defaults), plus streid's --release-compat, --device, --amp, --select-on,
--pretrained, --resume and --max-iters-per-epoch."""
from __future__ import annotations

import argparse

from ..models.limb_painting import PAINT_SOURCES
from ..models.reid import ARCHS
from ..training.config import AMP_MODES, SELECT_ON, LoopConfig, ReleaseQuirks
from ..training.display import DisplayOptions
from ..training.streidnet_config import PRESETS, STAGES, StreidNetConfig, StreidNetRunConfig, resolve_pretrained
from ._args import RawDescriptionDefaultsHelpFormatter, config_values

_DESCRIPTION = """\
Train ST-ReIDNet (E, G, Di, Dp) with the original train.py's flags. The README command works
with `python3 train.py` replaced by `streid train`. Outputs go to CHECKPOINTS/NAME/: log.txt,
config.json, TensorBoard events, checkpoint.pth.tar (resume with --resume), model_best.pth.tar,
results.json, <epoch>_net_{E,G,Di,Dp}.pth every --save-step epochs, web/index.html.

Stages: 0 trains everything end to end (the paper); 1 trains G, Di, Dp around a fixed E loaded
from --netE-pretrain; 2 fine-tunes all four loaded from the --net*-pretrain files (E's and Di's
BatchNorm frozen). Those files may be the original release's <epoch>_net_X.pth, streid's
snapshots, or a streid checkpoint.pth.tar.

Several GPUs or nodes: launch under torchrun (`torchrun --nproc_per_node 4 -m streid_core train
...`); -b stays the global batch, split evenly over the processes; only rank 0 writes.

Release bugs are fixed by default; --release-compat reproduces the released code's behaviour as
a whole (see the README's list).
"""


_MODEL = StreidNetConfig(num_classes=0)  # num_classes and keypoints come from the dataset
_RUN = StreidNetRunConfig(model=_MODEL)
_DISPLAY = DisplayOptions()


def _data_flags(p: argparse._ArgumentGroup) -> None:
    p.add_argument("-d", "--dataset", default=_RUN.dataset,
                   help="dataset folder under --dataroot, matched case-insensitively (DanceReID, DanceReid, "
                        "market1501, dukemtmc, synthdance, ...); it must have pose files")
    p.add_argument("--dataroot", default=_RUN.dataroot,
                   help="folder holding the datasets (the original's was ./datasets/)")
    p.add_argument("-b", "--batch-size", type=int, default=_RUN.batch_size,
                   help="triplets per iteration, 3 images each (the README uses 24)")
    p.add_argument("-j", "--workers", type=int, default=_RUN.workers, help="DataLoader worker processes")
    p.add_argument("--width", type=int, default=_MODEL.width, help="image, pose-map and mask width, divisible by 32")
    p.add_argument("--height", type=int, default=_MODEL.height, help="image, pose-map and mask height, divisible by 32")
    p.add_argument("--skip-frame", type=int, default=_RUN.skip_frame,
                   help="sparse-temporal sampling: the positive is drawn outside +-N samples of the anchor")
    p.add_argument("--inter-rate", type=float, default=_RUN.inter_rate,
                   help="probability of the sparse-temporal branch (far positive, same-video negative); needs "
                        "video information, as DanceReID's video.json")
    p.add_argument("--pose-aug", default=_RUN.pose_aug, choices=("no", "erase", "gauss"),
                   help="pose-map augmentation: gauss draws sigma from {4,5,6} per image, erase empties one "
                        "joint's channel")
    p.add_argument("--eraser", action="store_true", help="random erasing on E's input (G's target stays clean)")
    p.add_argument("--skip-validation", action="store_true",
                   help="do not check the dataset before the run (every image's header and end, every training "
                        "pose file, the split's identities); for data you know is good")


def _model_flags(p: argparse._ArgumentGroup) -> None:
    p.add_argument("--stage", type=int, default=_MODEL.stage, choices=STAGES,
                   help="0 end-to-end, 1 fixed E from --netE-pretrain, 2 fine-tune all four")
    for net, what in (("E", "E (stages 1 and 2)"), ("G", "G (stage 2)"), ("Dp", "Dp (stage 2)"), ("Di", "Di (stage 2)")):
        p.add_argument(f"--net{net}-pretrain", default=getattr(_MODEL, f"net{net}_pretrain"), metavar="PATH",
                       help=f"weights of {what}; DataParallel 'module.' prefixes are stripped")
    p.add_argument("--arch", default=_MODEL.arch, choices=ARCHS, help="E's ResNet")
    p.add_argument("--norm", default=_MODEL.norm, choices=("batch", "instance", "none"),
                   help="normalisation in G and Dp")
    p.add_argument("--drop", type=float, default=_MODEL.drop, help="dropout in G's decoder")
    p.add_argument("--connect-layers", type=int, default=_MODEL.connect_layers, choices=range(6), metavar="{0..5}",
                   help="skip connections from G's pose encoder into its decoder")
    p.add_argument("--fuse-mode", default=_MODEL.fuse_mode, choices=("cat", "add"),
                   help="how G fuses E's feature with the pose code")
    p.add_argument("--pose-feature-size", type=int, default=_MODEL.pose_feature_size, help="length of G's pose code")
    p.add_argument("--ngf", type=int, default=_MODEL.ngf,
                   help="G's base width: every layer of G scales with it, its cost with the square (the "
                        "release's; the CPU preset uses 32)")
    p.add_argument("--paint-limbs", action=_Switch, default=_MODEL.paint_limbs,
                   help="not in the paper: G's pose input also holds the target's limb strokes, each coloured by a "
                        "linear map of E's features (models/limb_painting.py); --preset cpu-draw turns it on, "
                        "--no-paint-limbs --lambda-paint 0 off")
    p.add_argument("--paint-from", default=_MODEL.paint_from, choices=PAINT_SOURCES,
                   help="with --paint-limbs: the strokes' colours from E's descriptor, or from E's feature map "
                        "averaged under each limb of the source image's own pose (source-limbs; drawing then needs "
                        "the source's keypoints too)")
    p.add_argument("--paint-layer", type=int, default=_MODEL.paint_layer, choices=(1, 2, 3, 4),
                   help="with --paint-from source-limbs: the stage of E's ResNet trunk whose map is read (4: the map "
                        "the descriptor is pooled from; earlier stages keep more of the colours, and G's losses "
                        "then reach only the trunk up to that stage)")
    p.add_argument("--noise-feature-size", type=int, default=256,
                   help="accepted for old command lines and unused: the original never fed noise to G")
    p.add_argument("--emb-type", default=_MODEL.emb_type, choices=("Single", "Siamese"),
                   help="E's head: ID classifier (Single) or same/different pair classifier (Siamese)")
    p.add_argument("--last-stride", type=int, default=_MODEL.last_stride, choices=(1, 2),
                   help="stride of E's layer4 (the README uses 1)")
    p.add_argument("--pretrained", default=_MODEL.pretrained, metavar="PATH",
                   help="local ImageNet weights for E and Di: a torchvision state dict file (E's arch), or a folder "
                        "with <arch>.pth / <arch>-*.pth and resnet18*.pth (torch hub's cache); nothing is downloaded "
                        "(none: random initialisation). A trunk taken from a streid baseline runs at that baseline's "
                        "--last-stride (its default is 1): the same weights at another stride give other features")


def _loss_flags(p: argparse._ArgumentGroup) -> None:
    p.add_argument("--lambda-dp", type=float, default=_MODEL.lambda_dp, help="weight of G's adversarial loss against Dp")
    p.add_argument("--lambda-d", type=float, default=_MODEL.lambda_d, help="weight of G's adversarial loss against Di")
    p.add_argument("--lambda-recon", type=float, default=_MODEL.lambda_recon,
                   help="weight of the reconstruction loss 0.7 swap + 0.3 self")
    p.add_argument("--lambda-paint", type=float, default=_MODEL.lambda_paint,
                   help="with --paint-limbs: weight (times --lambda-recon) of the limb painting's L1 against the real "
                        "target under its strokes, which teaches E's feature the limbs' colours directly")
    p.add_argument("--lambda-tri", type=float, default=_MODEL.lambda_tri, help="weight of the triplet loss")
    p.add_argument("--lambda-class", type=float, default=_MODEL.lambda_class, help="weight of the classification loss")
    p.add_argument("--smooth-label", action="store_true",
                   help="noisy discriminator targets: real ~ U(0.9, 1), fake ~ U(0, 0.1), rare real/fake swap")
    p.add_argument("--margin", type=float, default=_MODEL.margin, help="hard triplet margin, used without --soft-margin")
    p.add_argument("--soft-margin", action="store_true", help="soft-margin triplet loss")
    p.add_argument("--batch-hard", action="store_true",
                   help="accepted for old command lines: batch-hard mining is always on")
    p.add_argument("--mask", action="store_true",
                   help="reconstruction loss weighted 10x inside the skeleton mask")
    p.add_argument("--emb-smooth", action="store_true", help="label-smoothed ID cross entropy (epsilon 0.1)")


def _optim_flags(p: argparse._ArgumentGroup) -> None:
    p.add_argument("--niter", type=int, default=_MODEL.niter, help="epochs at the initial learning rates")
    p.add_argument("--niter-decay", type=int, default=_MODEL.niter_decay,
                   help="then epochs of linear decay towards 0; total = niter + niter-decay")
    p.add_argument("--lr", type=float, default=_MODEL.lr,
                   help="E's SGD learning rate; in stage 1 also G (x0.1), Di and Dp; stage 0: G 1e-5, Di/Dp 4e-5; "
                        "stage 2: G 1e-6, Di/Dp 1e-5 (the README uses 2e-5)")
    p.add_argument("--lr-g", type=float, default=_MODEL.lr_g, metavar="LR",
                   help="G's Adam learning rate in any stage, instead of the stage's (not in the release: at "
                        "stage 0's 1e-5 G needs a GPU budget to learn to draw; the CPU recipe uses 2e-4)")
    p.add_argument("--save-step", type=int, default=_RUN.save_step,
                   help="write <epoch>_net_{E,G,Di,Dp}.pth every N epochs")
    p.add_argument("--eval-step", type=int, default=_RUN.eval_step, help="evaluate E every N epochs and after the last")
    p.add_argument("--transfer-eval-every", type=int, default=_RUN.transfer_eval_every, metavar="N",
                   help="score pose transfer (body L1, SSIM, pose and identity accuracy on held-out test dancers) "
                        "every N iterations and after the last: TensorBoard transfer/*, <run>/transfer_metrics.jsonl "
                        "(0: off)")
    p.add_argument("--transfer-eval-pairs", type=int, default=_RUN.transfer_eval_pairs,
                   help="(source, target) pairs per pose-transfer evaluation")
    p.add_argument("--sync-bn", action="store_true",
                   help="multi-process runs (torchrun): BatchNorm statistics of E, G and Dp over the global batch "
                        "(torch SyncBatchNorm on CUDA, streid's all-reduce BatchNorm on CPU/gloo)")


def _display_flags(p: argparse._ArgumentGroup) -> None:
    p.add_argument("--display-port", type=int, default=_DISPLAY.display_port, help="visdom server port on 127.0.0.1")
    p.add_argument("--display-id", type=int, default=_DISPLAY.display_id,
                   help="> 0 shows visuals and loss curves (visdom windows id, id+1, id+2 when visdom is installed "
                        "and running; always TensorBoard and web/index.html); 0 turns the display off")
    p.add_argument("--display-winsize", type=int, default=_DISPLAY.display_winsize, help="image width in web/index.html")
    p.add_argument("--display-freq", type=int, default=_DISPLAY.display_freq, help="show visuals every N samples (triplets)")
    p.add_argument("--display-single-pane-ncols", dest="single_pane_ncols", type=int, metavar="N",
                   default=_DISPLAY.single_pane_ncols,
                   help="> 0: all visuals in one visdom pane, N per row (the grid is 5 per row otherwise)")
    p.add_argument("--update-html-freq", type=int, default=_DISPLAY.update_html_freq,
                   help="rewrite web/index.html every N samples, at a display")
    p.add_argument("--no_html", action="store_true", help="do not write web/index.html and its images")
    p.add_argument("--print-freq", type=int, default=_RUN.print_freq,
                   help="a progress line in log.txt about every N samples (triplets)")


_GIVEN = "given_flags"  # the dests of the flags on the command line, for --preset


def _mark_given(namespace: argparse.Namespace, dest: str) -> None:
    setattr(namespace, _GIVEN, getattr(namespace, _GIVEN, frozenset()) | {dest})


class _Store(argparse._StoreAction):
    """The plain value flag, remembering that it was given (so --preset leaves it alone)."""

    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        _mark_given(namespace, self.dest)


class _Switch(argparse.BooleanOptionalAction):
    """--flag / --no-flag, remembering that it was given."""

    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        _mark_given(namespace, self.dest)


class _ApplyPreset(argparse.Action):
    """--preset NAME: the preset's values for every flag not given on the command line, so an
    explicit flag wins wherever it stands (also one given at its default value)."""

    def __call__(self, parser, namespace, name, option_string=None):
        given = getattr(namespace, _GIVEN, frozenset())
        for dest, value in PRESETS[name].items():
            if dest not in given:
                setattr(namespace, dest, value)
        setattr(namespace, self.dest, name)


def _run_flags(p: argparse._ArgumentGroup) -> None:
    p.add_argument("--preset", choices=sorted(PRESETS), action=_ApplyPreset, default=None,
                   help="named settings, overridden by explicit flags. cpu-draw: the CPU recipe under which G "
                        "learns to draw (--ngf 32 --connect-layers 5 --drop 0 --lambda-d 0 --lambda-dp 0 "
                        "--lr-g 2e-4 --paint-limbs --lambda-paint 1 --paint-from source-limbs --paint-layer 1; "
                        "reports/transfer-curve)")
    p.add_argument("--checkpoints", default=_RUN.checkpoints, help="output root")
    p.add_argument("--name", default=_RUN.name, help="experiment folder under --checkpoints")
    p.add_argument("--seed", type=int, default=_RUN.seed, help="seed of every random generator")
    p.add_argument("--release-compat", action="store_true",
                   help="reproduce the released code as a whole: doubled generator gradient, ImageNet-normalised "
                        "targets, release sampler/eraser/flips, stem without ReLU, BN-neck not optimised, LR 0 in "
                        "the last epoch")
    p.add_argument("--select-on", default=_RUN.select_on, choices=SELECT_ON,
                   help="val: hold out the last identities of trainval and keep the best validation epoch; "
                        "test: train on all trainval and keep the best test epoch, as the original")
    p.add_argument("--device", default=LoopConfig().device, help="auto (CUDA if present), cpu, cuda or cuda:N")
    p.add_argument("--amp", nargs="?", const="bf16", default=_MODEL.amp, choices=AMP_MODES,
                   help="mixed precision: bf16 (CPU or CUDA; bare --amp) or fp16 (CUDA, loss-scaled)")
    p.add_argument("--resume", default=_RUN.resume, metavar="PATH", help="continue from a run's checkpoint.pth.tar")
    p.add_argument("--max-iters-per-epoch", type=int, default=_RUN.max_iters_per_epoch, metavar="N",
                   help="stop each epoch after N iterations (quick experiments)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train ST-ReIDNet (the original train.py flags)", description=_DESCRIPTION,
        formatter_class=RawDescriptionDefaultsHelpFormatter)
    parser.register("action", None, _Store)  # every plain value flag records that it was given
    _data_flags(parser.add_argument_group("data"))
    _model_flags(parser.add_argument_group("model"))
    _loss_flags(parser.add_argument_group("losses"))
    _optim_flags(parser.add_argument_group("optimisation"))
    _display_flags(parser.add_argument_group("display"))
    _run_flags(parser.add_argument_group("run"))
    parser.set_defaults(run=_run)


def run_config(args: argparse.Namespace) -> StreidNetRunConfig:
    """The parsed flags as a StreidNetRunConfig: every config field with a flag of the same name
    takes its value; --pretrained is resolved into E's and Di's files, --release-compat sets the
    quirks."""
    # A preset's painting settings do not outlive a flag that switches them off (--no-paint-limbs,
    # --paint-from descriptor); one the user gave stays, for validation to refuse.
    given = getattr(args, _GIVEN, frozenset())
    if "paint_from" not in given and not args.paint_limbs:
        args.paint_from = _MODEL.paint_from
    if "paint_layer" not in given and args.paint_from != "source-limbs":
        args.paint_layer = _MODEL.paint_layer
    pretrained, pretrained_di = resolve_pretrained(args.pretrained, args.arch)
    model = StreidNetConfig(**{**config_values(StreidNetConfig, args), "num_classes": 0, "pretrained": pretrained,
                               "pretrained_di": pretrained_di,
                               "quirks": ReleaseQuirks.switched(args.release_compat)})
    return StreidNetRunConfig(**config_values(StreidNetRunConfig, args), model=model,
                              display=DisplayOptions(**config_values(DisplayOptions, args)))


def _run(args: argparse.Namespace) -> int:
    from ..training.streidnet_run import train_streidnet

    result = train_streidnet(run_config(args))
    if not result.test:  # another rank of a torchrun run: rank 0 reports
        return 0
    test = ", ".join(f"{k} {100 * v:.1f}" for k, v in result.test.items() if k in ("mAP", "R1", "R5", "R10"))
    print(f"selected epoch {result.selected_epoch} ({result.selection}): test {test}; {result.selected_checkpoint}")
    return 0
