"""Training speed through streid's real training loop: images/s per iteration and the share of
time spent waiting for data (goal: under 10 %).

    .venv/bin/python benchmarks/train_speed.py [--task baseline|streidnet] [--archs resnet50 resnet18]
        [--triplets 16] [--iterations 4] [--workers 2] [--threads N] [--device cpu] [--height 256 --width 128]

Task "baseline": for each backbone at 256x128 (last stride 1, BN-neck, soft-margin triplet +
label-smoothed CE, instance sampling, random erasing), iterations run through
`engine.train_epoch` over the persistent-worker `EpochLoader` (JPEG decoding, random crop,
eraser, flip in the workers), as `streid baseline` trains. Two runs per backbone:
  * reference  float32 (channels_last, as the trainer always runs)
  * bf16       bf16 autocast (--amp bf16)
The table gives seconds and images per iteration, img/s, the data-wait share and each run's
speed relative to its backbone's float32 reference. One warm-up epoch of one iteration (worker
start, allocator) is excluded. Writes reports/bench/train_speed.json atomically.

Task "streidnet": the same two runs of one ST-ReIDNet iteration (the images get COCO-17 pose
files and videos), each with its time per phase: data wait, E forward, G forward, Di step, Dp
step, G/E losses, G/E backward, G and E updates (`bench_streidnet`).

--against REV (task streidnet): first the reference row as git revision REV's own code and
benchmark time it (its tree extracted with `git archive`, run in a subprocess with the same
settings), then every row's speed is given against that row, e.g. against the code before a
speed change:
    .venv/bin/python benchmarks/train_speed.py --task streidnet --archs resnet18 --height 128 --width 64 \
        --triplets 8 --iterations 3 --workers 1 --threads 1 --against fd7870f

--world-size N (task streidnet): the reference row again on N torchrun processes (gloo on the
CPU, NCCL on CUDA; the same global batch of --triplets, each rank N times fewer; --sync-bn), next
to its single-process row, with the scaling efficiency = (img/s on N) / (N x img/s on 1). A GPU
user measures it with
    python benchmarks/train_speed.py --task streidnet --archs resnet50 --device cuda --triplets 24 --world-size 4

Adding a task: write `bench_<task>(args, data) -> list[Row]` and register it in TASKS; `data`
is the temporary on-disk dataset every task can train on.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streid_core.atomic import write_json  # noqa: E402
from streid_core.data.preprocessor import ReidImageDataset  # noqa: E402
from streid_core.data.records import Record  # noqa: E402
from streid_core.data.samplers import RandomTripletSampler, TripletBatchSampler  # noqa: E402
from streid_core.training.baseline import BaselineTask  # noqa: E402
from streid_core.training.config import BaselineConfig  # noqa: E402
from streid_core.training.engine import RunContext, train_epoch  # noqa: E402
from streid_core.training.loader import EpochLoader, TrainData  # noqa: E402

HEIGHT, WIDTH = 256, 128  # the generated images; training resizes to --height x --width
IMAGES_PER_ID = 8


@dataclass
class BenchData:
    records: list[Record]
    labels: dict[int, int]


@dataclass
class Row:
    task: str
    arch: str
    variant: str
    images_per_iteration: int
    seconds_per_iteration: float
    images_per_second: float
    data_wait_fraction: float
    speed_vs_reference: float = 1.0
    phases: dict[str, float] | None = None  # seconds per iteration by phase (tasks that time them)


def write_dataset(folder: Path, num_ids: int, seed: int = 0) -> BenchData:
    """num_ids identities x 8 JPEGs of 128x256: a coloured figure on noise, two cameras."""
    rng = np.random.default_rng(seed)
    records = []
    for pid in range(num_ids):
        colour = rng.integers(0, 256, 3)
        for i in range(IMAGES_PER_ID):
            pixels = rng.integers(0, 256, (HEIGHT, WIDTH, 3)).astype(np.uint8)
            x0 = 20 + 5 * i
            pixels[30:240, x0:x0 + 60] = colour
            path = folder / f"{pid:04d}_c{i % 2}_{i:02d}.jpg"
            Image.fromarray(pixels).save(path, quality=90)
            records.append(Record(str(path), pid, i % 2))
    return BenchData(records, {pid: pid for pid in range(num_ids)})


def bench_baseline(args: argparse.Namespace, data: BenchData) -> list[Row]:
    device = torch.device(args.device)
    rows = []
    for arch in args.archs:
        for variant, amp in (("reference fp32", "off"), ("bf16 autocast", "bf16")):
            config = BaselineConfig(arch=arch, last_stride=1, use_bn=True, soft_margin=True, label_smoothing=True,
                                    inst_mode=True, eraser=True, lr=5e-5, amp=amp, device=args.device,
                                    batch_size=args.triplets, height=args.height, width=args.width)
            torch.manual_seed(0)
            task = BaselineTask(config.encoder_config(len(data.labels)).build(), config, RunContext(device))
            images = ReidImageDataset(data.records, data.labels, "baseline_train", args.height, args.width, eraser=True)
            sampler = RandomTripletSampler(data.records, data.labels, inst_mode=True)
            loader = EpochLoader(TrainData(images, TripletBatchSampler(sampler, args.triplets, drop_last=True)),
                                 args.workers, seed=0, pin_memory=device.type == "cuda")
            task.on_epoch_start(1)
            loader.set_epoch(1)
            train_epoch(task, loader, 1, RunContext(device), max_iters=1)  # warm-up
            loader.set_epoch(2)
            stats = train_epoch(task, loader, 2, RunContext(device), max_iters=args.iterations)
            rows.append(Row("baseline", arch, variant, stats.images // stats.iterations,
                            stats.seconds / stats.iterations, stats.images_per_second, stats.data_fraction))
            del loader, task
        reference = rows[-2].images_per_second
        for row in rows[-2:]:
            row.speed_vs_reference = row.images_per_second / reference
    return rows


class _PhaseTotals:
    """Adds up StreidNetTask.timer's per-iteration phase seconds (train_epoch's after_step)."""

    def __init__(self, task) -> None:
        self.task = task
        self.seconds: dict[str, float] = {}
        self.iterations = 0

    def __call__(self, iteration: int, losses: dict[str, float]) -> None:
        for phase, seconds in self.task.timer.seconds.items():
            self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds
        self.iterations += 1


def with_poses(data: BenchData, ids_per_video: int = 4, seed: int = 1) -> BenchData:
    """The same images with COCO-17 pose files (x y lines, as DanceReID ships them), frame
    numbers and videos of `ids_per_video` identities, so ST-ReIDNet's sampler, heat-maps and
    masks run as on DanceReID."""
    from streid_core.data.keypoints import COCO17, write_keypoints

    rng = np.random.default_rng(seed)
    records = []
    for frame, r in enumerate(data.records):
        pose = Path(r.path).with_suffix(".txt")
        joints = np.stack([rng.uniform(30, 100, 17), np.linspace(30, 240, 17)], axis=1)
        write_keypoints(pose, joints, COCO17)
        records.append(Record(r.path, r.pid, frame, frame, f"video{r.pid // ids_per_video}", str(pose)))
    return BenchData(records, data.labels)


# (variant, --amp, changed settings). The first is the reference: the README's losses in float32.
# The others change the numerics and say so: G trained on reconstruction alone (a discriminator
# with weight 0 is not run) at half of G's width, and with the limb painting (the cpu-draw preset's
# is the last row).
_NO_D = dict(lambda_d=0.0, lambda_dp=0.0, ngf=32, drop=0.0, connect_layers=5)
STREIDNET_VARIANTS = (
    ("reference fp32", "off", {}),
    ("bf16 autocast", "bf16", {}),
    ("no D, ngf 32", "off", _NO_D),
    ("no D, ngf 32 bf16", "bf16", _NO_D),
    ("no D, ngf 32, painted", "off", _NO_D | dict(paint_limbs=True, lambda_paint=1.0)),
    ("no D, ngf 32, painted bf16", "bf16", _NO_D | dict(paint_limbs=True, lambda_paint=1.0)),
    ("no D, ngf 32, painted from E's stage 1 under the source's limbs", "off",
     _NO_D | dict(paint_limbs=True, lambda_paint=1.0, paint_from="source-limbs", paint_layer=1)),
)


def readme_streidnet(data: BenchData, arch: str, height: int, width: int, amp: str = "off",
                     changes: dict | None = None, run: RunContext | None = None):
    """The README's ST-ReIDNet iteration (stage 0, --lambda-d 0.1 --lambda-dp 0.1 --mask, ...)
    with `changes` to its model settings, on `data`: the task, its training images and its
    sparse-temporal sampler (this rank's share when `run.dist` is distributed)."""
    from streid_core.data.samplers import SparseTemporalTripletSampler
    from streid_core.training.streidnet import StreidNetTask
    from streid_core.training.streidnet_config import StreidNetConfig

    run = run or RunContext(torch.device("cpu"))
    settings = dict(lambda_d=0.1, lambda_dp=0.1, lambda_recon=10.0) | (changes or {})
    config = StreidNetConfig(
        num_classes=len(data.labels), arch=arch, last_stride=1, height=height, width=width, lr=2e-5,
        smooth_label=True, soft_margin=True, mask=True, emb_smooth=True, device=str(run.device), amp=amp,
        **settings)
    torch.manual_seed(0)
    task = StreidNetTask(config, run.dist, sync_bn=run.dist.is_distributed)
    images = ReidImageDataset(data.records, data.labels, "streid_train", height, width, keypoints="coco17",
                              with_pose=True, with_mask=True, pose_aug="gauss", eraser=True)
    sampler = SparseTemporalTripletSampler(data.records, data.labels, 0.7, skip_frame=2,
                                           num_replicas=run.dist.world_size, rank=run.dist.rank)
    return task, images, sampler


def _streidnet_row(args: argparse.Namespace, data: BenchData, arch: str, variant: str, amp: str, changes: dict,
                   run: RunContext) -> Row:
    """One timed ST-ReIDNet row on this process (one rank of `run.dist` when distributed)."""
    task, images, sampler = readme_streidnet(data, arch, args.height, args.width, amp, changes, run)
    task.timer.enabled = True
    totals = _PhaseTotals(task)
    loader = EpochLoader(TrainData(images, TripletBatchSampler(sampler, args.triplets, drop_last=True)),
                         args.workers, seed=0, pin_memory=run.device.type == "cuda")
    task.on_epoch_start(1)
    loader.set_epoch(1)
    train_epoch(task, loader, 1, run, max_iters=1)  # warm-up
    task.on_epoch_start(2)
    loader.set_epoch(2)
    stats = train_epoch(task, loader, 2, run, max_iters=args.iterations, after_step=totals)
    phases = {"data (wait for the batch)": stats.data_seconds / stats.iterations}
    phases.update({k: v / totals.iterations for k, v in totals.seconds.items()})
    where = f", {run.dist.world_size} processes" if run.dist.is_distributed else ""
    return Row("streidnet", arch, variant + where, stats.images // stats.iterations, stats.seconds / stats.iterations,
               stats.images_per_second, stats.data_fraction, phases=phases)


def _streidnet_on_processes(args: argparse.Namespace, arch: str) -> Row:
    """The reference row on --world-size torchrun processes; rank 0 writes it to a JSON file."""
    import json
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "row.json"
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(args.world_size),
                   "--master_addr", "127.0.0.1", "--master_port", str(args.master_port), __file__, "--task", "streidnet",
                   "--archs", arch, "--triplets", str(args.triplets), "--iterations", str(args.iterations),
                   "--height", str(args.height), "--width", str(args.width), "--workers", str(args.workers),
                   "--device", args.device, "--rank-row", str(out)] + (["--threads", str(args.threads)] if args.threads else [])
        subprocess.run(command, check=True, env=dict(os.environ, GLOO_SOCKET_IFNAME=os.environ.get("GLOO_SOCKET_IFNAME", "lo")))
        return Row(**json.loads(out.read_text()))


def resolve_revision(rev: str) -> str:
    """The commit `rev` names in this repository, or one line and exit 2."""
    import subprocess

    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                          capture_output=True, text=True)
    if done.returncode:
        print(f"--against {rev}: not a commit of {ROOT}; give a revision from `git log` "
              "(the benchmark needs the repository's history)", file=sys.stderr)
        raise SystemExit(2)
    return done.stdout.strip()


def _reference_at(args: argparse.Namespace, arch: str, commit: str) -> Row:
    """The reference fp32 row, timed by `commit`'s own benchmark on `commit`'s own code."""
    import io
    import json
    import subprocess
    import tarfile

    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        tree.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True)
        tarfile.open(fileobj=io.BytesIO(archive.stdout)).extractall(tree, filter="data")
        out = Path(tmp) / "rows.json"
        command = [sys.executable, str(tree / "benchmarks" / "train_speed.py"), "--task", "streidnet", "--archs", arch,
                   "--triplets", str(args.triplets), "--iterations", str(args.iterations), "--height", str(args.height),
                   "--width", str(args.width), "--workers", str(args.workers), "--device", args.device,
                   "--out", str(out)] + (["--threads", str(args.threads)] if args.threads else [])
        done = subprocess.run(command, stdout=subprocess.DEVNULL)
        if done.returncode or not out.is_file():
            print(f"--against {commit[:10]}: that revision's benchmark failed (exit {done.returncode}, its output above); "
                  "pick a revision whose benchmarks/train_speed.py has --task streidnet", file=sys.stderr)
            raise SystemExit(2)
        row = json.loads(out.read_text())["rows"][0]  # its first row is its float32 reference
    known = {k: v for k, v in row.items() if k in Row.__dataclass_fields__}
    return Row(**(known | {"variant": f"reference fp32 at {commit[:10]}"}))


def _rank_row(args: argparse.Namespace, data: BenchData) -> None:
    """Inside torchrun: time the reference row as one rank; rank 0 writes it to --rank-row."""
    from streid_core.training.distributed import init_distributed, shutdown_distributed

    dist_ctx, device = init_distributed(torch.device(args.device))
    try:
        row = _streidnet_row(args, with_poses(data), args.archs[0], STREIDNET_VARIANTS[0][0], "off", {},
                             RunContext(device, dist_ctx))
        if dist_ctx.is_main:
            write_json(args.rank_row, asdict(row))
    finally:
        shutdown_distributed()


def bench_streidnet(args: argparse.Namespace, data: BenchData) -> list[Row]:
    """One ST-ReIDNet iteration per row (E of each --archs, last stride 1, README losses with
    --mask, --smooth-label, soft margin; gauss pose-aug and eraser in the workers), timed phase
    by phase with StreidNetTask.timer: E forward, G forward, Di step, Dp step, G/E losses,
    G/E backward, G and E updates; data = the loop's wait for the next batch."""
    device = torch.device(args.device)
    data = with_poses(data)
    rows = []
    # with --world-size: the reference on one process, then on N (speed_vs_reference of the
    # N-process row is its scaling efficiency: img/s over N x the single process's)
    variants = STREIDNET_VARIANTS[:1] if args.world_size > 1 else STREIDNET_VARIANTS
    for arch in args.archs:
        first = len(rows)
        if args.against:
            rows.append(_reference_at(args, arch, args.against))
        for variant, amp, changes in variants:
            rows.append(_streidnet_row(args, data, arch, variant, amp, changes, RunContext(device)))
        reference = rows[first].images_per_second
        for row in rows[first:]:
            row.speed_vs_reference = row.images_per_second / reference
        if args.world_size > 1:
            rows.append(_streidnet_on_processes(args, arch))
            rows[-1].speed_vs_reference = rows[-1].images_per_second / (args.world_size * reference)
            print(f"\n{arch}: {args.world_size} processes run {rows[-1].images_per_second / reference:.2f}x the img/s "
                  f"of one: scaling efficiency {100 * rows[-1].speed_vs_reference:.0f}%")
    for row in rows:
        print(f"\nstreidnet {row.arch} {row.variant}: {row.seconds_per_iteration:.2f} s per iteration")
        for phase, seconds in row.phases.items():
            print(f"  {phase:44s} {seconds:8.2f} s {100 * seconds / row.seconds_per_iteration:6.1f}%")
    print()
    return rows


TASKS: dict[str, Callable[[argparse.Namespace, BenchData], list[Row]]] = {
    "baseline": bench_baseline,
    "streidnet": bench_streidnet,
}


def print_table(rows: list[Row]) -> None:
    print(f"{'task':10s} {'arch':9s} {'variant':28s} {'img/iter':>8s} {'s/iter':>8s} {'img/s':>8s} "
          f"{'data wait':>9s} {'vs ref':>7s}")
    for r in rows:
        print(f"{r.task:10s} {r.arch:9s} {r.variant:28s} {r.images_per_iteration:8d} {r.seconds_per_iteration:8.2f} "
              f"{r.images_per_second:8.1f} {100 * r.data_wait_fraction:8.1f}% {r.speed_vs_reference:6.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="baseline", help="which trainer to time")
    parser.add_argument("--archs", nargs="+", default=["resnet50", "resnet18"], help="backbones to time")
    parser.add_argument("--triplets", type=int, default=16, help="triplets per iteration (3 images each)")
    parser.add_argument("--iterations", type=int, default=4, help="timed iterations after one warm-up")
    parser.add_argument("--height", type=int, default=256, help="training height (the demo trains at 128)")
    parser.add_argument("--width", type=int, default=128, help="training width (the demo trains at 64)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice; 1 avoids thrashing on a busy machine)")
    parser.add_argument("--world-size", type=int, default=1,
                        help="task streidnet: also time the reference on N torchrun processes (scaling efficiency)")
    parser.add_argument("--against", metavar="REV", default=None,
                        help="task streidnet: also time revision REV's reference row, and give speeds against it")
    parser.add_argument("--master-port", type=int, default=29533, help="torchrun's port for --world-size")
    parser.add_argument("--rank-row", type=Path, default=None, help=argparse.SUPPRESS)  # inside torchrun
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "train_speed.json")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.world_size > 1 and args.task != "streidnet":
        parser.error("--world-size: only --task streidnet times several processes")
    if args.world_size > 1 and args.triplets % args.world_size:
        parser.error(f"--triplets {args.triplets}: must divide by --world-size {args.world_size}")

    if args.against:
        if args.task != "streidnet" or args.world_size > 1:
            parser.error("--against: only with --task streidnet on one process")
        args.against = resolve_revision(args.against)

    if args.rank_row is not None:
        num_ids = max(8, math.ceil(args.triplets * (args.iterations + 1) / IMAGES_PER_ID) + 1)
        with tempfile.TemporaryDirectory() as tmp:
            _rank_row(args, write_dataset(Path(tmp), num_ids))
        return 0

    num_ids = max(8, math.ceil(args.triplets * (args.iterations + 1) / IMAGES_PER_ID) + 1)
    with tempfile.TemporaryDirectory() as tmp:
        data = write_dataset(Path(tmp), num_ids)
        rows = TASKS[args.task](args, data)
    setting = {"height": args.height, "width": args.width, "triplets": args.triplets, "iterations": args.iterations,
               "workers": args.workers, "device": args.device, "threads": torch.get_num_threads(),
               "torch": torch.__version__, "machine": platform.machine(), "processor": platform.processor(),
               "cpu_count": os.cpu_count(), "load_average": os.getloadavg()[0], "against": args.against}
    print(f"{args.task}: {args.height}x{args.width}, {args.triplets} triplets per iteration, {args.workers} workers, "
          f"{args.device}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
    print_table(rows)
    write_json(args.out, {"benchmark": "train_speed", "task": args.task, "setting": setting,
                          "rows": [asdict(r) for r in rows]})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
