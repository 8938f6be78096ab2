"""The shared training loop: exact resume, evaluation schedule, model selection, NaN guard,
config.json / log.txt / TensorBoard outputs (tiny ResNet-18 runs on the CPU)."""
import json
from dataclasses import asdict
from importlib import metadata

import pytest
import torch
from _make_train_run import single_thread, tiny_config, tiny_openreid

from streid_core.errors import StreidError
from streid_core.training.baseline import BaselineTask, baseline_data, train_baseline
from streid_core.models.loading import load_checkpoint
from streid_core.training.checkpoint import BEST_NAME, CHECKPOINT_NAME
from streid_core.training.engine import fit, start_run
from streid_core.training.task import TrainingTask


_one_thread = pytest.fixture(scope="module", autouse=True)(single_thread)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tiny_openreid(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def three_epoch_run(data_dir, tmp_path_factory):
    """3 epochs, evaluation every 2nd epoch: evaluations after epochs 2 and 3 (the last)."""
    logs = tmp_path_factory.mktemp("run") / "logs"
    result = train_baseline(tiny_config(data_dir, logs, epochs=3, eval_step=2))
    return logs, result


def test_resume_after_two_epochs_equals_four_straight_epochs(data_dir, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train_baseline(tiny_config(data_dir, straight, epochs=4))
    train_baseline(tiny_config(data_dir, split, epochs=2))
    assert load_checkpoint(split / CHECKPOINT_NAME)["epoch"] == 2
    train_baseline(tiny_config(data_dir, split, epochs=4, resume=str(split / CHECKPOINT_NAME)))

    a, b = load_checkpoint(straight / CHECKPOINT_NAME), load_checkpoint(split / CHECKPOINT_NAME)
    assert a["epoch"] == b["epoch"] == 4
    assert a["encoder"].keys() == b["encoder"].keys()
    for key in a["encoder"]:
        assert torch.equal(a["encoder"][key], b["encoder"][key]), key
    # the optimiser moments and the schedule continue too, not only the weights
    for pa, pb in zip(a["task"]["optimizer"]["state"].values(), b["task"]["optimizer"]["state"].values()):
        assert torch.equal(pa["exp_avg"], pb["exp_avg"]) and torch.equal(pa["exp_avg_sq"], pb["exp_avg_sq"])
    assert a["task"]["scheduler"]["last_epoch"] == b["task"]["scheduler"]["last_epoch"] == 4
    assert a["history"] == b["history"]


@pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler\.step\(\)`")  # no training steps here
def test_step_schedule_applies_backbone_multiplier_and_decays_every_step_size(data_dir, tmp_path):
    config = tiny_config(data_dir, tmp_path, lr=0.01, step_size=2, opt_name="SGD")
    run = start_run(config.loop_config())
    encoder = config.encoder_config(num_classes=5).build()
    task = BaselineTask(encoder, config, run)
    assert isinstance(task, TrainingTask)
    groups = {g["name"]: {id(p) for p in g["params"]} for g in task.optimizer.param_groups}
    assert id(encoder.classifier.weight) in groups["head"]
    assert id(encoder.trunk.conv1.weight) in groups["backbone"]
    seen = []
    for epoch in range(1, 6):
        task.on_epoch_start(epoch)
        seen.append(task.learning_rates())
        task.on_epoch_end(epoch)
    # lr * 0.1^((epoch - 1) // 2), backbone x 0.1: epochs 1-2 -> 1e-2/1e-3, 3-4 -> 1e-3/1e-4, 5 -> 1e-4/1e-5
    expected_head = [1e-2, 1e-2, 1e-3, 1e-3, 1e-4]
    assert [s["head"] for s in seen] == pytest.approx(expected_head, rel=1e-12)
    assert [s["backbone"] for s in seen] == pytest.approx([h / 10 for h in expected_head], rel=1e-12)


def test_evaluates_every_eval_step_and_after_the_last_epoch(three_epoch_run):
    logs, result = three_epoch_run
    assert [h["epoch"] for h in result.history] == [2, 3]
    assert {h["split"] for h in result.history} == {"val"}


def test_selects_the_best_validation_epoch_and_reports_its_test_metrics(three_epoch_run):
    logs, result = three_epoch_run
    best = max(result.history, key=lambda h: h["mAP"])  # first maximum wins ties
    assert result.selection == "val" and result.selected_epoch == best["epoch"]
    assert load_checkpoint(logs / BEST_NAME)["epoch"] == best["epoch"]
    saved = json.loads((logs / "results.json").read_text())
    assert saved["selected_epoch"] == best["epoch"] and saved["test"] == result.test
    assert 0.0 <= result.test["mAP"] <= 1.0


def test_config_json_log_and_tensorboard_are_written(three_epoch_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logs, _ = three_epoch_run
    config = json.loads((logs / "config.json").read_text())
    assert config["config"]["arch"] == "resnet18" and config["config"]["lr"] == 1e-3
    assert config["encoder_config"]["height"] == 32
    assert config["packages"]["torch"] == metadata.version("torch")
    assert config["git"] is None or len(config["git"]["commit"]) == 40  # None outside a git checkout
    log = (logs / "log.txt").read_text()
    assert "epoch 3/3 done" in log and "model selection: best validation mAP" in log
    events = EventAccumulator(str(logs / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/triplet", "train/classification", "lr/backbone", "lr/head", "val/mAP",
            "speed/images_per_second"} <= tags
    assert [e.step for e in events.Scalars("val/mAP")] == [2, 3]
    assert len(events.Scalars("train/loss")) == 3 * 2  # every iteration of 3 epochs x 2


def test_combine_trainval_has_no_held_out_ids_so_the_last_epoch_is_selected(data_dir, tmp_path):
    result = train_baseline(tiny_config(data_dir, tmp_path, epochs=2, combine_trainval=True))
    assert result.selection == "last" and result.selected_epoch == 2
    assert result.selected_checkpoint.endswith(CHECKPOINT_NAME)
    assert {h["split"] for h in result.history} == {"test"}  # monitored, not used for selection
    assert "model selection: last epoch (--combine-trainval" in (tmp_path / "log.txt").read_text()


def test_select_on_test_is_the_original_behaviour_and_says_so(data_dir, tmp_path):
    result = train_baseline(tiny_config(data_dir, tmp_path, epochs=2, select_on="test"))
    assert result.selection == "test"
    assert {h["split"] for h in result.history} == {"test"}
    best = max(result.history, key=lambda h: h["mAP"])
    assert result.selected_epoch == best["epoch"] and result.test["mAP"] == pytest.approx(best["mAP"])
    assert "original baseline.py's behaviour" in (tmp_path / "log.txt").read_text()


def test_refuses_to_overwrite_a_run_without_resume(data_dir, tmp_path):
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"previous run")
    with pytest.raises(StreidError, match="--resume"):
        train_baseline(tiny_config(data_dir, tmp_path))
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == b"previous run"


class _DivergesInEpochTwo(BaselineTask):
    """A real baseline task whose triplet loss turns NaN at the first iteration of epoch 2."""

    epoch = 0

    def on_epoch_start(self, epoch):
        super().on_epoch_start(epoch)
        self.epoch = epoch

    def train_step(self, batch):
        losses = super().train_step(batch)
        if self.epoch == 2:
            losses["triplet"] = losses["loss"] = float("nan")
        return losses


def test_non_finite_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(data_dir, tmp_path):
    config = tiny_config(data_dir, tmp_path, epochs=3)
    loop = config.loop_config()
    run = start_run(loop)
    train, evaluation, num_classes = baseline_data(config, run)
    encoder_config = config.encoder_config(num_classes)
    task = _DivergesInEpochTwo(encoder_config.build(), config, run)
    with pytest.raises(StreidError) as caught:
        fit(task, train, evaluation, loop, run, encoder_config, asdict(config))
    message = str(caught.value)
    assert "\n" not in message
    assert "epoch 2, iteration 1: loss 'triplet' is nan" in message
    assert f"{tmp_path / CHECKPOINT_NAME} (epoch 1)" in message and "--lr" in message
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["epoch"] == 1
    assert message in (tmp_path / "log.txt").read_text()
