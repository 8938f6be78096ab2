"""Checkpoint files: RNG states survive weights_only loading, writes are atomic, damaged or
foreign files give one-line errors, and load_encoder rebuilds the exact inference encoder."""
import pickle
import random

import numpy as np
import pytest
import torch

from streid_core.errors import StreidError
from streid_core.models.loading import FORMAT, VERSION, EncoderConfig, load_checkpoint, load_encoder
from streid_core.training.checkpoint import capture_rng_state, restore_rng_state, save_checkpoint


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    random.seed(5)
    np.random.seed(6)
    torch.manual_seed(7)
    _draws()
    save_checkpoint(tmp_path / "c.pt", {"format": FORMAT, "version": VERSION, "rng": capture_rng_state()})
    expected = [_draws() for _ in range(3)]
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    restore_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert [_draws() for _ in range(3)] == expected


class _RefusesToPickle:
    """Fails inside torch.save, once the new checkpoint file is open and being written."""

    def __reduce__(self):
        raise pickle.PicklingError("this object refuses to be pickled")


def test_a_failed_write_leaves_the_previous_checkpoint_and_no_temporary(tmp_path):
    path = tmp_path / "checkpoint.pth.tar"
    save_checkpoint(path, {"format": FORMAT, "version": VERSION, "epoch": 1})
    before = path.read_bytes()
    with pytest.raises(pickle.PicklingError, match="refuses to be pickled"):  # the writer's own error, unchanged
        save_checkpoint(path, {"format": FORMAT, "epoch": 2, "weights": torch.zeros(1000), "unpicklable": _RefusesToPickle()})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pth.tar"]


def test_damaged_foreign_and_missing_files_are_one_line_errors(tmp_path):
    good = tmp_path / "good.pt"
    save_checkpoint(good, {"format": FORMAT, "version": VERSION, "epoch": 3})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    openreid = tmp_path / "model_best.pth.tar"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, openreid)
    for path, words in ((truncated, "cannot read checkpoint"), (openreid, "open-reid/original checkpoint"),
                        (tmp_path / "missing.pt", "not found")):
        with pytest.raises(StreidError) as caught:
            load_checkpoint(path)
        assert words in str(caught.value) and str(path) in str(caught.value) and "\n" not in str(caught.value)
    assert load_checkpoint(good)["epoch"] == 3


@pytest.mark.parametrize("config", [
    EncoderConfig(arch="resnet18", last_stride=2, pool="avg", use_bn=True, test_bn=True, stem_relu=False,
                  num_classes=7, height=64, width=32),
    EncoderConfig(arch="resnet18", last_stride=1, pool="max", use_bn=False, test_bn=False, num_classes=2,
                  emb_type="Siamese", height=48, width=24),
])
def test_load_encoder_rebuilds_the_inference_encoder(tmp_path, config):
    torch.manual_seed(0)
    trained = config.build()
    trained.train()
    trained(torch.randn(4, 3, config.height, config.width))  # BN running statistics move off their init
    path = tmp_path / "run.pth.tar"
    save_checkpoint(path, {"format": FORMAT, "version": VERSION, "epoch": 1, "encoder": trained.state_dict(),
                           "encoder_config": config.as_dict()})
    encoder, size = load_encoder(path, "cpu")
    assert size == (config.height, config.width) and not encoder.training
    x = torch.randn(3, 3, config.height, config.width)
    trained.eval()
    with torch.no_grad():
        assert torch.equal(encoder(x), trained(x))


def test_load_encoder_rejects_weights_that_do_not_fit_the_config(tmp_path):
    config = EncoderConfig(arch="resnet18", num_classes=3)
    weights = config.build().state_dict()
    path = tmp_path / "bad.pth.tar"
    wrong = EncoderConfig(arch="resnet18", num_classes=5).as_dict()
    save_checkpoint(path, {"format": FORMAT, "version": VERSION, "encoder": weights, "encoder_config": wrong})
    with pytest.raises(StreidError, match="do not match its encoder_config"):
        load_encoder(path)
