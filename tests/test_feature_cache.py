"""The feature cache: a hit returns the stored features without running the model; any change
of checkpoint, images, record list, input size, flip or dtype is a miss."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import streid_core.evaluation.features as features_module
from _make_checkpoint import make_checkpoint
from _make_datasets import write_jpeg
from streid_core.data.records import Record
from streid_core.errors import StreidError
from streid_core.evaluation.feature_cache import cached_features, checkpoint_fingerprint, module_fingerprint
from streid_core.evaluation.features import extract_features
from streid_core.models.reid import ReIDEncoder
from streid_core.models.loading import load_encoder

H, W = 64, 32


@pytest.fixture
def records(tmp_path):
    return [Record(str(write_jpeg(tmp_path / "images" / f"{i}.jpg", pid=i // 2, variant=i, size=(16, 32))), i // 2, i % 2)
            for i in range(4)]


@pytest.fixture
def extractions(monkeypatch):
    """Counts how often the model is actually run."""
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return extract_features(*args, **kwargs)

    monkeypatch.setattr(features_module, "extract_features", counting)
    return calls


def test_miss_then_hit_returns_the_same_features_without_running_the_model(tmp_path, records, extractions):
    checkpoint = make_checkpoint(tmp_path / "run" / "checkpoint.pth.tar", height=H, width=W)
    first = cached_features(checkpoint, records, tmp_path / "cache")
    assert not first.hit and first.path.is_file() and len(extractions) == 1
    model, _ = load_encoder(checkpoint)
    direct, _, _ = extract_features(model, records, height=H, width=W)  # the checkpoint's own input size
    np.testing.assert_array_equal(first.features, direct.numpy())
    second = cached_features(checkpoint, records, tmp_path / "cache")
    assert second.hit and len(extractions) == 1
    np.testing.assert_array_equal(second.features, first.features)
    np.testing.assert_array_equal(second.pids, [0, 0, 1, 1])
    np.testing.assert_array_equal(second.camids, [0, 1, 0, 1])


def test_every_key_part_invalidates(tmp_path, records, extractions):
    checkpoint = make_checkpoint(tmp_path / "checkpoint.pth.tar", height=H, width=W)
    cache = tmp_path / "cache"
    base = cached_features(checkpoint, records, cache)
    variants = {
        "flip": dict(flip=True),
        "dtype": dict(dtype=torch.bfloat16),
        "input size": dict(height=32, width=16),
    }
    for name, options in variants.items():
        other = cached_features(checkpoint, records, cache, **options)
        assert not other.hit and other.path != base.path, name
    assert not cached_features(checkpoint, records[::-1], cache).hit  # record order is part of the key
    assert not cached_features(checkpoint, records[:3], cache).hit
    assert len(extractions) == 6
    assert cached_features(checkpoint, records, cache, flip=True).hit  # each variant is kept
    assert cached_features(checkpoint, records, cache).hit


def test_rewritten_checkpoint_replaces_its_entry(tmp_path, records):
    checkpoint = tmp_path / "checkpoint.pth.tar"
    make_checkpoint(checkpoint, height=H, width=W, seed=0)
    old = cached_features(checkpoint, records, tmp_path / "cache")
    make_checkpoint(checkpoint, height=H, width=W, seed=1)  # next epoch, same file name
    new = cached_features(checkpoint, records, tmp_path / "cache")
    assert not new.hit and new.path == old.path  # one slot per checkpoint path: no pile-up
    assert not np.allclose(new.features, old.features)
    model, _ = load_encoder(checkpoint)
    np.testing.assert_array_equal(new.features, extract_features(model, records, height=H, width=W)[0].numpy())
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [new.path.name]


def test_changed_image_at_the_same_path_is_a_miss(tmp_path, records):
    model = ReIDEncoder("resnet18").eval()
    old = cached_features(model, records, tmp_path / "cache", height=H, width=W)
    write_jpeg(Path(records[0].path), pid=9, variant=9, size=(16, 40))
    new = cached_features(model, records, tmp_path / "cache", height=H, width=W)
    assert not new.hit
    assert not np.allclose(new.features[0], old.features[0])
    np.testing.assert_allclose(new.features[1:], old.features[1:], rtol=1e-5, atol=1e-5)


def test_in_memory_module_is_keyed_by_its_weights_and_settings(tmp_path, records, extractions):
    torch.manual_seed(0)
    model = ReIDEncoder("resnet18").eval()
    assert cached_features(model, records, tmp_path, height=H, width=W).hit is False
    assert cached_features(model, records, tmp_path, height=H, width=W).hit is True
    with torch.no_grad():
        model.trunk.conv1.weight[0, 0, 0, 0] += 1.0
    assert cached_features(model, records, tmp_path, height=H, width=W).hit is False
    same_weights = ReIDEncoder("resnet18", test_bn=True).eval()
    same_weights.load_state_dict(model.state_dict())
    assert module_fingerprint(same_weights) != module_fingerprint(model)  # test_bn changes the descriptor
    assert len(extractions) == 2


def test_damaged_cache_file_is_recomputed(tmp_path, records):
    model = ReIDEncoder("resnet18").eval()
    entry = cached_features(model, records, tmp_path, height=H, width=W)
    entry.path.write_bytes(entry.path.read_bytes()[:100])
    again = cached_features(model, records, tmp_path, height=H, width=W)
    assert not again.hit
    np.testing.assert_array_equal(again.features, entry.features)
    assert cached_features(model, records, tmp_path, height=H, width=W).hit


def test_full_hash_sees_changes_the_fast_fingerprint_cannot(tmp_path):
    path = tmp_path / "model.pth.tar"
    head = os.urandom(2**20)
    path.write_bytes(head + b"A" * 100)
    stat = path.stat()
    fast, full = checkpoint_fingerprint(path), checkpoint_fingerprint(path, full_hash=True)
    path.write_bytes(head + b"B" * 100)  # same size, change after the first MiB
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as `cp -p` would keep it
    assert checkpoint_fingerprint(path) == fast
    assert checkpoint_fingerprint(path, full_hash=True) != full


def test_user_errors(tmp_path, records):
    with pytest.raises(StreidError, match="checkpoint not found"):
        cached_features(tmp_path / "none.pth.tar", records, tmp_path)
    with pytest.raises(StreidError, match="record list is empty"):
        cached_features(ReIDEncoder("resnet18"), [], tmp_path)
    with pytest.raises(StreidError, match="both height and width"):
        cached_features(ReIDEncoder("resnet18"), records, tmp_path, height=H)
