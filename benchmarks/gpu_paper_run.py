"""The seed's ST-ReIDNet setting on a lent GPU, in one call (issue 15, part 5).

ResNet-50 E at 256x128, 24 triplets per iteration, stage 0 with the seed README's flags, on
SynthDance, for a fixed wall-clock budget; pose transfer measured on held-out test dancers every
--transfer-every iterations. No ImageNet weights can be fetched, so E's trunk starts from a short
ResNet-50 baseline trained first (as `make demo` does at 128x64) and Di (ResNet-18) from random
weights. Prepared on the CPU with --smoke; on the device machine:

    python3 benchmarks/gpu_paper_run.py --out "$OUT"

Steps, each a `streid` command run as a user runs it (the exact lines go to OUT/commands.txt):
  1. `streid synth` (the default SynthDance), unless DATA/synthdance exists;
  2. `streid baseline` ResNet-50 for --baseline-minutes, its trunk written as OUT-side weights;
  3. `streid train --stage 0` with the seed's flags until --train-minutes have passed (then
     stopped: every transfer measurement is already in transfer_metrics.jsonl).
OUT gets: summary.json (per step: seconds, s/iteration, the last transfer metrics and E's last
evaluation), transfer_metrics.jsonl, transfer_curve.png, commands.txt, baseline_log.txt,
train_log.txt. Nothing else in streid depends on this script.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The seed README's `train.py` flags (stage 0), less those of the machine (-j, GPUs, display).
SEED_STAGE0 = ["-b", "24", "--lr", "2e-5", "--stage", "0", "--inter-rate", "0.7", "--skip-frame", "10",
               "--pose-aug", "gauss", "--smooth-label", "--soft-margin", "--batch-hard", "--emb-type", "Single",
               "--last-stride", "1", "--emb-smooth", "--eraser", "--mask", "--lambda-recon", "10.0",
               "--lambda-tri", "1.0", "--lambda-class", "1.0", "--lambda-d", "0.1", "--lambda-dp", "0.1"]


def _streid(*args: str) -> list[str]:
    return [sys.executable, "-m", "streid_core", *args]


class Steps:
    """Runs the steps, keeps their command lines and timings."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.seconds: dict[str, float] = {}

    def run(self, name: str, command: list[str], deadline_s: float | None = None) -> None:
        """Run `command`; with a deadline, stop it with SIGINT then (30 s later) SIGKILL. A
        non-zero exit before the deadline stops the script."""
        self.commands.append(" ".join(command))
        print(f"[{name}] {' '.join(command)}", flush=True)
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        try:
            process.wait(timeout=deadline_s)
            finished = True
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            finished = False
        self.seconds[name] = round(time.perf_counter() - start, 1)
        if finished and process.returncode != 0:
            raise SystemExit(f"{name} failed with exit status {process.returncode}: {' '.join(command)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "reports" / "gpu")),
                        help="where the results go (default $OUT, else reports/gpu)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="datasets folder (default data)")
    parser.add_argument("--work", type=Path, default=ROOT / "checkpoints" / "gpu_paper_run",
                        help="checkpoints and trunk weights (default checkpoints/gpu_paper_run)")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --smoke)")
    parser.add_argument("--amp", default="bf16", choices=("off", "bf16"), help="autocast of both trainings")
    parser.add_argument("--baseline-minutes", type=float, default=1.5, help="wall-clock budget of the baseline")
    parser.add_argument("--train-minutes", type=float, default=5.0, help="wall-clock budget of stage 0")
    parser.add_argument("--transfer-every", type=int, default=100, help="iterations between transfer measurements")
    parser.add_argument("--workers", type=int, default=8, help="DataLoader workers")
    parser.add_argument("--smoke", action="store_true",
                        help="a tiny CPU rehearsal: 16 identities, ResNet-18 at 64x32, a few iterations")
    args = parser.parse_args(argv)

    from streid_core.atomic import write_json
    from streid_core.reporting.training_runs import encoder_trunk_weights
    from streid_core.reporting.transfer_report import transfer_curve
    from streid_core.training.transfer_metrics import read_transfer_metrics

    arch, height, width, iters_per_epoch, pairs = "resnet50", 256, 128, 100, 128
    synth = ["synth", "--out", str(args.data_dir / "synthdance"), "--no-report", "--workers", str(args.workers)]
    if args.smoke:
        arch, height, width, iters_per_epoch, pairs = "resnet18", 64, 32, 2, 16
        synth += ["--ids", "16", "--videos", "4", "--frames", "24"]
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    steps = Steps()

    if not (args.data_dir / "synthdance").exists():
        steps.run("synth", _streid(*synth))

    base_dir = args.work / "baseline"
    shutil.rmtree(base_dir, ignore_errors=True)
    steps.run("baseline", _streid(
        "baseline", "-d", "synthdance", "--data-dir", str(args.data_dir), "-a", arch, "--height", str(height),
        "--width", str(width), "-b", "32", "--epochs", "1000", "--max-iters-per-epoch", str(iters_per_epoch // 2 or 1),
        "--lr", "3e-3", "--step-size", "1000", "--eval-step", "1", "--amp", args.amp, "-j", str(args.workers),
        "--device", args.device, "--logs-dir", str(base_dir)), deadline_s=60 * args.baseline_minutes)
    trunks = args.work / "trunks"
    trunks.mkdir(exist_ok=True)
    last = base_dir / "checkpoint.pth.tar"  # the deadline stopped it: its last epoch's weights
    if not last.exists():
        raise SystemExit(f"the baseline wrote no checkpoint within {args.baseline_minutes} minutes; raise --baseline-minutes")
    encoder_trunk_weights(last, trunks / f"{arch}.pth")

    run_dir = args.work / "stage0"
    shutil.rmtree(run_dir, ignore_errors=True)
    steps.run("stage0", _streid(
        "train", *SEED_STAGE0, "-j", str(args.workers), "-d", "synthdance", "--dataroot", str(args.data_dir),
        "--checkpoints", str(args.work), "--name", "stage0", "--arch", arch, "--height", str(height),
        "--width", str(width), "--niter", "1000", "--niter-decay", "0", "--max-iters-per-epoch", str(iters_per_epoch),
        "--save-step", "1000", "--eval-step", "1", "--display-id", "0", "--pretrained", str(trunks),
        "--transfer-eval-every", str(args.transfer_every), "--transfer-eval-pairs", str(pairs), "--amp", args.amp,
        "--device", args.device), deadline_s=60 * args.train_minutes)

    rows = read_transfer_metrics(run_dir)
    import torch

    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    summary = {"setting": {"arch": arch, "height": height, "width": width, "triplets": 24, "amp": args.amp,
                           "device": device_name, "torch": torch.__version__, "seed_flags": SEED_STAGE0,
                           "smoke": args.smoke},
               "step_seconds": steps.seconds, "transfer": rows[-1] if rows else None}
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        summary["seconds_per_iteration"] = (b["train_seconds"] - a["train_seconds"]) / (b["iteration"] - a["iteration"])
    write_json(args.out / "summary.json", summary)
    (args.out / "commands.txt").write_text("\n".join(steps.commands) + "\n")
    for source, name in ((run_dir / "transfer_metrics.jsonl", "transfer_metrics.jsonl"),
                         (run_dir / "log.txt", "train_log.txt"), (base_dir / "log.txt", "baseline_log.txt")):
        if source.exists():
            shutil.copyfile(source, args.out / name)
    if rows:
        transfer_curve(run_dir, args.out / "transfer_curve.png")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
