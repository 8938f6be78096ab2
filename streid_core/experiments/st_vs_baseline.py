"""ST-ReIDNet against the baseline under one CPU budget, over several seeds: the claim of the paper
measured on SynthDance (or any dataset with poses and videos).

Per seed, five runs, each a training config of the same dataclasses `streid baseline` and
`streid train` build from their flags (`BaselineConfig`, `StreidNetRunConfig`), run by the same
entry points (`train_baseline`, `train_streidnet`):

1. `baseline`: the README's small baseline (stage 0 of the paper's three-stage recipe: E alone).
2. `stage1`: G, Di and Dp learn around that fixed E (paper stage 1; E does not change).
3. three fine-tunes of E from the same starting point, identical except for what the
   comparison is about (paper stage 2, the same number of E updates on the same batch size):
   - `st-reidnet`: the full objective and sparse-temporal sampling (the method);
   - `st-sampling-only`: generator losses off, sparse-temporal sampling on (an ablation);
   - `baseline-continued`: generator losses off and plain random triplets: E gets exactly the
     baseline's losses for the same number of steps (the control).

Each run trains in a process of its own (spawned, one torch thread, its output in
<run folder>.out), up to `jobs` at a time, each once the runs it starts from have finished.

Every run's encoder is then scored on the test split (R1, mAP under the dataset's protocol), and
probed for pose: among other people, how often a test image's nearest neighbours are in the same
pose cluster (kNN skill), and how well a linear classifier predicts the pose cluster from the
feature (accuracy, cross-validated with identities held out). The report holds the per-seed
numbers, their means and standard deviations, and a gallery of generated images. results.json
keeps every run's full config (`runs`: run -> {"trainer", "config"}), so any run can be rebuilt
and repeated.

A finished run (its results.json exists) is never redone, so an interrupted comparison resumes
where it stopped; an unfinished run is started over.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_file, check_output_dir, write_json
from ..device import resolve_device
from ..errors import StreidError
from ..training.config import BaselineConfig, check_rate
from ..training.streidnet_config import StreidNetConfig, StreidNetRunConfig, check_painting_source

ARMS = ("st-reidnet", "st-sampling-only", "baseline-continued")
ROWS = ("baseline", *ARMS)  # "baseline" = the stage-0 encoder every fine-tune starts from
LABELS = {
    "baseline": "baseline (stage 0 only)",
    "st-reidnet": "ST-ReIDNet (G/Di/Dp losses + sparse-temporal sampling)",
    "st-sampling-only": "ablation: sparse-temporal sampling only",
    "baseline-continued": "baseline continued (same E steps, random triplets)",
}
GENERATOR_OFF = {"lambda_recon": 0.0, "lambda_d": 0.0, "lambda_dp": 0.0}
RunConfig = BaselineConfig | StreidNetRunConfig
# what an unchanged setting is, per trainer: `describe` shows a run by what differs from it
DEFAULTS: dict[str, RunConfig] = {"train_baseline": BaselineConfig(),
                                  "train_streidnet": StreidNetRunConfig(StreidNetConfig(num_classes=0))}


@dataclass(frozen=True)
class ComparisonBudget:
    """Sizes of every run. The default is the documented CPU budget: ResNet-18 at 128x64, about
    27 minutes of one core per seed on the 2-core development machine (3 seeds, --jobs 2: 41
    minutes on an otherwise idle machine, 61 on one shared with other jobs)."""

    arch: str = "resnet18"
    height: int = 128
    width: int = 64
    # stage 0: the README's small baseline
    baseline_batch: int = 32
    baseline_epochs: int = 4
    baseline_step: int = 3
    baseline_lr: float = 3e-3
    baseline_iters: int | None = 30  # cap per epoch (None: whole epochs); the demo's baseline
    # stage 1: G learns around the fixed E, in the CPU recipe of reports/transfer-curve: G at half
    # the release's width with 5 skip connections and no dropout, trained on reconstruction alone
    # (adversarial_weight 0: Di and Dp are not run; the README's is 0.1), Adam 0.1 x stage1_lr
    stage1_batch: int = 8
    stage1_iters: int = 200
    stage1_lr: float = 2e-3  # E's lr in stage 1 sets G = 0.1 lr (2e-4), Di = Dp = lr
    generator_ngf: int = 32  # the release's is 64
    connect_layers: int = 5  # the release's default is 0
    generator_drop: float = 0.0  # the release's is 0.2
    # G's limb painting and its own L1 (models/limb_painting.py), as in --preset cpu-draw; not in the release
    paint_limbs: bool = True
    lambda_paint: float = 1.0
    # where the painting's colours come from, as in the preset: E's stage-1 map under the source's
    # limbs (the session-9 table read E's descriptor: --paint-from descriptor --paint-layer 4)
    paint_from: str = "source-limbs"
    paint_layer: int = 1
    adversarial_weight: float = 0.0  # --lambda-d = --lambda-dp in stages 1 and 2
    transfer_pairs: int = 64  # test pairs of the pose-transfer metrics of each stage-1 G
    # stage 2: triplets per iteration and iterations
    st_batch: int = 16
    finetune_iters: int = 60
    # E's SGD rate in stage 2 (G 1e-6, Di/Dp 1e-5 as in the paper). 1e-3 wrecked the stage-0
    # encoder within 60 steps in every arm (test mAP 62 -> 46-49 on seed 1), control included.
    finetune_lr: float = 1e-4
    workers: int = 1
    # float32: on the CPU bf16 autocast is slower at these sizes (0.8x, reports/bench); the
    # session-9 table (reports/st-vs-baseline) was made with "bf16", the default until then
    amp: str = "off"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def validate(self) -> None:
        """Every size and rate in range before the first of many runs starts (each run would
        refuse its own config, but only after the earlier runs had trained)."""
        import math

        from ..models.reid import ARCHS

        if self.arch not in ARCHS:  # else only the first run, after creating its folder, would say so
            raise StreidError(f"--arch {self.arch!r}: not a ResNet streid builds; use one of {', '.join(ARCHS)}")
        for name in ("height", "width"):
            if getattr(self, name) < 32 or getattr(self, name) % 32:
                raise StreidError(f"--{name} {getattr(self, name)}: must be positive and divisible by 32 (ST-ReIDNet's G)")
        minimum = {"baseline_batch": 1, "baseline_epochs": 1, "baseline_step": 1, "st_batch": 2, "stage1_batch": 2,
                   "stage1_iters": 1, "finetune_iters": 1, "workers": 0, "baseline_iters": 1, "generator_ngf": 1,
                   "connect_layers": 0, "transfer_pairs": 1}
        for name, low in minimum.items():
            value = getattr(self, name)
            if value is not None and value < low:
                raise StreidError(f"--{name.replace('_', '-')} {value}: must be >= {low}")
        check_rate("--lambda-paint", self.lambda_paint)
        if self.lambda_paint > 0 and not self.paint_limbs:
            raise StreidError(f"--lambda-paint {self.lambda_paint}: weighs the loss of a limb painting G does not have; "
                              "drop --no-paint-limbs, or pass --lambda-paint 0")
        check_painting_source(self.paint_from, self.paint_layer)
        for name in ("baseline_lr", "stage1_lr", "finetune_lr"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise StreidError(f"--{name.replace('_', '-')} {value}: must be a finite number > 0")
        if self.connect_layers > 5:
            raise StreidError(f"--connect-layers {self.connect_layers}: G has 5 levels (0 to 5)")
        if not (math.isfinite(self.generator_drop) and 0.0 <= self.generator_drop < 1.0):
            raise StreidError(f"--generator-drop {self.generator_drop}: a dropout probability, >= 0 and < 1")
        if not (math.isfinite(self.adversarial_weight) and self.adversarial_weight >= 0.0):
            raise StreidError(f"--adversarial-weight {self.adversarial_weight}: must be a finite number >= 0")


def trainer_name(config: RunConfig) -> str:
    return "train_baseline" if isinstance(config, BaselineConfig) else "train_streidnet"


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config dicts as one level, nested names dotted ("model.lr")."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def changed_settings(config: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The settings of `config` that differ from `base` (run configs as dicts, as results.json
    stores them), nested ones dotted ("model.lr")."""
    base = _flat(base)
    return {k: v for k, v in _flat(config).items() if k not in base or base[k] != v}


@dataclass(frozen=True)
class Step:
    """One training run of the comparison."""

    seed: int
    name: str  # baseline, stage1 or an arm
    config: RunConfig
    after: tuple[str, ...] = ()  # names of this seed's steps that must finish first

    @property
    def key(self) -> str:
        return f"seed{self.seed}/{self.name}"

    @property
    def run_dir(self) -> Path:
        return Path(self.config.logs_dir) if isinstance(self.config, BaselineConfig) else self.config.run_dir

    @property
    def done(self) -> bool:
        return (self.run_dir / "results.json").is_file()

    def record(self) -> dict[str, Any]:
        """What results.json keeps of the run: the trainer and its whole config."""
        return {"trainer": trainer_name(self.config), "config": asdict(self.config)}

    def describe(self) -> str:
        return describe_run(self.record())


def describe_run(record: dict[str, Any]) -> str:
    """One line for a run as results.json keeps it: the trainer and the settings in which the run
    differs from the trainer's defaults."""
    trainer = record["trainer"]
    changed = changed_settings(record["config"], asdict(DEFAULTS[trainer]))
    return f"{trainer}({', '.join(f'{k}={v}' for k, v in changed.items())})"


def seed_steps(seed: int, data_root: Path, dataset: str, out: Path, budget: ComparisonBudget,
               device: str = "cpu") -> list[Step]:
    """The five runs of one seed, in dependency order."""
    b = budget
    folder = out / f"seed{seed}"
    baseline = folder / "baseline"
    steps = [Step(seed, "baseline", BaselineConfig(
        dataset=dataset, data_dir=str(data_root), arch=b.arch, height=b.height, width=b.width, workers=b.workers,
        amp=b.amp, seed=seed, device=device, batch_size=b.baseline_batch, epochs=b.baseline_epochs,
        step_size=b.baseline_step, eval_step=b.baseline_epochs, soft_margin=True, inst_mode=True, use_bn=True,
        label_smoothing=True, lr=b.baseline_lr, max_iters_per_epoch=b.baseline_iters, logs_dir=str(baseline)))]
    # the README's train.py options (loss weights, augmentation, masks), one epoch of N iterations;
    # the fine-tunes go without the eraser, which the stage-0 encoder never saw: a new augmentation
    # would dominate a short fine-tune in every arm alike (stage 1 keeps it: E is fixed there)
    model = StreidNetConfig(
        num_classes=0, arch=b.arch, last_stride=1, height=b.height, width=b.width, niter=1, niter_decay=0,
        smooth_label=True, soft_margin=True, emb_smooth=True, mask=True, lambda_recon=10.0, lambda_tri=1.0,
        lambda_class=1.0, lambda_d=b.adversarial_weight, lambda_dp=b.adversarial_weight, ngf=b.generator_ngf,
        connect_layers=b.connect_layers, drop=b.generator_drop, paint_limbs=b.paint_limbs,
        lambda_paint=b.lambda_paint, paint_from=b.paint_from if b.paint_limbs else "descriptor",
        paint_layer=b.paint_layer if b.paint_limbs and b.paint_from == "source-limbs" else 4,
        netE_pretrain=str(baseline / "model_best.pth.tar"),
        device=device, amp=b.amp)
    run = StreidNetRunConfig(
        model=model, dataset=dataset, dataroot=str(data_root), checkpoints=str(folder), batch_size=b.st_batch,
        workers=b.workers, skip_frame=10, inter_rate=0.7, pose_aug="gauss", eval_step=1,
        save_step=1000,  # no <epoch>_net_X.pth copies: checkpoint.pth.tar holds all four networks
        print_freq=b.st_batch * 10, seed=seed)
    steps.append(Step(seed, "stage1", replace(
        run, model=replace(model, stage=1, lr=b.stage1_lr), eraser=True, max_iters_per_epoch=b.stage1_iters,
        batch_size=b.stage1_batch, print_freq=b.stage1_batch * 10, transfer_eval_every=b.stage1_iters,
        transfer_eval_pairs=b.transfer_pairs, name="stage1"), ("baseline",)))
    pretrained = str(folder / "stage1" / "checkpoint.pth.tar")
    finetune = replace(model, stage=2, lr=b.finetune_lr, netG_pretrain=pretrained, netDi_pretrain=pretrained,
                       netDp_pretrain=pretrained)
    arm_settings = {  # (model, run) settings of each arm
        "st-reidnet": ({}, {}),
        "st-sampling-only": (GENERATOR_OFF, {}),
        "baseline-continued": (GENERATOR_OFF, {"inter_rate": 0.0}),
    }
    for arm, (model_settings, run_settings) in arm_settings.items():
        steps.append(Step(seed, arm, replace(
            run, model=replace(finetune, **model_settings), max_iters_per_epoch=b.finetune_iters, name=arm,
            **run_settings), ("baseline", "stage1")))
    return steps


def _train_in_this_process(config: RunConfig, output: str, threads: int) -> None:
    """A spawned process's work: send its output to `output`, one torch thread, train."""
    descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    import torch

    torch.set_num_threads(threads)
    try:
        if isinstance(config, BaselineConfig):
            from ..training.baseline import train_baseline

            train_baseline(config)
        else:
            from ..training.streidnet_run import train_streidnet

            train_streidnet(config)
    except StreidError as exc:
        print(f"streid: error: {exc}", file=sys.stderr)
        sys.exit(2)


def run_step(step: Step, log: Callable[[str], None], threads: int = 1) -> float:
    """Run one step in a spawned process of its own (one torch thread: two per process thrash a
    2-core machine); its output goes to <run_dir>.out. Returns the seconds it took."""
    if step.run_dir.exists():  # an unfinished run from an interrupted comparison: start it over
        shutil.rmtree(step.run_dir)
    step.run_dir.parent.mkdir(parents=True, exist_ok=True)
    output = step.run_dir.with_suffix(".out")
    start = time.perf_counter()
    log(f"start {step.key}: {step.describe()}")
    process = multiprocessing.get_context("spawn").Process(
        target=_train_in_this_process, args=(step.config, str(output), threads), name=step.key)
    process.start()
    process.join()
    seconds = time.perf_counter() - start
    if process.exitcode != 0 or not step.done:
        raise StreidError(f"{step.key} failed (exit code {process.exitcode}); its output is in {output}")
    log(f"done  {step.key} in {seconds / 60:.1f} min")
    return seconds


def run_steps(steps: list[Step], jobs: int, log: Callable[[str], None]) -> dict[str, float]:
    """Run the unfinished steps, up to `jobs` at a time, each once its seed's prerequisites are done."""
    finished = {s.key for s in steps if s.done}
    # steps that others wait for go first, so that no seed's chain is left to run alone at the end
    needed = {name for s in steps for name in s.after}
    pending = sorted((s for s in steps if s.key not in finished), key=lambda s: s.name not in needed)
    seconds: dict[str, float] = {}

    def ready(step: Step) -> bool:
        return all(f"seed{step.seed}/{name}" in finished for name in step.after)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        running: dict[Future, Step] = {}
        while pending or running:
            for step in [s for s in pending if ready(s)][: max(1, jobs) - len(running)]:
                pending.remove(step)
                if step.done:  # finished meanwhile (e.g. run by hand from its config)
                    finished.add(step.key)
                    continue
                running[pool.submit(run_step, step, log)] = step
            if not running and any(ready(s) for s in pending):
                continue
            if not running:
                raise StreidError(f"cannot start {pending[0].key}: a step it needs did not finish")
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                step = running.pop(future)
                seconds[step.key] = future.result()  # re-raises a failed step's error
                finished.add(step.key)
    return seconds


# ---------------------------------------------------------------- scoring


@dataclass
class EncoderScore:
    R1: float
    mAP: float
    pose_knn_skill: float  # 0 = neighbours among other people are at chance for pose cluster
    pose_linear_accuracy: float  # pose cluster predicted from the feature, identities held out
    identity_knn_skill: float


def score_encoder(checkpoint: Path, query: list, gallery: list, protocol: str, pose_labels: np.ndarray,
                  device: str = "cpu") -> EncoderScore:
    """Test-split R1/mAP and the pose probes of one encoder, from one pass of feature extraction.
    `pose_labels` follow query ∪ gallery, each image once, in order of first appearance."""
    from ..evaluation.pipeline import evaluate_reid
    from ..evaluation.pose_probes import pose_invariance_probe, pose_linear_probe

    # float32, as the training runs' own test evaluation, so the numbers agree with their logs
    evaluation = evaluate_reid(checkpoint, query, gallery, protocol, device=device)
    ranks, feats = evaluation.result, evaluation.features
    pids = np.array([r.pid for r in evaluation.images])
    probe = pose_invariance_probe(feats, pids, pose_labels)
    return EncoderScore(R1=float(ranks.cmc[0]), mAP=float(ranks.mAP), pose_knn_skill=probe["pose"]["skill"],
                        pose_linear_accuracy=pose_linear_probe(feats, pose_labels, pids),
                        identity_knn_skill=probe["identity"]["skill"])


@dataclass
class Comparison:
    dataset: str
    protocol: str
    budget: dict[str, Any]
    seeds: list[int]
    scores: dict[str, dict[str, dict[str, float]]]  # row -> "seed<s>" -> metric -> value
    summary: dict[str, dict[str, dict[str, float]]]  # row -> metric -> {"mean", "std"}
    pose_clusters: int
    pose_linear_chance: float  # share of the largest pose cluster
    runs: dict[str, dict[str, Any]]  # step -> {"trainer": train_baseline | train_streidnet, "config": its config}
    minutes: dict[str, float] = field(default_factory=dict)  # step -> minutes (this invocation's runs)
    # "seed<s>" -> the pose-transfer metrics of that seed's stage-1 G after its last iteration:
    # {"generator": {...}, "source": {...}, "mean": {...}} (evaluation.pose_transfer METRICS)
    transfer: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "Comparison":
        """The comparison a finished `streid st-vs-baseline` wrote into `folder`."""
        path = Path(folder) / "results.json"
        if not path.is_file():
            raise StreidError(f"{path}: not found; run `streid st-vs-baseline --out {folder}` first")
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def summarise(scores: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, dict[str, float]]]:
    """Mean and sample standard deviation (0 for one seed) of every metric of every row."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for row, per_seed in scores.items():
        metrics = next(iter(per_seed.values())).keys()
        out[row] = {}
        for metric in metrics:
            values = np.array([per_seed[s][metric] for s in per_seed], dtype=np.float64)
            out[row][metric] = {"mean": float(values.mean()),
                                "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
    return out


def render_markdown(comparison: Comparison) -> str:
    """The comparison table (percentages, mean ± std over seeds), per-seed mAP and the verdict."""
    c = comparison
    seeds = ", ".join(str(s) for s in c.seeds)
    lines = [f"# ST-ReIDNet vs baseline on {c.dataset} (test split, {c.protocol} protocol, seeds {seeds})", "",
             "| encoder | mAP | R1 | pose kNN skill | pose linear acc. | identity kNN skill |",
             "|---|---|---|---|---|---|"]
    for row in ROWS:
        if row not in c.summary:
            continue
        s = c.summary[row]
        cells = [f"{100 * s[m]['mean']:.1f} ± {100 * s[m]['std']:.1f}"
                 for m in ("mAP", "R1", "pose_knn_skill", "pose_linear_accuracy", "identity_knn_skill")]
        lines.append(f"| {LABELS[row]} | " + " | ".join(cells) + " |")
    lines += ["", f"Pose: {c.pose_clusters} k-means clusters of normalised test skeletons; a linear classifier that "
              f"always answered the largest cluster would score {100 * c.pose_linear_chance:.1f} %. "
              "Lower pose numbers = less pose in the feature.", "", "mAP per seed:", "",
              "| encoder | " + " | ".join(f"seed {s}" for s in c.seeds) + " |",
              "|---|" + "---|" * len(c.seeds)]
    for row in ROWS:
        if row in c.scores:
            lines.append(f"| {row} | " + " | ".join(f"{100 * c.scores[row][f'seed{s}']['mAP']:.1f}" for s in c.seeds) + " |")
    if c.transfer:
        lines += ["", "Pose transfer of each seed's stage-1 G (held-out test dancers; body L1 over the better of "
                  "the unchanged source and the mean image; accuracies: chance 0.5):", "",
                  "| seed | body L1 | L1 / better reference | pose acc. | identity acc. | E rank-1 |",
                  "|---|---|---|---|---|---|"]
        for seed, rows in c.transfer.items():
            g = rows["generator"]
            better = min(rows["source"]["body_l1"], rows["mean"]["body_l1"])
            lines.append(f"| {seed.removeprefix('seed')} | {g['body_l1']:.3f} | {g['body_l1'] / better:.3f} | "
                         f"{g['pose_accuracy']:.2f} | {g['identity_accuracy']:.2f} | {g['rank1']:.2f} |")
    if "st-reidnet" in c.scores and "baseline-continued" in c.scores:
        gaps = [c.scores["st-reidnet"][f"seed{s}"]["mAP"] - c.scores["baseline-continued"][f"seed{s}"]["mAP"]
                for s in c.seeds]
        wins = sum(g > 0 for g in gaps)
        lines += ["", f"ST-ReIDNet minus baseline-continued, mAP: {100 * np.mean(gaps):+.1f} points on average; "
                  f"ahead on {wins} of {len(gaps)} seeds."]
    return "\n".join(lines) + "\n"


def compare(seeds: list[int], out: str | os.PathLike, data_root: str | os.PathLike = "data",
            dataset: str = "synthdance", budget: ComparisonBudget = ComparisonBudget(), jobs: int = 2,
            device: str = "cpu", gallery: bool = True, pose_cluster_count: int = 8,
            log: Callable[[str], None] = print) -> Comparison:
    """Run (or resume) every seed's five runs, score the encoders and write results.json,
    table.md, comparison.png (viz.comparison) and generated.png into `out`."""
    from ..data.dataset import load_dataset, resolve_dataset_dir
    from ..data.keypoints import convention
    from ..evaluation.pose_probes import pose_clusters, records_keypoints
    from ..training.transfer_metrics import read_transfer_metrics
    from ..viz.comparison import comparison_figure
    from ..viz.figures import save_figure

    if not seeds:
        raise StreidError("--seeds: give at least one seed")
    if any(not 0 <= seed < 2**32 for seed in seeds) or len(set(seeds)) != len(seeds):
        raise StreidError(f"--seeds {' '.join(map(str, seeds))}: give distinct seeds between 0 and 2**32 - 1")
    if jobs < 1:
        raise StreidError(f"--jobs {jobs}: must be >= 1 (runs at a time)")
    budget.validate()
    device = str(resolve_device(device))  # "auto" -> the device every run and score uses, recorded in results.json
    check_output_dir(out, "--out")
    out, data_root = Path(out).resolve(), Path(data_root).resolve()
    root = resolve_dataset_dir(data_root, dataset)
    ds = load_dataset(root)
    if ds.keypoints == "none" or not ds.videos:
        raise StreidError(f"{root}: the comparison needs pose files and video information (as `streid synth` writes)")
    steps = [s for seed in seeds for s in seed_steps(seed, data_root, root.name, out, budget, device)]
    seconds = run_steps(steps, jobs, log)

    log("scoring the encoders on the test split")
    records = list(dict.fromkeys([*ds.query, *ds.gallery]))
    poses = pose_clusters(records_keypoints(records, convention(ds.keypoints)), pose_cluster_count, seed=0)
    scores: dict[str, dict[str, dict[str, float]]] = {row: {} for row in ROWS}
    for step in steps:
        if step.name in scores:  # stage 1 leaves E as the baseline made it: nothing new to score
            score = score_encoder(step.run_dir / "model_best.pth.tar", ds.query, ds.gallery, ds.protocol, poses,
                                  device)
            scores[step.name][f"seed{step.seed}"] = asdict(score)
    transfer = {}
    for step in steps:
        if step.name == "stage1":
            measured = read_transfer_metrics(step.run_dir)
            if measured:
                transfer[f"seed{step.seed}"] = {k: measured[-1][k] for k in ("generator", "source", "mean")}
    comparison = Comparison(
        transfer=transfer,
        dataset=root.name, protocol=ds.protocol, budget=budget.as_dict(), seeds=list(seeds), scores=scores,
        summary=summarise(scores), pose_clusters=int(poses.max()) + 1,
        pose_linear_chance=float(np.bincount(poses).max() / len(poses)),
        runs={s.key: s.record() for s in steps}, minutes={k: v / 60 for k, v in seconds.items()})
    write_json(out / "results.json", comparison.as_dict())
    with atomic_file(out / "table.md", "w") as handle:
        handle.write(render_markdown(comparison))
    save_figure(comparison_figure(comparison), out / "comparison.png", dpi=100, tight=True)
    if gallery:
        generated_gallery(out / f"seed{seeds[0]}" / "st-reidnet" / "checkpoint.pth.tar", ds, out / "generated.png")
    return comparison


def generated_gallery(checkpoint: Path, ds: Any, path: Path, sources: int = 4, poses: int = 5) -> Path:
    """Test people (never seen in training) redrawn by the fine-tuned generator in other test poses."""
    from ..models.pose_transfer import PoseTransfer
    from ..reporting.pose_explorer import pick_samples, render_gallery

    records = [*ds.query, *ds.gallery]
    gallery = render_gallery(PoseTransfer(checkpoint), pick_samples(records, ds.keypoints, sources, seed=1),
                             pick_samples(records, ds.keypoints, poses, seed=2), path, ds.keypoints,
                             title="ST-ReIDNet generator: test identity (left) in the pose above")
    return gallery.path
