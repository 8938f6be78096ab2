"""The training loop's hook lifecycle: fit calls every hook at each point, in order, with the
loop's values; a hook that raises stops the run with its own error (tiny ResNet-18 runs)."""
import math

import pytest
from _make_train_run import single_thread, tiny_config, tiny_openreid

from streid_core.models.loading import load_checkpoint
from streid_core.training.baseline import BaselineTask, train_baseline
from streid_core.training.checkpoint import CHECKPOINT_NAME
from streid_core.training.engine import RESULTS_NAME
from streid_core.training.hooks import TrainingHook
from streid_core.training.run_logging import LOG_NAME

_one_thread = pytest.fixture(scope="module", autouse=True)(single_thread)


class Recorder(TrainingHook):
    """Records every call; `name` tells two recorders apart."""

    def __init__(self, name, events):
        self.name, self.events, self.contexts = name, events, set()

    def before_train(self, ctx):
        self.contexts.add(id(ctx))
        ctx.log.line(f"{self.name}: before_train")  # the run's own log.txt
        self.events.append((self.name, "before_train", type(ctx.task).__name__, ctx.logs_dir, ctx.iterations,
                            ctx.is_main))

    def before_epoch(self, ctx, epoch):
        self.contexts.add(id(ctx))
        self.events.append((self.name, "before_epoch", epoch))

    def after_step(self, ctx, epoch, iteration, losses):
        self.contexts.add(id(ctx))
        assert all(math.isfinite(v) for v in losses.values())
        self.events.append((self.name, "after_step", epoch, iteration, sorted(losses)))

    def after_epoch(self, ctx, epoch, metrics):
        self.contexts.add(id(ctx))
        self.events.append((self.name, "after_epoch", epoch, metrics))

    def after_train(self, ctx, result):
        self.contexts.add(id(ctx))
        self.events.append((self.name, "after_train", result))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tiny_openreid(tmp_path_factory.mktemp("data"))


def test_fit_calls_the_hooks_in_order_with_the_loops_values(data_dir, tmp_path):
    events = []
    first, second = Recorder("a", events), Recorder("b", events)
    # 2 epochs of 2 iterations, evaluated after epoch 2 only
    result = train_baseline(tiny_config(data_dir, tmp_path, epochs=2, eval_step=2), hooks=[first, second])

    losses = ["classification", "loss", "precision", "triplet"]
    evaluated = {f"{h['split']}/{k}": v for h in result.history for k, v in h.items() if k not in ("epoch", "split")}
    assert result.history[0]["split"] == "val" and "val/mAP" in evaluated
    expected = [("before_train", BaselineTask.__name__, tmp_path, 2, True)]
    for epoch in (1, 2):
        expected += [("before_epoch", epoch), ("after_step", epoch, 1, losses), ("after_step", epoch, 2, losses),
                     ("after_epoch", epoch, {} if epoch == 1 else evaluated)]
    expected.append(("after_train", result))
    assert events == [(name, *event) for event in expected for name in ("a", "b")]  # each point: every hook, in order
    assert len(first.contexts) == len(second.contexts) == 1  # one context for the whole run
    assert (tmp_path / LOG_NAME).read_text().count(": before_train") == 2


class Fails(TrainingHook):
    def __init__(self, epoch):
        self.epoch = epoch

    def after_epoch(self, ctx, epoch, metrics):
        if epoch == self.epoch:
            raise RuntimeError(f"hook failed after epoch {epoch}")


def test_a_hook_that_raises_stops_the_run_with_its_error(data_dir, tmp_path):
    events = []
    with pytest.raises(RuntimeError, match="hook failed after epoch 2"):
        train_baseline(tiny_config(data_dir, tmp_path, epochs=3), hooks=[Fails(epoch=2), Recorder("later", events)])
    assert [e[1:3] for e in events if e[1] != "after_step"] == [
        ("before_train", "BaselineTask"), ("before_epoch", 1), ("after_epoch", 1), ("before_epoch", 2)]  # nothing later
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["epoch"] == 1  # epoch 2 is redone on resume
    assert not (tmp_path / RESULTS_NAME).exists()
