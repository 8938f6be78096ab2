"""`streid demo` / `make demo`: the whole pipeline on the default dataset with a small CPU
configuration, written as an executed-notebook report.

1. SynthDance (the default `streid synth` dataset) is generated into `data` unless it exists;
2. notebook 01 explores it; 02 trains the baseline; 03 trains ST-ReIDNet with E started from
   the baseline's trunk (no ImageNet weights are ever downloaded); 04 renders a gallery of
   pose transfers with that generator; 05 evaluates both;
3. the pose transfer of the ST-ReIDNet checkpoint is measured against the real frames
   (`transfer_metrics.json`, `transfer_gallery.png`: read from the run's transfer cache, since
   notebooks 03, 04 and 05 measured it with the same settings);
4. `<out>/index.html` opens with the headline tables (colour histogram / baseline / ST-ReIDNet:
   R1 and mAP; the pose-transfer metrics) and the transfer gallery (`demo_index`), then links the
   executed notebooks, their figures and `metrics.json`.

A second run reuses the dataset, the finished training runs (an interrupted one is resumed)
and the feature cache, so it only re-executes the notebooks; `fresh=True` starts over.

The sizes below keep the whole demo inside a quarter of an hour on 2 CPU cores: from scratch, in
a fresh clone on the idle 2-core development machine, it took 751 s (12.5 minutes: the baseline
303 s, ST-ReIDNet at layer-4 stride 1 with its pose-transfer measurements 372 s; session 10); a
second run, reusing everything, about 40 s.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..data.synth import SynthConfig
from ..errors import StreidError
from ..training.streidnet_config import PRESETS

NOTEBOOKS = ("01_dataset_exploration", "02_baseline_training", "03_streidnet_training",
             "04_pose_transfer_explorer", "05_evaluation_report")


@dataclass(frozen=True)
class DemoPlan:
    """What the demo generates and the parameters of its training and report notebooks."""

    synth: SynthConfig
    baseline: dict[str, Any]
    streidnet: dict[str, Any]
    report: dict[str, Any]
    synth_workers: int = 2  # rendering processes (spawned: for a tiny set, 1 is faster)
    # the pose-transfer measurement of notebooks 03, 04, 05 and index.html: one setting, so that
    # the run's transfer cache answers all but the first
    # 256 pairs: one standard error of an accuracy about 0.03 (0.06 at 64); the training curve's
    # measurements every 40 iterations stay at 64 (the streidnet run_options)
    transfer: dict[str, Any] = field(default_factory=lambda: {"transfer_pairs": 256, "transfer_seed": 0})


# ResNet-18 at 128x64, one torch thread per process (with one data-loading worker beside it):
# on 2 cores, a second OpenMP thread halved training speed as soon as anything else ran. The
# baseline trains 4 short epochs (120 iterations of 32 triplets, about 2.3 passes over the
# training images). ST-ReIDNet continues from the baseline's trunk at the baseline's layer-4
# stride (1; notebook 03 reads it from the checkpoint: at the release's default 2 the same trunk
# lost 7 test mAP points) for 2 epochs of 80 iterations of 8 triplets, E at the seed README's
# learning rate (2e-5), G in the CPU recipe of
# reports/transfer-curve: half the release's width (ngf 32), 5 skip connections, no dropout,
# reconstruction losses only (--lambda-d 0 --lambda-dp 0: Di and Dp are not run), Adam 2e-4
# (--lr-g; the release's stage-0 rate, 1e-5, needs the paper's GPU budget) and the limb painting
# (--paint-limbs --lambda-paint 1), coloured from E's stage-1 map under the source's own limbs
# (--paint-from source-limbs --paint-layer 1): `streid train --preset cpu-draw`. Its pose transfer is
# measured every 40 iterations (notebook 03's curve, TensorBoard transfer/*). 80 iterations per
# epoch, not 100: at stride 1 E costs more, and 2 x 100 took the demo to 865-905 s of its 900.
# Both in float32: at 128x64 on one thread bf16 autocast is slower (the baseline's iteration 0.82x,
# ST-ReIDNet's painted one 0.85x; reports/bench/train_speed_*_128x64*.json), and float32 gives the
# same numbers on every CPU.
DEMO = DemoPlan(
    synth=SynthConfig(),
    baseline=dict(arch="resnet18", height=128, width=64, batch_size=32, epochs=4, max_iters_per_epoch=30,
                  eval_step=1, lr=3e-3, step_size=3, amp="off", workers=1, threads=1),
    streidnet=dict(arch="resnet18", height=128, width=64, batch_size=8, niter=2, niter_decay=0,
                   max_iters_per_epoch=80, eval_step=2, lr=2e-5, amp="off", workers=1, threads=1,
                   transfer_eval_every=40, options=dict(PRESETS["cpu-draw"]),
                   run_options={"print_freq": 160,  # a log line every 20 iterations
                                "transfer_eval_pairs": 64}),
    report=dict(max_points=800, ranked_queries=4, failure_queries=4, threads=1),
)


def _is_demo_output(out: Path) -> bool:
    """A folder `streid demo` may clear: empty, or holding what a demo writes."""
    if not out.exists():
        return True
    entries = {p.name for p in out.iterdir()}
    return not entries or "index.html" in entries or "runs" in entries


def start_over(out: Path, data: Path, log: Callable[[str], None]) -> None:
    """--fresh: remove the demo output and, when streid generated the dataset, regenerate it
    with the parameters recorded in its synth.json."""
    from ..data.synth import generate

    if not _is_demo_output(out):
        raise StreidError(f"{out}: not a streid demo folder (no index.html or runs/), refusing to clear it; "
                          "pass another --out")
    if out.exists():
        log(f"removing {out}")
        shutil.rmtree(out)
    synth_json = data / "synth.json"
    if synth_json.is_file():
        params = json.loads(synth_json.read_text(encoding="utf-8")).get("params", {})
        log(f"regenerating {data}")
        generate(data, SynthConfig(**params), overwrite=True, workers=min(2, os.cpu_count() or 1), progress=True)


def ensure_demo_dataset(data: Path, synth: SynthConfig, log: Callable[[str], None], workers: int = 2) -> None:
    """Generate SynthDance with `synth` into `data` unless something is there already."""
    from ..data.synth import generate

    if data.exists():
        log(f"using the dataset in {data}")
        return
    log(f"generating SynthDance into {data}")
    generate(data, synth, workers=workers, progress=True)


def demo_parameters(plan: DemoPlan, data: Path, out: Path, device: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(parameters of every notebook, per-notebook parameters) for `run_notebooks`; paths are
    absolute because the notebooks run in notebooks/."""
    common = {"data_dir": str(data.parent), "dataset": data.name, "synth_preset": None}
    per_notebook = {
        "02_baseline_training": {**plan.baseline, "device": device, "reuse": True},
        "03_streidnet_training": {**plan.streidnet, "device": device, "reuse": True,
                                  "init_encoder_from": str(out / "runs" / "baseline"), **plan.transfer},
        # the explorer renders its headless gallery from the ST-ReIDNet run notebook 03 wrote
        "04_pose_transfer_explorer": {"data_root": str(data.parent), "dataset": data.name,
                                      "checkpoint": str(out / "runs" / "streidnet" / "checkpoint.pth.tar"),
                                      "train_if_missing": False, **plan.transfer},
        "05_evaluation_report": {**plan.report, "device": device, **plan.transfer},
    }
    return common, per_notebook


def summary_lines(metrics: dict[str, Any]) -> list[str]:
    """The headline numbers of a demo report's merged metrics.json."""
    lines = []
    report = metrics.get("05_metrics") or {}
    protocol = (report.get("protocols") or ["?"])[0]
    ap = (report.get("ap_conventions") or ["?"])[0]
    for label, results in (report.get("models") or {}).items():
        m = results.get(protocol, {}).get(ap, {})
        if m:
            lines.append(f"{label:>16}: R1 {100 * m['R1']:5.1f} %  mAP {100 * m['mAP']:5.1f} %  ({protocol} protocol)")
    colour = report.get("color_baseline")
    if colour:
        lines.append(f"{'colour histogram':>16}: R1 {100 * colour['R1']:5.1f} %  mAP {100 * colour['mAP']:5.1f} %")
    return lines


def transfer_summary_line(metrics: dict[str, Any]) -> str | None:
    """ST-ReIDNet's pose transfer (G beside the two references) from a demo report's merged
    metrics.json; None when it holds no measurement."""
    scores = (metrics.get("transfer_metrics") or {}).get("scores") or {}
    g, source, mean = (scores.get(k) for k in ("generator", "source", "mean"))
    if not (g and source and mean):
        return None
    return (f"{'pose transfer':>16}: body L1 {g['body_l1']:.3f} (source unchanged {source['body_l1']:.3f}, mean image "
            f"{mean['body_l1']:.3f}), pose acc. {g['pose_accuracy']:.2f}, identity acc. {g['identity_accuracy']:.2f} "
            "(chance 0.50)")


def run_demo(data: str | os.PathLike = "data/synthdance", out: str | os.PathLike = "reports/demo",
             fresh: bool = False, device: str = "auto", plan: DemoPlan = DEMO,
             log: Callable[[str], None] = print, stream: TextIO | None = None) -> Path:
    """Run the demo pipeline (see the module docstring); returns `<out>/index.html`. `log`
    receives the pipeline's progress lines, `stream` what the notebooks print (training logs)."""
    from .demo_index import demo_headline, write_demo_transfer
    from .notebooks import run_notebooks

    start = time.perf_counter()
    data, out = Path(data).resolve(), Path(out).resolve()
    if fresh:
        start_over(out, data, log)
    ensure_demo_dataset(data, plan.synth, log, plan.synth_workers)
    common, per_notebook = demo_parameters(plan, data, out, device)

    def headline(out_dir: Path) -> str:
        measured = write_demo_transfer(out_dir, out_dir / "runs" / "streidnet" / "checkpoint.pth.tar", data,
                                       pairs=plan.transfer["transfer_pairs"], seed=plan.transfer["transfer_seed"],
                                       device=device)
        how = "from its transfer cache" if measured.cached else "measured"
        log(f"pose transfer of the ST-ReIDNet checkpoint ({how}): transfer_metrics.json, transfer_gallery.png")
        return demo_headline(out_dir)

    index = run_notebooks(list(NOTEBOOKS), common, run_name=out.name, reports_root=out.parent,
                          per_notebook=per_notebook, log=log, stream=stream, headline=headline)
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    for line in summary_lines(metrics):
        log(line)
    transfer_line = transfer_summary_line(metrics)
    if transfer_line:
        log(transfer_line)
    log(f"demo finished in {time.perf_counter() - start:.0f} s")
    return index
