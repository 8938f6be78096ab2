"""How close one ST-ReIDNet iteration runs to this CPU's float32 peak, and so how much faster it
could be at the same arithmetic.

    .venv/bin/python benchmarks/train_flops.py [--arch resnet18 --height 128 --width 64 --triplets 8]
        [--iterations 3] [--threads 1] [--out reports/bench/train_flops.json]

The iteration is the README's (stage 0, `--lambda-d 0.1 --lambda-dp 0.1 --mask`, float32), built as
`benchmarks/train_speed.py --task streidnet` builds it. Measured in one run, on the same threads:
  * the arithmetic of one iteration: floating-point operations counted by
    `torch.utils.flop_counter.FlopCounterMode` (convolutions forward and backward, matrix products);
  * seconds per iteration (median of --iterations after one warm-up) and its GFLOP/s;
  * the share of that time inside convolution kernels (`torch.profiler`, one iteration);
  * the references: the iteration's own costliest convolution (found with forward hooks) timed alone
    on its own input shape, and a 2048^3 float32 matrix product.
The ratio "speed-up bound" = (seconds per iteration) / (GFLOP per iteration / the faster reference's
GFLOP/s): no rewrite that keeps the arithmetic can make the iteration faster than that.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streid_core.atomic import write_json  # noqa: E402
from train_speed import IMAGES_PER_ID, readme_streidnet, with_poses, write_dataset  # noqa: E402

CONV_KERNELS = ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::_convolution",
                "aten::convolution", "aten::conv2d")


def build_iteration(args: argparse.Namespace, folder: Path):
    """The README's ST-ReIDNet task and batches for --iterations + 2 steps."""
    from torch.utils.data import DataLoader

    from streid_core.data.samplers import TripletBatchSampler

    steps = args.iterations + 2
    data = with_poses(write_dataset(folder, max(8, math.ceil(3 * args.triplets * steps / IMAGES_PER_ID) + 1)))
    task, images, sampler = readme_streidnet(data, args.arch, args.height, args.width)
    loader = DataLoader(images, batch_sampler=TripletBatchSampler(sampler, args.triplets, drop_last=True))
    batches = []
    while len(batches) < steps:  # the sampler's epoch may be shorter than the steps wanted
        batches += list(loader)
    task.on_epoch_start(1)
    return task, batches[:steps]


def count_flops(task, batch) -> tuple[dict[str, float], dict[str, float]]:
    """GFLOP of one iteration by operator, and by network (forward and backward of each call)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        task.train_step(batch)
    counts = counter.get_flop_counts()
    by_operator = {str(op): flops / 1e9 for op, flops in counts["Global"].items()}
    by_network = {name: sum(ops.values()) / 1e9 for name, ops in counts.items() if name != "Global" and "." not in name}
    return by_operator, by_network


def costliest_convolution(task, batch) -> tuple[nn.Conv2d, torch.Tensor, float]:
    """The Conv2d whose single forward call costs the most FLOPs in one iteration, an input of that
    call's shape, and its GFLOP."""
    calls: list[tuple[float, nn.Conv2d, torch.Size]] = []

    def hook(module: nn.Conv2d, inputs: tuple, output: torch.Tensor) -> None:
        kh, kw = module.kernel_size
        gflop = 2 * output.numel() * (module.in_channels // module.groups) * kh * kw / 1e9
        calls.append((gflop, module, inputs[0].shape))

    handles = [m.register_forward_hook(hook) for net in task.networks.values() for m in net.modules()
               if isinstance(m, nn.Conv2d)]
    try:
        task.train_step(batch)
    finally:
        for handle in handles:
            handle.remove()
    gflop, module, shape = max(calls, key=lambda call: call[0])
    return module, torch.randn(shape).contiguous(memory_format=torch.channels_last), gflop


def best_seconds(work, repeats: int = 5) -> float:
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def convolution_share(task, batch) -> float:
    """Share of one iteration's CPU time spent in convolution operators (self time)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        task.train_step(batch)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    conv = sum(e.self_cpu_time_total for e in events if e.key in CONV_KERNELS)
    return conv / total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18", help="E's backbone (default resnet18)")
    parser.add_argument("--height", type=int, default=128, help="training height (default 128, the demo's)")
    parser.add_argument("--width", type=int, default=64, help="training width (default 64)")
    parser.add_argument("--triplets", type=int, default=8, help="triplets per iteration (default 8)")
    parser.add_argument("--iterations", type=int, default=3, help="timed iterations after one warm-up")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as the demo's runs)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "train_flops.json")
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.triplets < 2 or args.threads < 1:
        parser.error("--iterations and --threads must be >= 1, --triplets >= 2")
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        task, batches = build_iteration(args, Path(tmp))
        task.train_step(batches[0])  # warm-up: allocator, oneDNN primitives
        seconds = []
        for batch in batches[1: 1 + args.iterations]:
            start = time.perf_counter()
            task.train_step(batch)
            seconds.append(time.perf_counter() - start)
        flops, by_network = count_flops(task, batches[-1])
        share = convolution_share(task, batches[-1])
        conv, conv_input, conv_gflop = costliest_convolution(task, batches[-1])
    with torch.no_grad():
        conv_seconds = best_seconds(lambda: conv(conv_input))
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    matmul_rate = 2 * 2048**3 / 1e9 / best_seconds(lambda: a @ b)

    gflop = sum(flops.values())
    iteration = statistics.median(seconds)
    conv_gflop_total = sum(v for k, v in flops.items() if "convolution" in k)
    references = {"costliest convolution alone": conv_gflop / conv_seconds, "2048^3 matmul": matmul_rate}
    peak = max(references.values())
    result = {
        "gflop_per_iteration": gflop, "gflop_by_operator": flops, "gflop_by_network": by_network,
        "seconds_per_iteration": iteration,
        "seconds_each": seconds, "gflops_per_second": gflop / iteration,
        "convolution_time_share": share, "convolution_gflops_per_second": conv_gflop_total / (share * iteration),
        "costliest_convolution": {"module": repr(conv), "input": list(conv_input.shape), "gflop": conv_gflop,
                                  "seconds": conv_seconds},
        "references_gflops_per_second": references,
        "seconds_at_reference_rate": gflop / peak,
        "speed_up_bound": iteration / (gflop / peak),
    }
    setting = {"arch": args.arch, "height": args.height, "width": args.width, "triplets": args.triplets,
               "iterations": args.iterations, "threads": torch.get_num_threads(), "torch": torch.__version__,
               "machine": platform.machine(), "cpu_count": os.cpu_count(), "load_average": os.getloadavg()[0],
               "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "")}
    print(f"ST-ReIDNet iteration, {args.arch} {args.height}x{args.width}, {args.triplets} triplets, "
          f"{torch.get_num_threads()} thread(s), load average {setting['load_average']:.1f}")
    print(f"  {gflop:.0f} GFLOP in {iteration:.2f} s: {gflop / iteration:.0f} GFLOP/s; "
          f"{100 * share:.0f} % of the time in convolutions, which run at "
          f"{result['convolution_gflops_per_second']:.0f} GFLOP/s")
    print("  GFLOP by network: " + ", ".join(f"{name} {value:.0f}" for name, value in by_network.items()))
    for name, rate in references.items():
        print(f"  reference, {name}: {rate:.0f} GFLOP/s")
    print(f"  at the faster reference's rate the same arithmetic takes {gflop / peak:.2f} s: "
          f"at most {result['speed_up_bound']:.2f}x faster without changing what is computed")
    write_json(args.out, {"benchmark": "train_flops", "setting": setting, "result": result})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
