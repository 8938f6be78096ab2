"""Live training display of ST-ReIDNet (train.py's --display-* flags, docs/original-system.md §9).

Every --display-freq samples (triplets, as the original counts them) while --display-id > 0:
- the 2x5 panel of the last batch (anchor, its pose, its mask, its self-reconstruction, the
  identity swap; the same for the positive) goes to the run's TensorBoard (tag display/visuals)
  and, unless --no_html, to `<run>/web/index.html` with PNGs under
  `web/images/epochNNN_<label>.png` (newest epoch first, as the original's page);
- the loss history of every term is plotted (visdom window --display-id and, with the HTML
  page, `web/images/losses.png`; TensorBoard has every iteration's losses from the loop).
visdom is used when it is importable AND a server answers on 127.0.0.1:--display-port;
otherwise the display warns once and carries on without it.
"""
from __future__ import annotations

import html
import re
import socket
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_file
from .hooks import TrainContext, TrainingHook

WEB_DIR = "web"
IMAGES_DIR = "images"
GRID_TAG = "display/visuals"
LOSS_PLOT = "losses.png"
DEFAULT_COLUMNS = 5  # the original's README setting: 2 rows of 5


@dataclass
class DisplayOptions:
    """train.py's display flags (defaults as the original)."""

    name: str = "my_session"
    display_id: int = 1
    display_port: int = 6006
    display_winsize: int = 256
    display_freq: int = 10
    single_pane_ncols: int = 0
    update_html_freq: int = 100
    no_html: bool = False


def port_answers(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def connect_visdom(port: int) -> tuple[Any | None, str]:
    """A visdom client for 127.0.0.1:port, or None and the reason it is unavailable."""
    try:
        import visdom
    except ImportError:
        return None, "visdom is not installed (pip install visdom, then python -m visdom.server -port PORT)"
    if not port_answers(port):
        return None, f"no visdom server answers on 127.0.0.1:{port} (start one: python -m visdom.server -port {port})"
    try:
        return visdom.Visdom(server="http://127.0.0.1", port=port, raise_exceptions=True), ""
    except Exception as exc:  # visdom raises its own connection errors; any of them means "not usable"
        return None, f"visdom on 127.0.0.1:{port} refused the connection ({type(exc).__name__})"


def as_rgb(image: torch.Tensor) -> torch.Tensor:
    """CxHxW in [0, 1] -> 3xHxW (grey maps repeated), float32 on the CPU."""
    image = image.detach().float().cpu().clamp(0.0, 1.0)
    return image.expand(3, -1, -1) if image.shape[0] == 1 else image


def visuals_grid(visuals: dict[str, torch.Tensor], columns: int = DEFAULT_COLUMNS, padding: int = 2) -> torch.Tensor:
    """The tiles in one 3xHxW image, `columns` per row, white padding between them."""
    from torchvision.utils import make_grid

    return make_grid([as_rgb(v) for v in visuals.values()], nrow=columns, padding=padding, pad_value=1.0)


def save_png(image: torch.Tensor, path: Path) -> None:
    """CxHxW in [0, 1] -> PNG, written atomically."""
    from PIL import Image

    pixels = (as_rgb(image).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    with atomic_file(path, "wb") as handle:
        Image.fromarray(pixels).save(handle, format="PNG")


@dataclass
class LossHistory:
    """Loss values at each display, x = epochs done (epoch - 1 + fraction of the epoch)."""

    x: list[float] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, x: float, losses: dict[str, float]) -> None:
        self.x.append(x)
        for name, value in losses.items():
            self.values.setdefault(name, [float("nan")] * (len(self.x) - 1)).append(value)
        for name, series in self.values.items():
            if len(series) < len(self.x):
                series.append(float("nan"))


class TrainingDisplay(TrainingHook):
    """Shows ST-ReIDNet's visuals and losses while it trains (see the module docstring), in the
    run's folder. triplets_per_iteration: the batch size, which --display-freq counts in."""

    def __init__(self, options: DisplayOptions, triplets_per_iteration: int) -> None:
        self.options = options
        self.enabled = options.display_id > 0
        self.triplets_per_iteration = triplets_per_iteration
        self.samples = 0
        self.history = LossHistory()
        self.html_epochs: list[int] = []
        self.html_bucket = 0
        self.labels: list[str] = []
        self.visdom = None
        if self.enabled:
            self.visdom, reason = connect_visdom(options.display_port)
            if self.visdom is None:
                self._warn(reason)

    def _warn(self, reason: str) -> None:
        where = "TensorBoard" if self.options.no_html else "TensorBoard and web/index.html"
        warnings.warn(f"--display-id {self.options.display_id}: {reason}; training visuals go to {where} only",
                      RuntimeWarning, stacklevel=3)

    # -------------------------------------------------------- hooks

    def before_train(self, ctx: TrainContext) -> None:
        self.web_dir = ctx.logs_dir / WEB_DIR
        # a resumed run keeps the earlier epochs on its page
        self.html_epochs = sorted({int(m.group(1)) for p in (self.web_dir / IMAGES_DIR).glob("epoch*_*.png")
                                   if (m := re.match(r"epoch(\d+)_", p.name))})

    def after_step(self, ctx: TrainContext, epoch: int, iteration: int, losses: dict[str, float]) -> None:
        if not self.enabled:
            return
        before = self.samples
        self.samples += self.triplets_per_iteration
        if self.samples // self.options.display_freq == before // self.options.display_freq:
            return
        bucket = self.samples // self.options.update_html_freq
        save_html = bucket > self.html_bucket
        self.html_bucket = max(bucket, self.html_bucket)
        self.show(ctx, epoch, iteration, losses, save_html)

    # -------------------------------------------------------- output

    def show(self, ctx: TrainContext, epoch: int, iteration: int, losses: dict[str, float], save_html: bool) -> None:
        """One display event: grid to TensorBoard (and visdom), losses recorded and plotted,
        PNGs and the HTML page rewritten when `save_html` (and HTML is on)."""
        visuals = ctx.task.visuals()
        self.history.add(epoch - 1 + iteration / ctx.iterations, {k: v for k, v in losses.items() if k != "loss"})
        columns = self.options.single_pane_ncols or DEFAULT_COLUMNS
        if visuals:
            self.labels = list(visuals)
            ctx.log.image(GRID_TAG, visuals_grid(visuals, columns), self.samples)
        if self.visdom is not None:
            self._send_visdom(visuals or {})
        if save_html and not self.options.no_html and visuals:
            self._write_html(visuals, epoch)

    def _send_visdom(self, visuals: dict[str, torch.Tensor]) -> None:
        opts, vis = self.options, self.visdom
        try:
            if visuals and opts.single_pane_ncols > 0:
                tiles = np.stack([as_rgb(v).numpy() for v in visuals.values()])
                vis.images(tiles, nrow=opts.single_pane_ncols, win=opts.display_id + 1, padding=2,
                           opts={"title": f"{opts.name} images"})
                rows = "".join(f"<td>{html.escape(label)}</td>" for label in visuals)
                vis.text(f"<table><tr>{rows}</tr></table>", win=opts.display_id + 2,
                         opts={"title": f"{opts.name} labels"})
            else:
                for i, (label, image) in enumerate(visuals.items(), start=1):
                    vis.image(as_rgb(image).numpy(), win=opts.display_id + i, opts={"title": label})
            names = list(self.history.values)
            xs = np.array(self.history.x)
            ys = np.array([self.history.values[n] for n in names]).T
            vis.line(X=np.stack([xs] * len(names), 1), Y=ys, win=opts.display_id,
                     opts={"title": f"{opts.name} loss over time", "legend": names, "xlabel": "epoch", "ylabel": "loss"})
        except Exception as exc:  # a server that went away must not stop training
            self.visdom = None
            self._warn(f"visdom stopped answering ({type(exc).__name__})")

    def _write_html(self, visuals: dict[str, torch.Tensor], epoch: int) -> None:
        images = self.web_dir / IMAGES_DIR
        for label, image in visuals.items():
            save_png(image, images / f"epoch{epoch:03d}_{label}.png")
        if epoch not in self.html_epochs:
            self.html_epochs.append(epoch)
        self._plot_losses(images / LOSS_PLOT)
        with atomic_file(self.web_dir / "index.html", "w", encoding="utf-8") as handle:
            handle.write(self._html())

    def _plot_losses(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure

        fig = Figure(figsize=(8, 4), dpi=100)
        ax = fig.add_subplot()
        for name, series in self.history.values.items():
            ax.plot(self.history.x, series, label=name, marker="." if len(series) < 3 else None)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title(f"{self.options.name} loss over time")
        ax.legend(fontsize="small", ncol=3)
        fig.tight_layout()
        with atomic_file(path, "wb") as handle:
            fig.savefig(handle, format="png")

    def _html(self) -> str:
        name = html.escape(self.options.name)
        width = self.options.display_winsize
        columns = self.options.single_pane_ncols or DEFAULT_COLUMNS
        parts = [
            "<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
            f"<title>{name}</title>", "<meta http-equiv='refresh' content='60'>", "</head><body>",
            f"<h2>{name}</h2>",
            f"<p>{self.samples} samples seen. Each row: anchor, its pose, its mask, G(anchor pose, anchor "
            "appearance), G(anchor pose, positive appearance); then the same for the positive.</p>",
            f"<h3>losses</h3><img src='{IMAGES_DIR}/{LOSS_PLOT}' style='max-width:100%'>",
        ]
        for epoch in sorted(self.html_epochs, reverse=True):
            parts.append(f"<h3>epoch [{epoch}]</h3><table>")
            for start in range(0, len(self.labels), columns):
                cells = []
                for label in self.labels[start: start + columns]:
                    src = f"{IMAGES_DIR}/epoch{epoch:03d}_{html.escape(label)}.png"
                    cells.append(f"<td style='text-align:center'><a href='{src}'><img src='{src}' "
                                 f"style='width:{width}px;image-rendering:pixelated'></a><br>{html.escape(label)}</td>")
                parts.append("<tr>" + "".join(cells) + "</tr>")
            parts.append("</table>")
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"
