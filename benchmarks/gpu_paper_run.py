"""The seed's ST-ReIDNet setting on a lent GPU, in one call (issue 15, part 5).

ResNet-50 E at 256x128, 24 triplets per iteration, stage 0 with the seed README's flags, on
SynthDance, for a fixed wall-clock budget; pose transfer measured on held-out test dancers every
--transfer-every iterations and E's test mAP every epoch of 100 iterations. No ImageNet weights
can be fetched, so E's trunk starts from a short ResNet-50 baseline trained first (as `make demo`
does at 128x64) and Di (ResNet-18) from random weights. Rehearsed on the CPU with --smoke; on the
device machine:

    python3 benchmarks/gpu_paper_run.py --smoke --device cuda --out /tmp/smoke --data-dir /tmp/smoke_data \
        --work /tmp/smoke_work && python3 benchmarks/gpu_paper_run.py --out "$OUT"

Steps, each a `streid` command or benchmark run as a user runs it (the lines go to commands.txt):
  1. `streid synth` (the default SynthDance), unless DATA/synthdance exists;
  2. `benchmarks/train_speed.py --task streidnet`: the seed's iteration, timed per phase, alone
     on the device;
  3. `streid baseline` ResNet-50 for --baseline-minutes; its last trunk starts every E and Di;
  4. three `streid train --stage 0` runs side by side for --train-minutes (then stopped; each
     epoch of 100 iterations has written its checkpoint and test evaluation):
       faithful: the seed's flags;
       recipe:   the seed's flags with `--preset cpu-draw` (the CPU recipe under which G draws);
       control:  the seed's flags with G switched off (--lambda-recon 0 --lambda-d 0 --lambda-dp 0
                 --inter-rate 0): E alone, the equal-budget baseline-continued;
  5. each arm's last checkpoint scored as `streid st-vs-baseline` scores (test R1/mAP, pose
     probes), and a gallery of the two generators on test dancers.
OUT gets (at most 8 files): summary.json, transfer_curve_{faithful,recipe}.png,
gallery_{faithful,recipe}.png, map_curve.png and logs.tar.gz (commands, logs, jsonl, speed
table). A failed step is recorded in summary.json and the later steps that need it are skipped.
Nothing else in streid depends on this script.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The seed README's `train.py` flags (stage 0), less those of the machine (-j, GPUs, display).
SEED_STAGE0 = ["-b", "24", "--lr", "2e-5", "--stage", "0", "--inter-rate", "0.7", "--skip-frame", "10",
               "--pose-aug", "gauss", "--smooth-label", "--soft-margin", "--batch-hard", "--emb-type", "Single",
               "--last-stride", "1", "--emb-smooth", "--eraser", "--mask", "--lambda-recon", "10.0",
               "--lambda-tri", "1.0", "--lambda-class", "1.0", "--lambda-d", "0.1", "--lambda-dp", "0.1"]
ARMS = {  # name -> (flags replacing the seed's, flags added)
    "faithful": ({}, []),
    # the preset's own values of the two adversarial weights (0), not the seed's
    "recipe": ({"--lambda-d": None, "--lambda-dp": None}, ["--preset", "cpu-draw"]),
    "control": ({"--lambda-recon": "0", "--lambda-d": "0", "--lambda-dp": "0", "--inter-rate": "0"}, []),
}
DRAWING_ARMS = ("faithful", "recipe")


def arm_flags(arm: str) -> list[str]:
    """The seed's stage-0 flags with the arm's replacements (None drops a flag and its value)."""
    replaced, added = ARMS[arm]
    flags, i = [], 0
    while i < len(SEED_STAGE0):
        flag = SEED_STAGE0[i]
        takes_value = i + 1 < len(SEED_STAGE0) and not SEED_STAGE0[i + 1].startswith("--")
        value = SEED_STAGE0[i + 1] if takes_value else None
        if flag in replaced:
            if replaced[flag] is not None:
                flags += [flag, replaced[flag]]
        else:
            flags += [flag] + ([value] if takes_value else [])
        i += 2 if takes_value else 1
    return flags + added


def _streid(*args: str) -> list[str]:
    return [sys.executable, "-m", "streid_core", *args]


def _stop(processes: list[subprocess.Popen], grace_s: float = 20.0) -> None:
    """SIGINT to all at once, then SIGKILL to those still running after `grace_s`."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    until = time.perf_counter() + grace_s
    for process in processes:
        try:
            process.wait(timeout=max(0.0, until - time.perf_counter()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Steps:
    """Runs the steps, keeps their command lines, timings and failures."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.commands: list[str] = []
        self.seconds: dict[str, float] = {}
        self.failed: dict[str, str] = {}

    def _start(self, name: str, command: list[str]) -> subprocess.Popen:
        self.commands.append(f"[{name}] " + " ".join(command))
        print(f"[{name}] {' '.join(command)}", flush=True)
        with open(self.logs / f"{name}.out", "w") as output:  # the child keeps its own descriptor
            return subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
                                    env=dict(os.environ, PYTHONUNBUFFERED="1"))

    def _finish(self, name: str, process: subprocess.Popen, start: float, deadline_hit: bool) -> bool:
        self.seconds[name] = round(time.perf_counter() - start, 1)
        if not deadline_hit and process.returncode != 0:
            tail = (self.logs / f"{name}.out").read_text(errors="replace").splitlines()[-3:]
            self.failed[name] = f"exit {process.returncode}: " + " | ".join(tail)
            print(f"[{name}] FAILED {self.failed[name]}", flush=True)
            return False
        print(f"[{name}] {'stopped at its deadline' if deadline_hit else 'done'} after {self.seconds[name]} s",
              flush=True)
        return True

    def run(self, name: str, command: list[str], deadline_s: float | None = None) -> bool:
        return self.run_together({name: command}, deadline_s)[name]

    def run_together(self, commands: dict[str, list[str]], deadline_s: float | None = None) -> dict[str, bool]:
        """Run the commands side by side; with a deadline, stop those still running. True: each
        finished (or was stopped at the deadline) without error."""
        start = time.perf_counter()
        processes = {name: self._start(name, command) for name, command in commands.items()}
        for process in processes.values():
            left = None if deadline_s is None else max(0.0, deadline_s - (time.perf_counter() - start))
            try:
                process.wait(timeout=left)
            except subprocess.TimeoutExpired:
                break
        running = [p for p in processes.values() if p.poll() is None]
        hit = {name: p in running for name, p in processes.items()}
        _stop(running)
        ok = {name: self._finish(name, process, start, hit[name]) for name, process in processes.items()}
        return ok

    def guarded(self, name: str, work) -> object:
        """Run a Python step; a failure is recorded, not raised."""
        start = time.perf_counter()
        try:
            return work()
        except Exception as exc:  # noqa: BLE001 -- one figure failing must not lose the others
            self.failed[name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
            return None
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 1)


def _history(checkpoint: Path) -> list[dict]:
    """The run's evaluations, one per epoch, as its checkpoint keeps them."""
    from streid_core.models.loading import load_checkpoint

    return list(load_checkpoint(checkpoint).get("history", []))


def _map_curve(histories: dict[str, list[dict]], path: Path, iterations_per_epoch: int) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from streid_core.viz.figures import save_figure

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    for arm, rows in histories.items():
        steps = [r["epoch"] * iterations_per_epoch for r in rows]
        left.plot(steps, [100 * r["mAP"] for r in rows], marker="o", label=arm)
        right.plot(steps, [100 * r["R1"] for r in rows], marker="o", label=arm)
    left.set(xlabel="iteration", ylabel="test mAP (%)")
    right.set(xlabel="iteration", ylabel="test R1 (%)")
    left.legend(fontsize=8)
    fig.suptitle("E on the test split while training (stage 0, side by side)")
    return save_figure(fig, path, tight=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "reports" / "gpu")),
                        help="where the results go (default $OUT, else reports/gpu)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="datasets folder (default data)")
    parser.add_argument("--work", type=Path, default=ROOT / "checkpoints" / "gpu_paper_run",
                        help="checkpoints and trunk weights (default checkpoints/gpu_paper_run)")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --smoke)")
    parser.add_argument("--amp", default="bf16", choices=("off", "bf16"), help="autocast of every training")
    parser.add_argument("--baseline-minutes", type=float, default=1.5, help="wall-clock budget of the baseline")
    parser.add_argument("--train-minutes", type=float, default=4.5, help="wall-clock budget of the stage-0 arms")
    parser.add_argument("--transfer-every", type=int, default=100, help="iterations between transfer measurements")
    parser.add_argument("--workers", type=int, default=12, help="DataLoader workers (shared by the arms)")
    parser.add_argument("--smoke", action="store_true",
                        help="a tiny rehearsal: 16 identities, ResNet-18 at 64x32, a few iterations")
    args = parser.parse_args(argv)

    from streid_core.atomic import write_json

    arch, height, width, iters_per_epoch, pairs, triplets = "resnet50", 256, 128, 100, 128, 24
    synth = ["synth", "--out", str(args.data_dir / "synthdance"), "--no-report", "--workers", str(args.workers)]
    if args.smoke:
        arch, height, width, iters_per_epoch, pairs, triplets = "resnet18", 64, 32, 2, 16, 4
        synth += ["--ids", "16", "--videos", "4", "--frames", "24"]
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    logs = args.work / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    steps = Steps(logs)
    summary: dict = {"setting": {"arch": arch, "height": height, "width": width, "triplets": triplets,
                                 "amp": args.amp, "seed_flags": SEED_STAGE0, "smoke": args.smoke,
                                 "arms": {arm: arm_flags(arm) for arm in ARMS},
                                 "baseline_minutes": args.baseline_minutes, "train_minutes": args.train_minutes}}

    def finish() -> int:
        summary["step_seconds"], summary["failed"] = steps.seconds, steps.failed
        write_json(args.out / "summary.json", summary)
        (logs / "commands.txt").write_text("\n".join(steps.commands) + "\n")
        with tarfile.open(args.out / "logs.tar.gz", "w:gz") as tar:
            tar.add(logs, arcname="logs")
        print(json.dumps({k: v for k, v in summary.items() if k != "setting"}, indent=1, default=str)[:6000])
        return 1 if args.smoke and steps.failed else 0

    import torch

    summary["setting"].update(device=torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
                              torch=torch.__version__)
    if not (args.data_dir / "synthdance").exists() and not steps.run("synth", _streid(*synth)):
        return finish()

    speed = logs / "train_speed.json"
    steps.run("speed", [sys.executable, str(ROOT / "benchmarks" / "train_speed.py"), "--task", "streidnet",
                        "--archs", arch, "--height", str(height), "--width", str(width), "--triplets", str(triplets),
                        "--iterations", "2" if args.smoke else "5", "--workers", "8", "--device", args.device,
                        "--out", str(speed)], deadline_s=150)
    if speed.exists():
        summary["speed"] = json.loads(speed.read_text())

    base_dir = args.work / "baseline"
    shutil.rmtree(base_dir, ignore_errors=True)
    steps.run("baseline", _streid(
        "baseline", "-d", "synthdance", "--data-dir", str(args.data_dir), "-a", arch, "--height", str(height),
        "--width", str(width), "-b", "32", "--epochs", "1000", "--max-iters-per-epoch", str(iters_per_epoch // 2 or 1),
        "--lr", "3e-3", "--step-size", "1000", "--eval-step", "1", "--amp", args.amp, "-j", str(args.workers),
        "--device", args.device, "--logs-dir", str(base_dir)), deadline_s=60 * args.baseline_minutes)
    last = base_dir / "checkpoint.pth.tar"  # the deadline stopped it: its last epoch's weights
    if not last.exists():
        steps.failed["baseline"] = f"no checkpoint within {args.baseline_minutes} minutes"
        return finish()
    summary["baseline_history"] = steps.guarded("baseline_history", lambda: _history(last))
    trunks = args.work / "trunks"
    trunks.mkdir(exist_ok=True)
    from streid_core.reporting.training_runs import encoder_trunk_weights

    encoder_trunk_weights(last, trunks / f"{arch}.pth")

    workers = str(max(1, args.workers // len(ARMS)))
    commands = {}
    for arm in ARMS:
        shutil.rmtree(args.work / arm, ignore_errors=True)
        measure = ["--transfer-eval-every", str(args.transfer_every), "--transfer-eval-pairs", str(pairs)] \
            if arm in DRAWING_ARMS else []
        commands[arm] = _streid(
            "train", *arm_flags(arm), "-j", workers, "-d", "synthdance", "--dataroot", str(args.data_dir),
            "--checkpoints", str(args.work), "--name", arm, "--arch", arch, "--height", str(height),
            "--width", str(width), "--niter", "1000", "--niter-decay", "0", "--max-iters-per-epoch",
            str(iters_per_epoch), "--save-step", "1000", "--eval-step", "1", "--select-on", "test",
            "--display-id", "0", "--pretrained", str(trunks), *measure, "--amp", args.amp, "--device", args.device)
    steps.run_together(commands, deadline_s=60 * args.train_minutes)
    return report(args, steps, summary, finish, iters_per_epoch)


def report(args, steps: Steps, summary: dict, finish, iters_per_epoch: int) -> int:
    """Scores, curves and galleries of the arms that wrote a checkpoint."""
    from streid_core.data.dataset import load_dataset
    from streid_core.data.keypoints import convention
    from streid_core.evaluation.pose_probes import pose_clusters, records_keypoints
    from streid_core.experiments.st_vs_baseline import generated_gallery, score_encoder
    from streid_core.reporting.transfer_report import transfer_curve
    from streid_core.training.transfer_metrics import read_transfer_metrics

    checkpoints = {arm: args.work / arm / "checkpoint.pth.tar" for arm in ARMS
                   if (args.work / arm / "checkpoint.pth.tar").exists()}
    summary["arms"] = {arm: {} for arm in ARMS}
    histories = {}
    for arm, checkpoint in checkpoints.items():
        histories[arm] = steps.guarded(f"{arm}_history", lambda c=checkpoint: _history(c)) or []
        summary["arms"][arm]["test_history"] = histories[arm]
    for arm in DRAWING_ARMS:
        rows = read_transfer_metrics(args.work / arm)
        summary["arms"][arm]["transfer"] = [{k: r[k] for k in ("iteration", "train_seconds", "generator", "source",
                                                                "mean", "pairs") if k in r} for r in rows]
        if rows:
            steps.guarded(f"{arm}_curve", lambda a=arm: transfer_curve(args.work / a, args.out / f"transfer_curve_{a}.png"))
    if histories:
        steps.guarded("map_curve", lambda: _map_curve(histories, args.out / "map_curve.png", iters_per_epoch))
    ds = load_dataset(args.data_dir / "synthdance")
    records = list(dict.fromkeys([*ds.query, *ds.gallery]))
    poses = pose_clusters(records_keypoints(records, convention(ds.keypoints)), 8, seed=0)
    for arm, checkpoint in checkpoints.items():
        score = steps.guarded(f"{arm}_score", lambda c=checkpoint: score_encoder(
            c, ds.query, ds.gallery, ds.protocol, poses, args.device))
        if score is not None:
            summary["arms"][arm]["last_checkpoint"] = {**asdict(score), "epoch": (histories.get(arm) or [{}])[-1].get("epoch")}
        if arm in DRAWING_ARMS:
            steps.guarded(f"{arm}_gallery", lambda a=arm, c=checkpoint: generated_gallery(
                c, ds, args.out / f"gallery_{a}.png"))
    return finish()


if __name__ == "__main__":
    sys.exit(main())
