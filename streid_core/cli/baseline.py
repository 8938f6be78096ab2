"""`streid baseline`: train or evaluate the RGB re-ID baseline with the original baseline.py flags."""
from __future__ import annotations

import argparse

from ..models.reid import ARCHS, EMB_TYPES, POOLS
from ..training.config import AMP_MODES, SELECT_ON, BaselineConfig, ReleaseQuirks
from ._args import DefaultsHelpFormatter, config_values

_DEFAULTS = BaselineConfig()


def _add_data_flags(p: argparse._ArgumentGroup) -> None:
    p.add_argument("-d", "--dataset", default=_DEFAULTS.dataset,
                   help="dataset folder name under --data-dir, matched case-insensitively (DanceReID, DanceReid, "
                        "market1501, dukemtmc, cuhk03, synthdance, or any prepared folder)")
    p.add_argument("-b", "--batch-size", type=int, default=_DEFAULTS.batch_size,
                   help="triplets (Single: 3 images each) or pairs (Siamese: 2 images each) per iteration, "
                        "summed over all processes")
    p.add_argument("-j", "--workers", type=int, default=_DEFAULTS.workers,
                   help="DataLoader worker processes (0 loads in the main process)")
    p.add_argument("--split", type=int, default=_DEFAULTS.split, help="index into the dataset's splits.json")
    p.add_argument("--height", type=int, default=_DEFAULTS.height, help=f"input height (none: {_DEFAULTS.input_size[0]})")
    p.add_argument("--width", type=int, default=_DEFAULTS.width, help=f"input width (none: {_DEFAULTS.input_size[1]})")
    p.add_argument("--combine-trainval", action="store_true",
                   help="train on all trainval identities (no held-out validation identities are left, so the "
                        "last epoch is selected unless --select-on test)")
    p.add_argument("--np-ratio", type=int, default=_DEFAULTS.np_ratio,
                   help="Siamese only: negative pairs per positive pair")
    p.add_argument("--inst-mode", action="store_true",
                   help="instance sampling: each triplet is 3 images of one identity, negatives come from the "
                        "rest of the batch; without it (anchor, positive, random other identity)")
    p.add_argument("--data-dir", default=_DEFAULTS.data_dir, help="folder holding the datasets")
    p.add_argument("--skip-validation", action="store_true",
                   help="do not check the dataset before the run (every image's header and end, the split's "
                        "identities); for data you know is good")


def _add_model_flags(p: argparse._ArgumentGroup) -> None:
    p.add_argument("-a", "--arch", default=_DEFAULTS.arch,
                   choices=ARCHS, help="ResNet backbone")
    p.add_argument("--emb-type", default=_DEFAULTS.emb_type, choices=EMB_TYPES,
                   help="Single: ID classifier + triplet; Siamese: same/different pair classifier + triplet")
    p.add_argument("--last-stride", type=int, default=_DEFAULTS.last_stride, choices=(1, 2),
                   help="stride of ResNet layer4 (1 keeps a 16x8 map at 256x128)")
    p.add_argument("--use-bn", action="store_true", help="BatchNorm neck between the pooled feature and the classifier")
    p.add_argument("--test-bn", action="store_true",
                   help="evaluate with the BN-neck output instead of the pooled feature (needs --use-bn)")
    p.add_argument("--pool", default=_DEFAULTS.pool, choices=POOLS, help="global pooling (the original uses max)")
    p.add_argument("--pretrained", default=_DEFAULTS.pretrained, metavar="PATH",
                   help="local torchvision ResNet state dict to start from (nothing is downloaded; the original "
                        "always started from ImageNet weights; none: random initialisation)")
    p.add_argument("--release-compat", action="store_true",
                   help="reproduce the release's encoder quirks: no ReLU after the stem, BN-neck weight left "
                        "out of the optimiser")


def _add_loss_flags(p: argparse._ArgumentGroup) -> None:
    p.add_argument("--soft-margin", action="store_true",
                   help="soft-margin triplet loss softplus(d_ap - d_an); --margin is then ignored")
    p.add_argument("--margin", type=float, default=_DEFAULTS.margin,
                   help="hard triplet margin m in max(0, m + d_ap - d_an), used without --soft-margin")
    p.add_argument("--lambda-tri", type=float, default=_DEFAULTS.lambda_tri, help="weight of the triplet loss")
    p.add_argument("--lambda-cla", type=float, default=_DEFAULTS.lambda_cla,
                   help="weight of the classification loss")
    p.add_argument("--label-smoothing", action="store_true",
                   help="Single: label-smoothed ID cross entropy (epsilon 0.1)")
    p.add_argument("--eraser", action="store_true", help="random erasing augmentation after the random crop")


def _add_optim_flags(p: argparse._ArgumentGroup) -> None:
    p.add_argument("--lr", type=float, default=_DEFAULTS.lr,
                   help="learning rate of the new layers; the backbone gets 0.1 x lr")
    p.add_argument("--opt-name", default=_DEFAULTS.opt_name, help="torch.optim optimiser class name")
    p.add_argument("--momentum", type=float, default=_DEFAULTS.momentum, help="SGD momentum")
    p.add_argument("--weight-decay", type=float, default=_DEFAULTS.weight_decay, help="weight decay")
    p.add_argument("--epochs", type=int, default=_DEFAULTS.epochs, help="training epochs")
    p.add_argument("--step-size", type=int, default=_DEFAULTS.step_size,
                   help="multiply the learning rates by 0.1 every this many epochs")
    p.add_argument("--sync-bn", action="store_true",
                   help="multi-process runs: BatchNorm statistics over the global batch (torch SyncBatchNorm on "
                        "CUDA, streid's all-reduce BatchNorm on CPU/gloo)")


def _add_loop_flags(p: argparse._ArgumentGroup) -> None:
    p.add_argument("--eval-step", type=int, default=_DEFAULTS.eval_step,
                   help="evaluate after every N-th epoch and after the last one")
    p.add_argument("--select-on", default=_DEFAULTS.select_on, choices=SELECT_ON,
                   help="pick the best epoch on held-out validation identities (val) or on the test set "
                        "(test: the original's behaviour, optimistic)")
    p.add_argument("--seed", type=int, default=_DEFAULTS.seed, help="seed of every random generator")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic kernels (bitwise-repeatable runs and resumes on the CPU; slower on CUDA)")
    p.add_argument("--device", default=_DEFAULTS.device, help="auto (CUDA if present), cpu, cuda or cuda:N")
    p.add_argument("--amp", nargs="?", const="bf16", default=_DEFAULTS.amp, choices=AMP_MODES,
                   help="mixed precision: bf16 (CPU or CUDA; bare --amp) or fp16 (CUDA, loss-scaled)")
    p.add_argument("--max-iters-per-epoch", type=int, default=_DEFAULTS.max_iters_per_epoch, metavar="N",
                   help="stop each epoch after N iterations (quick experiments)")
    p.add_argument("--print-freq", type=int, default=_DEFAULTS.print_freq,
                   help="write a progress line to log.txt every N iterations")
    p.add_argument("--logs-dir", default=_DEFAULTS.logs_dir,
                   help="where log.txt, config.json, TensorBoard events and checkpoints go")
    p.add_argument("--resume", default=_DEFAULTS.resume, metavar="PATH",
                   help="continue training from a streid checkpoint (checkpoint.pth.tar: weights, optimiser, "
                        "schedule, epoch, random states)")
    p.add_argument("--evaluate", action="store_true",
                   help="only evaluate the --resume checkpoint on the test set (log: log_test.txt beside it)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "baseline",
        help="train or evaluate the RGB re-ID baseline (the original baseline.py flags)",
        description=(
            "Train the ResNet re-ID baseline (triplet + classification) with the flags of ST-ReIDNet's "
            "baseline.py, evaluating on held-out identities and finally on the test set. Multi-process: "
            "torchrun --nproc_per_node N -m streid_core baseline ..."
        ),
        formatter_class=DefaultsHelpFormatter,
    )
    _add_data_flags(parser.add_argument_group("data"))
    _add_model_flags(parser.add_argument_group("model"))
    _add_loss_flags(parser.add_argument_group("losses"))
    _add_optim_flags(parser.add_argument_group("optimiser and schedule"))
    _add_loop_flags(parser.add_argument_group("run"))
    parser.set_defaults(run=_run)


def baseline_config(args: argparse.Namespace) -> BaselineConfig:
    """The parsed flags as a BaselineConfig: every field takes the flag of its name; --release-compat
    sets the quirks."""
    return BaselineConfig(**config_values(BaselineConfig, args), quirks=ReleaseQuirks.switched(args.release_compat))


def _run(args: argparse.Namespace) -> int:
    from ..training.baseline import evaluate_baseline, train_baseline
    from ..training.distributed import shutdown_distributed

    config = baseline_config(args)
    if config.evaluate:
        evaluate_baseline(config)
        return 0
    try:
        train_baseline(config)
    finally:
        shutdown_distributed()
    return 0
