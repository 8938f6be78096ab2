"""The live display of `streid train`: when it fires, what it writes (TensorBoard grid, HTML page
with PNGs, loss plot) and how it falls back when visdom is missing or not running."""
import socket
import sys
import types
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from streid_core.training.display import GRID_TAG, DisplayOptions, TrainingDisplay
from streid_core.training.hooks import TrainContext
from streid_core.training.run_logging import RunLog

LABELS = ["ach", "ach_pose", "ach_mask", "ach_fake1", "ach_fake2", "pos", "pos_pose", "pos_mask", "pos_fake1", "pos_fake2"]
H, W = 16, 8


class _Panel:
    """Stands in for the task: the display only asks it for visuals(). Tile i is filled with
    the grey level i / 10 (three channels, or one for pose and mask tiles)."""

    def __init__(self) -> None:
        self.calls = 0

    def visuals(self):
        self.calls += 1
        return {name: torch.full((1 if name.endswith(("pose", "mask")) else 3, H, W), i / 10)
                for i, name in enumerate(LABELS)}


LOSSES = {"E_t": 1.0, "E_c": 2.0, "E": 3.0, "G_r": 0.5, "G_gan_Di": 0.7, "G_gan_Dp": 0.7, "G": 5.0,
          "D_i": 0.69, "D_p": 0.8, "loss": 4.5}


@pytest.fixture
def no_visdom(monkeypatch):
    monkeypatch.setitem(sys.modules, "visdom", None)  # import visdom -> ImportError


def _grid_steps(run_dir) -> list[int]:
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    return [e.step for e in events.Images(GRID_TAG)] if GRID_TAG in events.Tags()["images"] else []


def _train(display: TrainingDisplay, run_dir, panel: _Panel, epochs: int, iterations: int, first_epoch: int = 1) -> None:
    """The loop's calls of the display's hooks, the run's log written to `run_dir`."""
    log = RunLog(run_dir)
    ctx = TrainContext(panel, log, iterations)
    display.before_train(ctx)
    for epoch in range(first_epoch, first_epoch + epochs):
        for iteration in range(1, iterations + 1):
            display.after_step(ctx, epoch, iteration, LOSSES)
    log.close()


def test_display_every_freq_samples_writes_tensorboard_html_and_pngs(tmp_path, no_visdom):
    # 2 epochs of 5 iterations x 4 triplets: totals 4 8 12 16 20 | 24 28 32 36 40. Display every 10
    # samples = whenever a multiple of 10 is reached or crossed: at 12, 20, 32, 40. The HTML
    # (every 20 samples, at a display) is written at 20 (end of epoch 1) and 40 (end of epoch 2).
    options = DisplayOptions(name="run", display_id=1, display_freq=10, update_html_freq=20, display_winsize=96)
    with pytest.warns(RuntimeWarning, match="visdom is not installed") as caught:
        display = TrainingDisplay(options, triplets_per_iteration=4)
        panel = _Panel()
        _train(display, tmp_path, panel, epochs=2, iterations=5)
    assert len([w for w in caught if issubclass(w.category, RuntimeWarning)]) == 1
    assert panel.calls == 4
    assert _grid_steps(tmp_path) == [12, 20, 32, 40]

    web = tmp_path / "web"
    page = (web / "index.html").read_text(encoding="utf-8")
    for epoch in (1, 2):
        for i, label in enumerate(LABELS):
            png = web / "images" / f"epoch{epoch:03d}_{label}.png"
            assert f"images/epoch{epoch:03d}_{label}.png" in page
            pixels = np.asarray(Image.open(png))
            assert pixels.shape == (H, W, 3)
            assert np.all(pixels == int(255 * i / 10 + 0.5))  # tile i is grey i/10, rounded
    assert page.index("epoch [2]") < page.index("epoch [1]")  # newest first, as the original
    assert "width:96px" in page
    assert (web / "images" / "losses.png").stat().st_size > 0
    assert not list(web.rglob("*.tmp"))  # every file went through an atomic rename
    # loss history: one point per display, x = epochs done: 12/20, 20/20, 1 + 12/20, 1 + 20/20
    assert display.history.x == pytest.approx([0.6, 1.0, 1.6, 2.0])
    assert set(display.history.values) == set(LOSSES) - {"loss"}


def test_no_html_keeps_tensorboard_only_and_display_id_0_shows_nothing(tmp_path, no_visdom):
    with pytest.warns(RuntimeWarning):
        display = TrainingDisplay(DisplayOptions(display_freq=4, update_html_freq=4, no_html=True), 4)
    _train(display, tmp_path / "a", _Panel(), epochs=1, iterations=2)
    assert _grid_steps(tmp_path / "a") == [4, 8]
    assert not (tmp_path / "a" / "web").exists()

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # display off: not even the visdom warning
        display = TrainingDisplay(DisplayOptions(display_id=0, display_freq=1), 4)
        panel = _Panel()
        _train(display, tmp_path / "b", panel, epochs=1, iterations=2)
    assert panel.calls == 0 and _grid_steps(tmp_path / "b") == [] and not (tmp_path / "b" / "web").exists()


class _FakeVisdomClient:
    def __init__(self, server, port, raise_exceptions):
        self.calls = []

    def __getattr__(self, method):
        return lambda *args, **kwargs: self.calls.append((method, args, kwargs))


@pytest.fixture
def fake_visdom(monkeypatch):
    module = types.ModuleType("visdom")
    module.Visdom = _FakeVisdomClient
    monkeypatch.setitem(sys.modules, "visdom", module)


def test_visdom_is_used_when_importable_and_a_server_answers(tmp_path, fake_visdom):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            options = DisplayOptions(name="run", display_id=3, display_port=port, display_freq=4, single_pane_ncols=5)
            display = TrainingDisplay(options, triplets_per_iteration=4)
    _train(display, tmp_path, _Panel(), epochs=1, iterations=2)
    calls = display.visdom.calls
    images = [c for c in calls if c[0] == "images"]
    assert len(images) == 2
    tiles = images[0][1][0]
    assert tiles.shape == (10, 3, H, W) and images[0][2]["nrow"] == 5 and images[0][2]["win"] == 4
    lines = [c for c in calls if c[0] == "line"]
    assert lines[-1][2]["win"] == 3
    assert lines[-1][2]["opts"]["legend"] == [k for k in LOSSES if k != "loss"]
    assert lines[-1][2]["Y"].shape == (2, len(LOSSES) - 1)
    assert _grid_steps(tmp_path) == [4, 8]  # TensorBoard gets the grid as well


def test_visdom_installed_but_no_server_warns_once(tmp_path, fake_visdom):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.warns(RuntimeWarning, match=f"no visdom server answers on 127.0.0.1:{port}") as caught:
        display = TrainingDisplay(DisplayOptions(display_port=port, display_freq=4), 4)
        _train(display, tmp_path, _Panel(), epochs=1, iterations=3)
    assert len(caught) == 1 and display.visdom is None
    assert _grid_steps(tmp_path) == [4, 8, 12]


def test_a_resumed_run_keeps_earlier_epochs_on_the_page(tmp_path, no_visdom):
    options = DisplayOptions(display_freq=4, update_html_freq=4)
    with pytest.warns(RuntimeWarning):
        first = TrainingDisplay(options, 4)
    _train(first, tmp_path, _Panel(), epochs=1, iterations=2)
    with pytest.warns(RuntimeWarning):
        resumed = TrainingDisplay(options, 4)
    _train(resumed, tmp_path, _Panel(), epochs=1, iterations=1, first_epoch=2)
    page = (tmp_path / "web" / "index.html").read_text(encoding="utf-8")
    assert "epoch [2]" in page and "epoch [1]" in page
