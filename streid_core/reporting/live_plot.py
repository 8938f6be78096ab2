"""Live training plots for notebooks: loss curves and evaluation metrics redrawn in place while
a run trains, and the generator's image panels shown as training goes.

Both are hooks of the training loop (training/hooks.py): pass them to
`train_baseline(config, hooks=[plot])` / `train_streidnet(...)` (or `reuse_or_train`). Losses
arrive with every iteration, evaluation metrics with every evaluated epoch (those of earlier
sessions of a resumed run are read from its TensorBoard scalars); `finish()` redraws the whole
run from its logs, so a reused run looks the same as a live one.

Outside IPython (scripts, tests) nothing is displayed; the figures are still built and saved.
"""
from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
import numpy as np

from ..training.hooks import TrainContext, TrainingHook
from .notebook_output import figure_png, in_notebook
from .tensorboard_logs import read_images, read_scalars

EVAL_SPLITS = ("val", "test")  # the loop logs "val/<metric>", or "test/<metric>" with select_on=test
MIN_PANEL_WIDTH = 640  # pixels: generated-image panels narrower than this are enlarged


class InPlaceImage:
    """One notebook output that is replaced by every `show` (a no-op outside IPython)."""

    def __init__(self) -> None:
        self._handle = None

    def show(self, png: bytes) -> None:
        if not in_notebook():
            return
        from IPython.display import Image, display

        if self._handle is None:
            self._handle = display(Image(data=png), display_id=True)
        else:
            self._handle.update(Image(data=png))


def moving_average(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing mean over `window` values (fewer at the start), same length as `values`."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return v
    cumulative = np.concatenate(([0.0], np.cumsum(v)))
    idx = np.arange(1, len(v) + 1)
    start = np.maximum(idx - window, 0)
    return (cumulative[idx] - cumulative[start]) / (idx - start)


class LiveTrainingPlot(TrainingHook):
    """Losses per iteration (raw, faint, and a moving average) and evaluation metrics per epoch.

    logs_dir: the run's folder (its TensorBoard scalars hold the evaluation results).
    losses: the loss names to draw (None: every one but "precision").
    refresh_every: redraw after this many iterations (and at every epoch boundary).
    """

    def __init__(self, logs_dir: str | os.PathLike, losses: Sequence[str] | None = None,
                 metrics: Sequence[str] = ("mAP", "R1"), title: str = "", refresh_every: int = 5,
                 smoothing: int = 20) -> None:
        self.logs_dir = Path(logs_dir)
        self.loss_names = list(losses) if losses is not None else None
        self.metric_names = list(metrics)
        self.title = title
        self.refresh_every = max(1, refresh_every)
        self.smoothing = max(1, smoothing)
        self.steps: list[int] = []
        self.losses: dict[str, list[float]] = {}
        self.metrics: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.split = ""
        self.redraws = 0
        self._output = InPlaceImage()

    # ------------------------------------------------ hooks

    def before_train(self, ctx: TrainContext) -> None:
        self.refresh_metrics()

    def after_step(self, ctx: TrainContext, epoch: int, iteration: int, losses: dict[str, float]) -> None:
        self.steps.append(len(self.steps) + 1)
        for name, value in losses.items():
            if self._wanted(name):
                self.losses.setdefault(name, []).append(float(value))
        if len(self.steps) % self.refresh_every == 0:
            self.redraw()

    def after_epoch(self, ctx: TrainContext, epoch: int, metrics: dict[str, float]) -> None:
        split, found = self._evaluation(metrics)
        if found:
            self.split = split
        for name, value in found.items():
            epochs, values = self.metrics.get(name, (np.empty(0), np.empty(0)))
            self.metrics[name] = (np.append(epochs, epoch), np.append(values, value))
        self.redraw()

    # ------------------------------------------------ data

    def _wanted(self, name: str) -> bool:
        return name in self.loss_names if self.loss_names is not None else name != "precision"

    def _evaluation(self, logged: dict) -> tuple[str, dict]:
        """The split evaluated (validation, or test when the run selects on test) and the wanted
        metrics of `logged` (keyed by TensorBoard tag) on it."""
        for split in EVAL_SPLITS:
            found = {m: logged[f"{split}/{m}"] for m in self.metric_names if f"{split}/{m}" in logged}
            if found:
                return split, found
        return "", {}

    def refresh_metrics(self) -> None:
        """Evaluation metrics logged so far."""
        split, found = self._evaluation(read_scalars(self.logs_dir))
        if found:
            self.metrics, self.split = found, split

    def load_logs(self) -> None:
        """Replace what was seen live by the run's complete logs (all sessions of a resumed run)."""
        scalars = read_scalars(self.logs_dir, "train/")
        series = {tag.split("/", 1)[1]: data for tag, data in scalars.items() if self._wanted(tag.split("/", 1)[1])}
        if series:
            steps = sorted({int(s) for data in series.values() for s in data[0]})
            self.steps = steps
            position = {s: i for i, s in enumerate(steps)}
            self.losses = {}
            for name, (s, v) in series.items():
                values = np.full(len(steps), np.nan)
                values[[position[int(x)] for x in s]] = v
                self.losses[name] = values.tolist()
        self.refresh_metrics()

    # ------------------------------------------------ drawing

    def figure(self):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(11, 3.6))
        ax_loss, ax_eval = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1]})
        x = np.asarray(self.steps)
        for i, (name, values) in enumerate(self.losses.items()):
            color = f"C{i % 10}"
            ax_loss.plot(x[: len(values)], values, color=color, alpha=0.25, lw=0.7)
            ax_loss.plot(x[: len(values)], moving_average(values, self.smoothing), color=color, lw=1.4, label=name)
        ax_loss.set_xlabel("iteration")
        ax_loss.set_ylabel("loss")
        ax_loss.grid(alpha=0.3)
        if self.losses:
            ax_loss.legend(fontsize=7, ncol=2)
        ax_loss.set_title(f"{self.title} losses ({len(self.steps)} iterations)".strip(), fontsize=10)
        for name, (epochs, values) in self.metrics.items():
            ax_eval.plot(epochs, 100 * values, marker="o", label=name)
        ax_eval.set_xlabel("epoch")
        ax_eval.set_ylabel("%")
        ax_eval.set_ylim(0, 101)
        ax_eval.grid(alpha=0.3)
        split = {"val": "validation", "test": "test"}.get(self.split, "")
        ax_eval.set_title(f"{split} metrics" if self.metrics else "metrics (after the first evaluation)", fontsize=10)
        if self.metrics:
            ax_eval.legend(fontsize=8)
            ax_eval.set_xlim(0.5, max(e.max() for e, _ in self.metrics.values()) + 0.5)
        fig.tight_layout()
        return fig

    def redraw(self) -> None:
        self.redraws += 1
        self._output.show(figure_png(self.figure()))

    def finish(self, save_to: str | os.PathLike | None = None):
        """Redraw from the complete logs, save a PNG (atomically) if asked; returns the Figure."""
        from ..atomic import atomic_file

        self.load_logs()
        fig = self.figure()
        png = figure_png(fig)
        self._output.show(png)
        if save_to is not None:
            with atomic_file(save_to, "wb") as handle:
                handle.write(png)
        return fig


class GeneratedImagesView(TrainingHook):
    """ST-ReIDNet's image panel (anchor, pose, mask, G(p, e), G(p, e+); the same for the
    positive) at the end of every `every`-th epoch: shown as a new notebook output and written
    as `<prefix><epoch:03d>.png` into `save_dir`."""

    def __init__(self, save_dir: str | os.PathLike, prefix: str = "generated_epoch", every: int = 1) -> None:
        self.save_dir = Path(save_dir)
        self.prefix = prefix
        self.every = max(1, every)
        self.written: list[Path] = []

    def after_epoch(self, ctx: TrainContext, epoch: int, metrics: dict[str, float]) -> None:
        if epoch % self.every:
            return
        visuals = ctx.task.visuals()
        if visuals:
            from ..training.display import visuals_grid

            self.save(visuals_grid(visuals).permute(1, 2, 0).numpy(), epoch)

    def save(self, grid: np.ndarray, epoch: int) -> Path:
        """Write (and show) an HxWx3 grid, float in [0, 1] or uint8."""
        from PIL import Image

        from ..atomic import atomic_file

        pixels = grid if grid.dtype == np.uint8 else (np.clip(grid, 0, 1) * 255 + 0.5).astype(np.uint8)
        path = self.save_dir / f"{self.prefix}{epoch:03d}.png"
        image = Image.fromarray(pixels)
        scale = max(1, -(-MIN_PANEL_WIDTH // image.width))  # small training sizes: enlarge (ceil), pixels kept sharp
        buffer = io.BytesIO()
        image.resize((image.width * scale, image.height * scale), Image.NEAREST).save(buffer, format="PNG")
        with atomic_file(path, "wb") as handle:
            handle.write(buffer.getvalue())
        if in_notebook():
            from IPython.display import Image as ShownImage, Markdown, display

            display(Markdown(f"**epoch {epoch}**: anchor, pose, mask, G(p, e), G(p, e+) / positive, pose, mask, "
                             "G(p+, e+), G(p+, e)"), ShownImage(data=buffer.getvalue()))
        self.written.append(path)
        return path

    def from_logs(self, logs_dir: str | os.PathLike) -> list[Path]:
        """Rebuild the panels of a finished (or reused) run from its TensorBoard images."""
        import torch

        from ..training.display import visuals_grid
        from ..training.streidnet import VISUAL_NAMES

        images = read_images(logs_dir, "visuals/")
        epochs = sorted({step for per_step in images.values() for step in per_step})
        for epoch in epochs:
            if epoch % self.every:
                continue
            tiles = {name: torch.tensor(images[f"visuals/{name}"][epoch]).permute(2, 0, 1).float() / 255.0
                     for name in VISUAL_NAMES if epoch in images.get(f"visuals/{name}", {})}
            if tiles:
                self.save(visuals_grid(tiles).permute(1, 2, 0).numpy(), epoch)
        return self.written
