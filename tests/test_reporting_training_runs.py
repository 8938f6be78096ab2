"""Training runs as the notebooks drive them: trained with hooks, a run with the same settings is reused, an interrupted one resumed, other settings refused, and a trained
encoder's trunk can start another model."""
import json
from dataclasses import replace

import pytest
import torch
from _make_train_run import single_thread, tiny_config, tiny_openreid

from streid_core.errors import StreidError
from streid_core.models.reid import ReIDEncoder
from streid_core.reporting.training_runs import (encoder_last_stride, encoder_trunk_weights, finished_run, prepare_run_dir,
                                                 resolve_checkpoint, reuse_or_train)
from streid_core.models.loading import load_checkpoint
from streid_core.training.baseline import train_baseline
from streid_core.training.hooks import TrainingHook

_one_thread = pytest.fixture(scope="module", autouse=True)(single_thread)


class Recorder(TrainingHook):
    def __init__(self):
        self.events = []

    def before_epoch(self, ctx, epoch):
        self.events.append(("start", epoch))

    def after_step(self, ctx, epoch, iteration, losses):
        self.events.append(("step", iteration, sorted(losses)))

    def after_epoch(self, ctx, epoch, metrics):
        self.events.append(("end", epoch))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    config = tiny_config(tiny_openreid(root / "data"), root / "logs")  # 2 epochs of 2 iterations, 4 triplets
    recorder = Recorder()
    return config, reuse_or_train(train_baseline, config, hooks=[recorder]), recorder


def test_a_new_run_trains_with_the_hooks(trained):
    config, run, recorder = trained
    losses = ["classification", "loss", "precision", "triplet"]
    steps = [("step", 1, losses), ("step", 2, losses)]
    assert recorder.events == [("start", 1), *steps, ("end", 1), ("start", 2), *steps, ("end", 2)]
    assert not run.reused and run.best_checkpoint.is_file() and run.last_checkpoint.is_file()
    assert [h["epoch"] for h in run.history] == [1, 2] and set(run.test) >= {"R1", "mAP"}


def test_same_settings_reuse_the_finished_run_without_training(trained):
    config, run, _ = trained
    recorder = Recorder()
    again = reuse_or_train(train_baseline, replace(config, workers=1, print_freq=7), hooks=[recorder])  # neither changes results
    assert again.reused and recorder.events == [] and again.results == run.results
    assert finished_run(config.logs_dir).results == run.results
    assert resolve_checkpoint(config.logs_dir) == run.best_checkpoint


def test_other_settings_are_refused_with_the_difference_named(trained):
    config, _, _ = trained
    with pytest.raises(StreidError, match=r"other settings \(lr=0.001 \(now 0.002\)"):
        reuse_or_train(train_baseline, replace(config, lr=2e-3))


def test_an_interrupted_run_is_resumed_and_reuse_false_starts_over(tmp_path):
    config = tiny_config(tiny_openreid(tmp_path / "data"), tmp_path / "logs", epochs=1)
    first = reuse_or_train(train_baseline, config)
    (tmp_path / "logs" / "results.json").unlink()  # as if killed before the final test
    recorder = Recorder()
    resumed = reuse_or_train(train_baseline, config, hooks=[recorder])
    assert not resumed.reused and recorder.events == []  # nothing left to train, only the final test
    assert resumed.test == first.test
    assert "resumed from" in (tmp_path / "logs" / "log.txt").read_text()
    restarted = reuse_or_train(train_baseline, config, hooks=[recorder], reuse=False)
    assert not restarted.reused and ("end", 1) in recorder.events
    assert (tmp_path / "logs" / "log.txt").read_text().count("training BaselineTask") == 1  # a new log


def test_start_over_refuses_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(StreidError, match="not a streid run folder"):
        prepare_run_dir(tmp_path, {}, reuse=False)
    assert (tmp_path / "notes.txt").exists()


def test_encoder_trunk_starts_a_new_encoder_with_the_trained_weights(trained, tmp_path):
    _, run, _ = trained
    path = encoder_trunk_weights(run.logs_dir, tmp_path / "trunk.pth")  # a run folder: its selected checkpoint
    encoder = ReIDEncoder("resnet18", num_classes=3, pretrained=str(path))
    trained_state = load_checkpoint(run.best_checkpoint)["encoder"]
    for key, value in encoder.trunk.state_dict().items():
        assert torch.equal(value, trained_state[f"trunk.{key}"]), key
    assert json.loads((run.logs_dir / "results.json").read_text())["checkpoint"] == str(run.best_checkpoint)


def test_the_trunk_comes_with_the_stride_it_was_trained_at(trained, tmp_path):
    _, run, _ = trained
    stride = load_checkpoint(run.best_checkpoint)["encoder_config"]["last_stride"]
    assert encoder_last_stride(run.logs_dir) == encoder_last_stride(run.best_checkpoint) == stride
    other = tmp_path / "no_config.pth.tar"
    state = load_checkpoint(run.best_checkpoint)
    del state["encoder_config"]
    torch.save(state, other)
    with pytest.raises(StreidError, match="records no last stride"):
        encoder_last_stride(other)


def test_streidnet_run_shows_generator_panels_live_and_again_when_reused(tmp_path):
    from streid_core.data.synth import generate
    from streid_core.reporting.default_runs import smoke_streidnet_config
    from streid_core.reporting.live_plot import GeneratedImagesView
    from streid_core.reporting.notebook_data import SYNTH_PRESETS
    from streid_core.training.streidnet_run import train_streidnet

    generate(tmp_path / "synthdance", SYNTH_PRESETS["smoke"])
    config = smoke_streidnet_config(tmp_path, "synthdance", tmp_path / "runs" / "streidnet")
    config = replace(config, batch_size=2, max_iters_per_epoch=1)
    live, recorder = GeneratedImagesView(tmp_path / "live"), Recorder()
    run = reuse_or_train(train_streidnet, config, hooks=[live, recorder])
    assert recorder.events[0] == ("start", 1) and recorder.events[-1] == ("end", 1)
    assert recorder.events[1][:2] == ("step", 1) and {"E_t", "G_r", "D_p"} <= set(recorder.events[1][2])
    assert [p.name for p in live.written] == ["generated_epoch001.png"]
    again = reuse_or_train(train_streidnet, config)
    assert again.reused and again.results == run.results
    rebuilt = GeneratedImagesView(tmp_path / "rebuilt").from_logs(again.logs_dir)
    assert [p.name for p in rebuilt] == ["generated_epoch001.png"]
