"""The shared training loop: `fit(task, ...)` runs any `TrainingTask` (baseline, ST-ReIDNet).

The loop owns, for every task:
- epochs: per epoch the sampler's epoch is set (so a resumed epoch replays exactly), the task
  puts its networks in train mode, iterations run, the task steps its schedules;
- evaluation after every `eval_step`-th epoch and after the last one;
- model selection: on the held-out validation identities (query = gallery = val, with the
  dataset's protocol) by default; on the test set with `select_on="test"` (the original's
  behaviour, optimistic); on the last epoch when there are no held-out identities;
- checkpoints after every epoch (full state, atomic) and of the best model; exact resume;
- the NaN guard: a non-finite loss stops the run with one line, the last good checkpoint
  untouched;
- progress bars, log.txt, TensorBoard, config.json; only the main process writes;
- hooks (hooks.py): code that follows the run (snapshots, live displays, notebook plots).

Typical use (the CLI does this):

    run = start_run(loop)                   # seed, device, torchrun process group
    ... build dataset, encoder (on run.device), task, TrainData, EvalData ...
    result = fit(task, train, evaluation, loop, run, encoder_config, run_config, hooks=[...])
"""
from __future__ import annotations

import dataclasses

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..atomic import write_json
from ..data.records import Record
from ..device import resolve_device
from ..errors import StreidError
from ..evaluation.pipeline import evaluate_reid
from ..evaluation.metrics import RankResult
from ..seeding import seed_everything
from ..models.loading import FORMAT, VERSION, EncoderConfig, load_checkpoint, load_encoder
from .checkpoint import BEST_NAME, CHECKPOINT_NAME, capture_rng_state, restore_rng_state, save_checkpoint
from .config import LoopConfig
from .distributed import DistContext, barrier, init_distributed, mean_over_ranks
from .hooks import TrainContext, TrainingHook
from .loader import EpochLoader, TrainData, probe_batch
from ..numerics import amp_dtype, check_amp, check_bf16
from .run_logging import CONFIG_NAME, RunLog, write_run_config
from .task import TrainingTask

RESULTS_NAME = "results.json"


@dataclass(frozen=True)
class RunContext:
    """Where this process computes and which process it is."""

    device: torch.device
    dist: DistContext = DistContext()


def start_run(loop: LoopConfig) -> RunContext:
    """Validate the loop options, pick the device, join torchrun's process group (if any) and
    seed every generator. Call before building the networks so their initialisation is seeded."""
    loop.validate()
    device = resolve_device(loop.device)
    dist_ctx, device = init_distributed(device)
    check_amp(loop.amp, device)
    seed_everything(loop.seed, loop.deterministic)
    return RunContext(device=device, dist=dist_ctx)


@dataclass
class EvalData:
    """Records to evaluate on. `val` empty means no held-out identities (e.g. with
    --combine-trainval the validation identities are trained on); `val_note` says why."""

    query: list[Record]
    gallery: list[Record]
    protocol: str
    height: int
    width: int
    val: list[Record] = field(default_factory=list)
    val_note: str = ""


@dataclass
class EpochStats:
    iterations: int
    images: int  # over all processes
    seconds: float
    data_seconds: float  # time spent waiting for the next batch
    losses: dict[str, float]  # means over the epoch's iterations

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    @property
    def data_fraction(self) -> float:
        return self.data_seconds / self.seconds if self.seconds > 0 else 0.0


@dataclass
class FitResult:
    epochs: int  # last completed epoch
    selection: str  # "val", "test" or "last"
    selected_epoch: int
    selected_checkpoint: str
    test: dict[str, float]  # metrics of the selected model on the test set
    history: list[dict[str, Any]]


class NonFiniteLoss(Exception):
    def __init__(self, epoch: int, iteration: int, name: str, value: float) -> None:
        super().__init__(f"epoch {epoch}, iteration {iteration}: loss '{name}' is {value}")
        self.epoch, self.iteration, self.name, self.value = epoch, iteration, name, value


def _first_non_finite(losses: dict[str, float]) -> str | None:
    bad = [k for k, v in losses.items() if not math.isfinite(v)]
    if not bad:
        return None
    terms = [k for k in bad if k != "loss"]  # name the term that broke, not only the total
    return terms[0] if terms else bad[0]


def train_epoch(task: TrainingTask, loader: EpochLoader, epoch: int, run: RunContext, *,
                max_iters: int | None = None, log: RunLog | None = None, print_freq: int = 50,
                progress: bool = False, total_epochs: int | None = None, step_offset: int = 0,
                after_step: Callable[[int, dict[str, float]], None] | None = None) -> EpochStats:
    """One epoch of `task` over `loader` (epoch already set), calling `after_step(iteration,
    losses)` after each finite step. Raises NonFiniteLoss."""
    from tqdm import tqdm

    total = len(loader) if max_iters is None else min(len(loader), max_iters)
    if total == 0:
        raise StreidError("the training set yields no complete batch; lower -b/--batch-size or add images")
    sums: dict[str, float] = {}
    images = 0
    data_seconds = 0.0
    bar = tqdm(total=total, desc=f"epoch {epoch}" + (f"/{total_epochs}" if total_epochs else ""),
               unit="it", disable=None if progress else True, dynamic_ncols=True, leave=False)
    start = time.perf_counter()
    iterator = iter(loader)
    try:
        for i in range(1, total + 1):
            wait = time.perf_counter()
            batch = next(iterator)
            data_seconds += time.perf_counter() - wait
            losses = mean_over_ranks(task.train_step(batch), run.dist, run.device)
            bad = _first_non_finite(losses)
            if bad is not None:
                raise NonFiniteLoss(epoch, i, bad, losses[bad])
            images += len(batch["image"]) * run.dist.world_size
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + value
            if log is not None:
                log.scalars("train", losses, step_offset + i)
            if after_step is not None:
                after_step(i, losses)
            elapsed = time.perf_counter() - start
            bar.set_postfix(loss=f"{losses.get('loss', float('nan')):.3f}", img_s=f"{images / elapsed:.1f}",
                            data=f"{100 * data_seconds / elapsed:.0f}%", refresh=False)
            bar.update()
            if log is not None and (i % print_freq == 0 or i == total):
                terms = ", ".join(f"{k} {v:.4f}" for k, v in losses.items())
                log.line(f"epoch {epoch} [{i}/{total}] {terms} | {images / elapsed:.1f} img/s, "
                         f"data wait {100 * data_seconds / elapsed:.0f}%")
    finally:
        bar.close()
        del iterator
    seconds = time.perf_counter() - start
    return EpochStats(total, images, seconds, data_seconds, {k: v / total for k, v in sums.items()})


# ------------------------------------------------------------------------- evaluation


def _has_valid_query(records: list[Record]) -> bool:
    """Some image has a positive under the same-pid-same-camera junk rule."""
    cams: dict[int, set[int]] = {}
    for r in records:
        cams.setdefault(r.pid, set()).add(r.camid)
    return any(len(c) > 1 for c in cams.values())


def _metrics(result: RankResult) -> dict[str, float]:
    return {k: float(v) for k, v in result.as_dict().items() if k != "num_valid"}


def _format(metrics: dict[str, float]) -> str:
    parts = [f"mAP {100 * metrics['mAP']:.1f}"]
    parts += [f"{k} {100 * metrics[k]:.1f}" for k in ("R1", "R5", "R10") if k in metrics]
    return ", ".join(parts)


def evaluate_split(encoder: torch.nn.Module, evaluation: EvalData, which: str, loop: LoopConfig,
                   device: torch.device) -> dict[str, float]:
    """Metrics of `encoder` on "val" (query = gallery = val) or "test"."""
    query, gallery = (evaluation.val, evaluation.val) if which == "val" else (evaluation.query, evaluation.gallery)
    result = evaluate_reid(
        encoder, query, gallery, evaluation.protocol, batch_size=loop.eval_batch_size, device=device,
        dtype=amp_dtype(loop.amp), num_workers=loop.workers, height=evaluation.height, width=evaluation.width,
    ).result
    return _metrics(result)


# ------------------------------------------------------------------------------- fit


@dataclass
class _Selection:
    mode: str  # "val", "test", "last"
    reason: str = ""  # one line: how and why (results.json)
    best_score: float = -1.0
    best_epoch: int = 0


def _selection_mode(loop: LoopConfig, evaluation: EvalData, log: RunLog) -> tuple[str, str]:
    """How the model is selected and why, logged as one line (the why also goes to results.json)."""
    val_ids = len({r.pid for r in evaluation.val})
    if loop.select_on == "test":
        mode, reason = "test", ("best test mAP (the original baseline.py's behaviour; the reported test numbers "
                                "are then optimistic)")
    elif not evaluation.val:
        mode, reason = "last", f"last epoch ({evaluation.val_note or 'no validation identities'})"
    elif val_ids < 2:
        # one identity: every image's matches are all the gallery, so every model scores mAP 100
        mode, reason = "last", (f"last epoch (the validation set holds {val_ids} identity, so its mAP is 100 for "
                                "every model and cannot choose; hold out more identities to select on it)")
    elif not _has_valid_query(evaluation.val):
        mode, reason = "last", ("last epoch (no validation image has a match from another camera, so the "
                                "validation mAP is undefined)")
    else:
        mode, reason = "val", (f"best validation mAP ({val_ids} held-out identities, {len(evaluation.val)} "
                               f"images, protocol {evaluation.protocol})")
    log.line(f"model selection: {reason}")
    return mode, reason


def _check_same_encoder(path: str, stored: Any, current: EncoderConfig) -> None:
    stored_cfg = EncoderConfig.from_checkpoint(stored, path)
    if stored_cfg != current:
        diff = [f"{k}={getattr(stored_cfg, k)!r} (now {getattr(current, k)!r})"
                for k in asdict(current) if getattr(stored_cfg, k) != getattr(current, k)]
        raise StreidError(f"--resume {path}: the checkpoint's model differs ({', '.join(diff)}); "
                          "resume with the flags it was trained with")


# Settings a resumed run may change: how long and where it runs, how data is loaded, what is
# logged. Everything else changes what is optimised, so resuming with another value would
# either be silently ignored (the optimiser state wins) or break (another optimiser class).
RESUMABLE_CHANGES = frozenset({
    "epochs", "eval_step", "workers", "print_freq", "progress", "device", "deterministic", "logs_dir", "resume",
    "data_dir", "dataroot", "checkpoints", "name", "evaluate", "display", "save_step", "pretrained",
    "pretrained_di", "netE_pretrain", "netG_pretrain", "netDi_pretrain", "netDp_pretrain",
    "num_classes", "keypoints",  # filled in from the dataset (the encoder check compares the model)
    "skip_validation",  # how much of the dataset is checked before training
})


def _flag(key: str) -> str:
    return "--" + key.rsplit(".", 1)[-1].replace("_", "-")


def _setting_differences(stored: dict[str, Any], current: dict[str, Any], may_change: frozenset[str],
                         prefix: str = "") -> list[str]:
    diff = []
    for key in sorted(set(stored) & set(current)):  # a setting one streid version lacks cannot be compared
        if key in may_change:
            continue
        a, b = stored.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diff += _setting_differences(a, b, may_change, f"{prefix}{key}.")
        elif a != b and not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and list(a) == list(b)):
            diff.append(f"{_flag(prefix + key)}={a!r} (now {b!r})")
    return diff


def check_resume(loop: LoopConfig, run_config: dict[str, Any], folder_flag: str = "--logs-dir",
                 state: dict[str, Any] | None = None) -> dict[str, Any]:
    """Before any work (nothing is written): `loop.resume` must be a full checkpoint of a run in
    `loop.logs_dir`, trained with the same settings except RESUMABLE_CHANGES. Returns its state."""
    if state is None:
        state = load_checkpoint(loop.resume)
    if "task" not in state or "rng" not in state or "epoch" not in state:
        raise StreidError(f"--resume {loop.resume}: this checkpoint holds only the model (a best-model file); "
                          f"resume from the run's {CHECKPOINT_NAME}")
    home = Path(loop.resume).resolve().parent
    if home != Path(loop.logs_dir).resolve():
        raise StreidError(f"--resume {loop.resume}: the run lives in {home}, not in {loop.logs_dir}; a resumed run "
                          f"continues in its own folder (its best model and logs are there): set {folder_flag} to it")
    stored = state.get("config")
    if isinstance(stored, dict):
        diff = _setting_differences(stored, run_config, RESUMABLE_CHANGES)
        if diff:
            raise StreidError(f"--resume {loop.resume}: the run was trained with other settings ({'; '.join(diff)}); "
                              "resume with the flags it was trained with (only how long and where it runs may "
                              "change), or start a new run in another folder")
    return state


def _remove_stale_temporaries(logs_dir: Path) -> None:
    """A SIGKILL during a checkpoint write leaves its temporary file behind; drop such leftovers."""
    for name in (CHECKPOINT_NAME, BEST_NAME, RESULTS_NAME, CONFIG_NAME):
        for tmp in logs_dir.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)


def fit(task: TrainingTask, train: TrainData, evaluation: EvalData, loop: LoopConfig, run: RunContext,
        encoder_config: EncoderConfig, run_config: dict[str, Any], hooks: Sequence[TrainingHook] = ()) -> FitResult:
    """Train `task` for `loop.epochs` epochs (continuing `loop.resume` if set), evaluate, select,
    checkpoint, and finally evaluate the selected model on the test set.

    run_config: the full configuration (JSON types) for config.json and the checkpoints.
    hooks: called at each point of the run's lifecycle (hooks.py), in this order.
    Raises StreidError on a non-finite loss (one line naming epoch, iteration, loss, the last
    good checkpoint and a hint), after which the checkpoints on disk are those of the last
    good epoch.
    """
    main = run.dist.is_main
    logs_dir = Path(loop.logs_dir)
    last_path, best_path = logs_dir / CHECKPOINT_NAME, logs_dir / BEST_NAME
    if main:
        logs_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(logs_dir)
        if last_path.exists() and not loop.resume:
            raise StreidError(f"{logs_dir} already holds a run ({CHECKPOINT_NAME}); continue it with "
                              f"--resume {last_path}, or choose another --logs-dir")
    hooks = [h for h in hooks if main or not h.main_process_only]
    log = RunLog(logs_dir, enabled=main)
    try:
        return _fit(task, train, evaluation, loop, run, encoder_config, run_config, log, last_path, best_path, hooks)
    finally:
        log.close()


def _fit(task: TrainingTask, train: TrainData, evaluation: EvalData, loop: LoopConfig, run: RunContext,
         encoder_config: EncoderConfig, run_config: dict[str, Any], log: RunLog, last_path: Path,
         best_path: Path, hooks: list[TrainingHook]) -> FitResult:
    main = run.dist.is_main
    state = None
    if loop.resume:  # every check before config.json is rewritten: a refused resume changes nothing
        state = check_resume(loop, run_config)
        _check_same_encoder(loop.resume, state.get("encoder_config"), encoder_config)
    if main:
        write_run_config(loop.logs_dir, run_config, encoder_config=encoder_config.as_dict(),
                         world_size=run.dist.world_size, device=str(run.device))
    selection = _Selection(*_selection_mode(loop, evaluation, log))
    history: list[dict[str, Any]] = []
    last_good = 0  # last epoch whose checkpoint is on disk
    if state is not None:
        task.load_state_dict(state["task"])
        restore_rng_state(state["rng"])
        history = list(state.get("history", []))
        stored = state.get("selection") or {}
        if stored.get("mode") == selection.mode:
            selection.best_score, selection.best_epoch = stored["best_score"], stored["best_epoch"]
        last_good = int(state["epoch"])
        log.line(f"resumed from {loop.resume}: {last_good} epoch(s) done, continuing at epoch {last_good + 1}")

    loop = _guard_bf16(task, train, loop, run, log)
    loader = EpochLoader(train, loop.workers, loop.seed, pin_memory=run.device.type == "cuda")
    iters = len(loader) if loop.max_iters_per_epoch is None else min(len(loader), loop.max_iters_per_epoch)
    log.line(f"training {type(task).__name__} for epochs {last_good + 1}..{loop.epochs}, {iters} iterations per "
             f"epoch, on {run.device} x {run.dist.world_size} process(es), amp {loop.amp}")
    ctx = TrainContext(task, log, iters, main)
    for hook in hooks:
        hook.before_train(ctx)

    for epoch in range(last_good + 1, loop.epochs + 1):
        loader.set_epoch(epoch)
        task.on_epoch_start(epoch)
        for hook in hooks:
            hook.before_epoch(ctx, epoch)
        lrs = task.learning_rates()

        def after_step(iteration: int, losses: dict[str, float], epoch: int = epoch) -> None:
            for hook in hooks:
                hook.after_step(ctx, epoch, iteration, losses)

        try:
            stats = train_epoch(task, loader, epoch, run, max_iters=loop.max_iters_per_epoch, log=log,
                                print_freq=loop.print_freq, progress=loop.progress and main,
                                total_epochs=loop.epochs, step_offset=(epoch - 1) * iters, after_step=after_step)
        except NonFiniteLoss as exc:
            where = f"{last_path} (epoch {last_good})" if last_good else "none (it diverged in the first epoch)"
            rates = ", ".join(f"{k} {v:.3g}" for k, v in lrs.items())
            message = (f"{exc}; training stopped. Last good checkpoint: {where}. Try a lower --lr "
                       f"(learning rates now: {rates}) or check the data")
            log.line(message, echo=False)  # the caller shows the error itself
            raise StreidError(message) from None
        task.on_epoch_end(epoch)

        log.scalars("lr", lrs, epoch)
        log.scalars("epoch", stats.losses, epoch)
        log.scalars("speed", {"images_per_second": stats.images_per_second, "data_wait_fraction": stats.data_fraction}, epoch)
        visuals = task.visuals()
        for name, image in (visuals or {}).items():
            log.image(f"visuals/{name}", image, epoch)
        terms = ", ".join(f"{k} {v:.4f}" for k, v in stats.losses.items())
        log.line(f"epoch {epoch}/{loop.epochs} done in {stats.seconds:.1f} s: {terms} | "
                 f"{stats.images_per_second:.1f} img/s, data wait {100 * stats.data_fraction:.0f}%")

        improved = False
        evaluated: dict[str, float] = {}  # as TensorBoard tags, for the hooks
        if main and (epoch % loop.eval_step == 0 or epoch == loop.epochs):
            split = "val" if selection.mode == "val" else "test"
            metrics = evaluate_split(task.encoder, evaluation, split, loop, run.device)
            history.append({"epoch": epoch, "split": split, **metrics})
            log.scalars(split, metrics, epoch)
            if selection.mode != "last" and metrics["mAP"] > selection.best_score:
                selection.best_score, selection.best_epoch, improved = metrics["mAP"], epoch, True
            note = " (monitoring only)" if selection.mode == "last" else (
                f", best {100 * selection.best_score:.1f} at epoch {selection.best_epoch}" + (" *" if improved else ""))
            log.line(f"epoch {epoch} {split}: {_format(metrics)}{note}")
            evaluated = {f"{split}/{k}": v for k, v in metrics.items()}
        for hook in hooks:  # before the checkpoint: an epoch whose hook failed is redone on resume
            hook.after_epoch(ctx, epoch, evaluated)
        if main:
            state = _checkpoint_state(task, epoch, encoder_config, selection, history, run_config)
            # model_best.pth.tar always holds the selected model (with "last", the latest epoch's).
            # Best first: a crash in between resumes before this epoch and redoes both.
            if improved or selection.mode == "last":
                save_checkpoint(best_path, _best_state(state))
            save_checkpoint(last_path, state)
            log.flush()
        last_good = epoch
        barrier(run.dist)

    result = _final_test(loop, run, evaluation, selection, history, log, last_path, best_path)
    for hook in hooks:
        hook.after_train(ctx, result)
    return result


def _guard_bf16(task: TrainingTask, train: TrainData, loop: LoopConfig, run: RunContext, log: RunLog) -> LoopConfig:
    """bf16 on the CPU only where this CPU's bf16 kernels agree with float32 on the task's own
    networks (numerics.py); otherwise the task, its evaluations and the log run in float32."""
    if loop.amp != "bf16" or run.device.type != "cpu":
        return loop
    check = check_bf16(lambda: task.precision_probe(probe_batch(train)))
    log.line(check.message(type(task).__name__))
    if check.agrees:
        return loop
    task.use_float32()
    return dataclasses.replace(loop, amp="off")


def _checkpoint_state(task: TrainingTask, epoch: int, encoder_config: EncoderConfig, selection: _Selection,
                      history: list[dict[str, Any]], run_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "epoch": epoch,
        "task": task.state_dict(),
        "encoder": task.encoder.state_dict(),
        "encoder_config": encoder_config.as_dict(),
        "rng": capture_rng_state(),
        "selection": asdict(selection),
        "history": history,
        "config": run_config,
    }


def _best_state(state: dict[str, Any]) -> dict[str, Any]:
    """The best model needs no optimiser or RNG state: evaluation and export only read the encoder."""
    return {k: v for k, v in state.items() if k not in ("task", "rng")}


def _final_test(loop: LoopConfig, run: RunContext, evaluation: EvalData, selection: _Selection,
                history: list[dict[str, Any]], log: RunLog, last_path: Path, best_path: Path) -> FitResult:
    """Evaluate the selected model on the test set (main process) and write results.json."""
    chosen = best_path if selection.mode != "last" else last_path
    test: dict[str, float] = {}
    selected_epoch = 0
    if run.dist.is_main:
        selected_epoch = int(load_checkpoint(chosen)["epoch"])
        encoder, (height, width) = load_encoder(chosen, run.device)
        encoder = encoder.to(memory_format=torch.channels_last)
        test = evaluate_split(encoder, evaluation, "test", loop, run.device)
        how = {"val": "best validation mAP", "test": "best test mAP (optimistic)", "last": "last epoch"}[selection.mode]
        log.line(f"test with the selected model (epoch {selected_epoch}, {how}, {chosen.name}): {_format(test)}")
        write_json(Path(loop.logs_dir) / RESULTS_NAME, {
            "selection": selection.mode, "selection_reason": selection.reason, "selected_epoch": selected_epoch,
            "checkpoint": str(chosen),
            "protocol": evaluation.protocol, "test": test, "history": history,
        })
    barrier(run.dist)
    epochs = max([h["epoch"] for h in history], default=0)
    return FitResult(epochs=epochs, selection=selection.mode, selected_epoch=selected_epoch,
                     selected_checkpoint=str(chosen), test=test, history=history)
