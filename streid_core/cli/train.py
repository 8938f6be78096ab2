"""`streid train`: train ST-ReIDNet with the flags of the original train.py (same names, same
meanings, same defaults), plus streid's --release-compat, --device, --amp, --select-on,
--pretrained, --resume and --max-iters-per-epoch."""
from __future__ import annotations

import argparse

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


def _data_flags(p: argparse._ArgumentGroup) -> None:
    p.add_argument("-d", "--dataset", default="DanceReID",
                   help="dataset folder under --dataroot, matched case-insensitively (DanceReID, DanceReid, "
                        "market1501, dukemtmc, synthdance, ...); it must have pose files (default DanceReID)")
    p.add_argument("--dataroot", default="data",
                   help="folder holding the datasets (default data; the original's was ./datasets/)")
    p.add_argument("-b", "--batch-size", type=int, default=16,
                   help="triplets per iteration, 3 images each (default 16; the README uses 24)")
    p.add_argument("-j", "--workers", type=int, default=4, help="DataLoader worker processes (default 4)")
    p.add_argument("--width", type=int, default=128, help="image, pose-map and mask width, divisible by 32 (default 128)")
    p.add_argument("--height", type=int, default=256, help="image, pose-map and mask height, divisible by 32 (default 256)")
    p.add_argument("--skip-frame", type=int, default=20,
                   help="sparse-temporal sampling: the positive is drawn outside +-N samples of the anchor (default 20)")
    p.add_argument("--inter-rate", type=float, default=0.7,
                   help="probability of the sparse-temporal branch (far positive, same-video negative); needs "
                        "video information, as DanceReID's video.json (default 0.7)")
    p.add_argument("--pose-aug", default="no", choices=("no", "erase", "gauss"),
                   help="pose-map augmentation: gauss draws sigma from {4,5,6} per image, erase empties one "
                        "joint's channel (default no)")
    p.add_argument("--eraser", action="store_true", help="random erasing on E's input (G's target stays clean)")
    p.add_argument("--skip-validation", action="store_true",
                   help="do not check the dataset before the run (every image's header and end, every training "
                        "pose file, the split's identities); for data you know is good")


def _model_flags(p: argparse._ArgumentGroup) -> None:
    p.add_argument("--stage", type=int, default=0, choices=(0, 1, 2),
                   help="0 end-to-end, 1 fixed E from --netE-pretrain, 2 fine-tune all four (default 0)")
    for net, what in (("E", "E (stages 1 and 2)"), ("G", "G (stage 2)"), ("Dp", "Dp (stage 2)"), ("Di", "Di (stage 2)")):
        p.add_argument(f"--net{net}-pretrain", default="", metavar="PATH",
                       help=f"weights of {what}; DataParallel 'module.' prefixes are stripped")
    p.add_argument("--arch", default="resnet50", choices=("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"),
                   help="E's ResNet (default resnet50)")
    p.add_argument("--norm", default="batch", choices=("batch", "instance", "none"),
                   help="normalisation in G and Dp (default batch)")
    p.add_argument("--drop", type=float, default=0.2, help="dropout in G's decoder (default 0.2)")
    p.add_argument("--connect-layers", type=int, default=0, choices=range(6), metavar="{0..5}",
                   help="skip connections from G's pose encoder into its decoder (default 0)")
    p.add_argument("--fuse-mode", default="cat", choices=("cat", "add"),
                   help="how G fuses E's feature with the pose code (default cat)")
    p.add_argument("--pose-feature-size", type=int, default=128, help="length of G's pose code (default 128)")
    p.add_argument("--ngf", type=int, default=64,
                   help="G's base width: every layer of G scales with it, its cost with the square (default 64, "
                        "the release's; the CPU preset uses 32)")
    p.add_argument("--noise-feature-size", type=int, default=256,
                   help="accepted for old command lines and unused: the original never fed noise to G")
    p.add_argument("--emb-type", default="Single", choices=("Single", "Siamese"),
                   help="E's head: ID classifier (Single) or same/different pair classifier (Siamese) (default Single)")
    p.add_argument("--last-stride", type=int, default=2, choices=(1, 2),
                   help="stride of E's layer4 (default 2; the README uses 1)")
    p.add_argument("--pretrained", default=None, metavar="PATH",
                   help="local ImageNet weights for E and Di: a torchvision state dict file (E's arch), or a folder "
                        "with <arch>.pth / <arch>-*.pth and resnet18*.pth (torch hub's cache); nothing is downloaded "
                        "(default: random initialisation)")


def _loss_flags(p: argparse._ArgumentGroup) -> None:
    p.add_argument("--lambda-dp", type=float, default=1.0, help="weight of G's adversarial loss against Dp (default 1.0)")
    p.add_argument("--lambda-d", type=float, default=1.0, help="weight of G's adversarial loss against Di (default 1.0)")
    p.add_argument("--lambda-recon", type=float, default=1.0,
                   help="weight of the reconstruction loss 0.7 swap + 0.3 self (default 1.0)")
    p.add_argument("--lambda-tri", type=float, default=1.0, help="weight of the triplet loss (default 1.0)")
    p.add_argument("--lambda-class", type=float, default=1.0, help="weight of the classification loss (default 1.0)")
    p.add_argument("--smooth-label", action="store_true",
                   help="noisy discriminator targets: real ~ U(0.9, 1), fake ~ U(0, 0.1), rare real/fake swap")
    p.add_argument("--margin", type=float, default=1.0, help="hard triplet margin, used without --soft-margin (default 1.0)")
    p.add_argument("--soft-margin", action="store_true", help="soft-margin triplet loss")
    p.add_argument("--batch-hard", action="store_true",
                   help="accepted for old command lines: batch-hard mining is always on")
    p.add_argument("--mask", action="store_true",
                   help="reconstruction loss weighted 10x inside the skeleton mask")
    p.add_argument("--emb-smooth", action="store_true", help="label-smoothed ID cross entropy (epsilon 0.1)")


def _optim_flags(p: argparse._ArgumentGroup) -> None:
    p.add_argument("--niter", type=int, default=50, help="epochs at the initial learning rates (default 50)")
    p.add_argument("--niter-decay", type=int, default=50,
                   help="then epochs of linear decay towards 0 (default 50); total = niter + niter-decay")
    p.add_argument("--lr", type=float, default=0.001,
                   help="E's SGD learning rate; in stage 1 also G (x0.1), Di and Dp; stage 0: G 1e-5, Di/Dp 4e-5; "
                        "stage 2: G 1e-6, Di/Dp 1e-5 (default 0.001; the README uses 2e-5)")
    p.add_argument("--save-step", type=int, default=20,
                   help="write <epoch>_net_{E,G,Di,Dp}.pth every N epochs (default 20)")
    p.add_argument("--eval-step", type=int, default=5, help="evaluate E every N epochs and after the last (default 5)")
    p.add_argument("--transfer-eval-every", type=int, default=0, metavar="N",
                   help="score pose transfer (body L1, SSIM, pose and identity accuracy on held-out test dancers) "
                        "every N iterations and after the last: TensorBoard transfer/*, <run>/transfer_metrics.jsonl "
                        "(default 0: off)")
    p.add_argument("--transfer-eval-pairs", type=int, default=64,
                   help="(source, target) pairs per pose-transfer evaluation (default 64)")
    p.add_argument("--sync-bn", action="store_true",
                   help="multi-process runs (torchrun): BatchNorm statistics of E, G and Dp over the global batch "
                        "(torch SyncBatchNorm on CUDA, streid's all-reduce BatchNorm on CPU/gloo)")


def _display_flags(p: argparse._ArgumentGroup) -> None:
    p.add_argument("--display-port", type=int, default=6006, help="visdom server port on 127.0.0.1 (default 6006)")
    p.add_argument("--display-id", type=int, default=1,
                   help="> 0 shows visuals and loss curves (visdom windows id, id+1, id+2 when visdom is installed "
                        "and running; always TensorBoard and web/index.html); 0 turns the display off (default 1)")
    p.add_argument("--display-winsize", type=int, default=256, help="image width in web/index.html (default 256)")
    p.add_argument("--display-freq", type=int, default=10, help="show visuals every N samples (triplets) (default 10)")
    p.add_argument("--display-single-pane-ncols", type=int, default=0,
                   help="> 0: all visuals in one visdom pane, N per row (the grid is 5 per row otherwise) (default 0)")
    p.add_argument("--update-html-freq", type=int, default=100,
                   help="rewrite web/index.html every N samples, at a display (default 100)")
    p.add_argument("--no_html", action="store_true", help="do not write web/index.html and its images")
    p.add_argument("--print-freq", type=int, default=10,
                   help="a progress line in log.txt about every N samples (triplets) (default 10)")


def _run_flags(p: argparse._ArgumentGroup) -> None:
    p.add_argument("--checkpoints", default="./checkpoints/", help="output root (default ./checkpoints/)")
    p.add_argument("--name", default="my_session", help="experiment folder under --checkpoints (default my_session)")
    p.add_argument("--seed", type=int, default=1, help="seed of every random generator (default 1)")
    p.add_argument("--release-compat", action="store_true",
                   help="reproduce the released code as a whole: doubled generator gradient, ImageNet-normalised "
                        "targets, release sampler/eraser/flips, stem without ReLU, BN-neck not optimised, LR 0 in "
                        "the last epoch")
    p.add_argument("--select-on", default="val", choices=("val", "test"),
                   help="val: hold out the last identities of trainval and keep the best validation epoch "
                        "(default); test: train on all trainval and keep the best test epoch, as the original")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N (default auto)")
    p.add_argument("--amp", nargs="?", const="bf16", default="off", choices=("off", "bf16", "fp16"),
                   help="mixed precision: bf16 (CPU or CUDA; bare --amp) or fp16 (CUDA, loss-scaled) (default off)")
    p.add_argument("--resume", default="", metavar="PATH", help="continue from a run's checkpoint.pth.tar")
    p.add_argument("--max-iters-per-epoch", type=int, default=None, metavar="N",
                   help="stop each epoch after N iterations (quick experiments)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train ST-ReIDNet (the original train.py flags)", description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _data_flags(parser.add_argument_group("data"))
    _model_flags(parser.add_argument_group("model"))
    _loss_flags(parser.add_argument_group("losses"))
    _optim_flags(parser.add_argument_group("optimisation"))
    _display_flags(parser.add_argument_group("display"))
    _run_flags(parser.add_argument_group("run"))
    parser.set_defaults(run=_run)


def run_config(args: argparse.Namespace):
    """The parsed flags as a StreidNetRunConfig."""
    from ..training.display import DisplayOptions
    from ..training.streidnet_config import ReleaseQuirks, StreidNetConfig, StreidNetRunConfig, resolve_pretrained

    pretrained, pretrained_di = resolve_pretrained(args.pretrained, args.arch)
    model = StreidNetConfig(
        num_classes=0, stage=args.stage, arch=args.arch, emb_type=args.emb_type, last_stride=args.last_stride,
        height=args.height, width=args.width, norm=args.norm, drop=args.drop, connect_layers=args.connect_layers,
        fuse_mode=args.fuse_mode, pose_feature_size=args.pose_feature_size, ngf=args.ngf, lr=args.lr, niter=args.niter,
        niter_decay=args.niter_decay, lambda_d=args.lambda_d, lambda_dp=args.lambda_dp,
        lambda_recon=args.lambda_recon, lambda_tri=args.lambda_tri, lambda_class=args.lambda_class,
        smooth_label=args.smooth_label, soft_margin=args.soft_margin, margin=args.margin, mask=args.mask,
        emb_smooth=args.emb_smooth, pretrained=pretrained, pretrained_di=pretrained_di,
        netE_pretrain=args.netE_pretrain, netG_pretrain=args.netG_pretrain, netDi_pretrain=args.netDi_pretrain,
        netDp_pretrain=args.netDp_pretrain, quirks=ReleaseQuirks.release() if args.release_compat else ReleaseQuirks(),
        device=args.device, amp=args.amp)
    display = DisplayOptions(
        name=args.name, display_id=args.display_id, display_port=args.display_port,
        display_winsize=args.display_winsize, display_freq=args.display_freq,
        single_pane_ncols=args.display_single_pane_ncols, update_html_freq=args.update_html_freq, no_html=args.no_html)
    return StreidNetRunConfig(
        model=model, dataset=args.dataset, dataroot=args.dataroot, checkpoints=args.checkpoints, name=args.name,
        batch_size=args.batch_size, workers=args.workers, skip_frame=args.skip_frame, inter_rate=args.inter_rate,
        pose_aug=args.pose_aug, eraser=args.eraser, release_compat=args.release_compat, save_step=args.save_step,
        eval_step=args.eval_step, print_freq=args.print_freq, select_on=args.select_on, seed=args.seed,
        resume=args.resume, max_iters_per_epoch=args.max_iters_per_epoch, display=display,
        skip_validation=args.skip_validation, sync_bn=args.sync_bn,
        transfer_eval_every=args.transfer_eval_every, transfer_eval_pairs=args.transfer_eval_pairs)


def _run(args: argparse.Namespace) -> int:
    from ..training.streidnet_run import train_streidnet

    result = train_streidnet(run_config(args))
    if not result.test:  # another rank of a torchrun run: rank 0 reports
        return 0
    test = ", ".join(f"{k} {100 * v:.1f}" for k, v in result.test.items() if k in ("mAP", "R1", "R5", "R10"))
    print(f"selected epoch {result.selected_epoch} ({result.selection}): test {test}; {result.selected_checkpoint}")
    return 0
