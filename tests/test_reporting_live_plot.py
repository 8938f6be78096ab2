"""Live training views: loss and metric curves fed by the loop and by the run's TensorBoard logs,
and ST-ReIDNet's generated-image panels, live and rebuilt from the logs of a reused run."""
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from streid_core.reporting.live_plot import MIN_PANEL_WIDTH, GeneratedImagesView, LiveTrainingPlot, moving_average
from streid_core.reporting.tensorboard_logs import read_images, read_scalars
from streid_core.training.hooks import TrainContext
from streid_core.training.run_logging import RunLog


def _ctx(run_dir, task=None) -> TrainContext:
    return TrainContext(task, RunLog(run_dir, enabled=False), iterations=3)


def test_moving_average_by_hand():
    # window 2: [1], [1, 2], [2, 3], [3, 4] -> 1, 1.5, 2.5, 3.5
    np.testing.assert_allclose(moving_average([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])
    assert len(moving_average([], 5)) == 0


def _log(run_dir, scalars):
    writer = SummaryWriter(str(run_dir / "tensorboard"))
    for tag, step, value in scalars:
        writer.add_scalar(tag, value, step)
    writer.close()


def test_scalars_read_back_sorted_with_the_last_value_of_a_repeated_step(tmp_path):
    _log(tmp_path, [("val/mAP", 2, 0.4), ("val/mAP", 1, 0.2)])
    first = set((tmp_path / "tensorboard").iterdir())
    _log(tmp_path, [("val/mAP", 2, 0.5)])  # a resumed run logs epoch 2 again, in a second events file
    # whose name may sort first: files opened in the same second differ by a counter ("10" < "9")
    (resumed,) = set((tmp_path / "tensorboard").iterdir()) - first
    resumed.rename(resumed.with_name("events.out.tfevents.0000000000.host.0.0"))
    steps, values = read_scalars(tmp_path)["val/mAP"]
    assert steps.tolist() == [1, 2] and values.tolist() == [pytest.approx(0.2), pytest.approx(0.5)]
    assert read_scalars(tmp_path / "missing") == {}


def test_live_plot_collects_losses_and_metrics_from_the_loop_and_earlier_ones_from_the_logs(tmp_path):
    _log(tmp_path, [("test/mAP", 1, 0.3), ("test/R1", 1, 0.4)])  # a resumed run that selects on the test set
    plot, ctx = LiveTrainingPlot(tmp_path, losses=["loss"], refresh_every=2), _ctx(tmp_path)
    plot.before_train(ctx)
    assert plot.split == "test" and plot.metrics["mAP"][1].tolist() == [pytest.approx(0.3)]
    for iteration, value in enumerate((3.0, 2.0, 1.0), start=1):
        plot.after_step(ctx, 2, iteration, {"loss": value, "precision": 0.5})
    assert plot.losses == {"loss": [3.0, 2.0, 1.0]} and plot.redraws == 1  # after iteration 2
    plot.after_epoch(ctx, 2, {"test/mAP": 0.5, "test/R1": 0.6, "test/R5": 0.7})
    assert plot.redraws == 2 and set(plot.metrics) == {"mAP", "R1"}
    assert plot.metrics["mAP"][0].tolist() == [1, 2] and plot.metrics["mAP"][1].tolist() == [pytest.approx(0.3), 0.5]


def test_finish_redraws_the_whole_run_from_its_logs(tmp_path):
    _log(tmp_path, [("train/loss", s, 10.0 / s) for s in (1, 2, 3, 4)] + [("train/precision", 4, 1.0),
                                                                           ("val/mAP", 2, 0.6), ("val/R1", 2, 0.7)])
    plot = LiveTrainingPlot(tmp_path)  # a reused run: nothing seen live
    fig = plot.finish(tmp_path / "curves.png")
    assert plot.steps == [1, 2, 3, 4] and list(plot.losses) == ["loss"]  # precision is not a loss
    assert plot.split == "val" and set(plot.metrics) == {"mAP", "R1"}
    assert Image.open(tmp_path / "curves.png").size[0] > 0 and len(fig.axes) == 2


class _Task:
    def __init__(self, tiles):
        self.tiles = tiles

    def visuals(self):
        return self.tiles


def test_generated_panels_are_written_live_and_rebuilt_from_the_logs(tmp_path):
    tiles = {"ach": torch.rand(3, 64, 32), "ach_pose": torch.rand(1, 64, 32), "ach_fake1": torch.rand(3, 64, 32)}
    live = GeneratedImagesView(tmp_path / "live", prefix="gen", every=2)
    ctx = _ctx(tmp_path, _Task(tiles))
    live.after_epoch(ctx, 1, {})  # not a multiple of `every`
    live.after_epoch(ctx, 2, {})
    assert [p.name for p in live.written] == ["gen002.png"]
    width = Image.open(live.written[0]).size[0]
    assert width >= MIN_PANEL_WIDTH  # a 3 x 32 px panel is enlarged to be seen

    writer = SummaryWriter(str(tmp_path / "run" / "tensorboard"))
    for epoch in (1, 2):
        for name, image in tiles.items():
            writer.add_image(f"visuals/{name}", image, epoch)  # what the training loop logs
    writer.close()
    assert set(read_images(tmp_path / "run", "visuals/")) == {f"visuals/{n}" for n in tiles}
    rebuilt = GeneratedImagesView(tmp_path / "rebuilt", prefix="gen").from_logs(tmp_path / "run")
    assert [p.name for p in rebuilt] == ["gen001.png", "gen002.png"]
    assert Image.open(rebuilt[1]).size == Image.open(live.written[0]).size
