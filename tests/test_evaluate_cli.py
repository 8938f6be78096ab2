"""`streid evaluate` end to end on tiny datasets in the real layouts, checked against the
library functions called directly."""
from __future__ import annotations

import json

import numpy as np
import pytest

from _make_checkpoint import make_checkpoint
from _make_datasets import make_dancereid, make_openreid, write_jpeg
from streid_core.cli import main
from streid_core.data import load_dataset
from streid_core.evaluation.features import extract_features
from streid_core.evaluation.pipeline import evaluate_reid
from streid_core.evaluation.protocols import evaluate_protocol
from streid_core.evaluation.reranking import re_rank
from streid_core.models.loading import load_encoder

H, W = 64, 32


@pytest.fixture
def setup(tmp_path):
    data = tmp_path / "data"
    root = make_dancereid(data / "DanceReID", videos=(("trainvid", 3), ("testvid", 4)), frames=(0, 5, 10, 15),
                          test_videos=("testvid",))
    # The fixture colours each identity plainly, which any network separates; dress three test
    # images as other dancers so that rankings contain mistakes.
    for pid, frame, lookalike in ((3, 5, 4), (5, 10, 6), (6, 15, 3)):
        write_jpeg(root / "images" / f"{pid:04d}_{frame:06d}.jpg", lookalike, frame, size=(16, 32))
    checkpoint = make_checkpoint(tmp_path / "run" / "model_best.pth.tar", height=H, width=W)
    return data, checkpoint


def _metrics(path) -> dict:
    return json.loads(path.read_text())


def test_defaults_use_the_datasets_protocol_and_match_evaluate_reid(setup, capsys):
    data, checkpoint = setup
    assert main(["evaluate", "--checkpoint", str(checkpoint), "-d", "dancereid", "--data-dir", str(data)]) == 0
    printed = capsys.readouterr().out
    metrics_file = checkpoint.parent / "evaluate" / "DanceReID" / "metrics.json"
    metrics = _metrics(metrics_file)
    assert metrics["protocol"] == "dancereid" and metrics["ap"] == "sklearn"
    assert metrics["num_query"] == metrics["num_gallery"] == 16
    dataset = load_dataset(data / "DanceReID")
    model, _ = load_encoder(checkpoint)
    expected = evaluate_reid(model, dataset.query, dataset.gallery, "dancereid", height=H, width=W).result.as_dict()
    for key in ("R1", "R5", "R10", "mAP", "mINP", "num_valid"):
        assert metrics[key] == pytest.approx(expected[key], abs=1e-6), key
        assert key == "num_valid" or f"{key} {100 * expected[key]:.1f}%" in printed
    assert metrics["feature_cache"]["hit"] is False
    assert metrics["mAP"] < 1.0  # the look-alikes make this a ranking worth checking

    # Same features, other protocol and AP convention: read from the cache, metrics change accordingly.
    assert main(["evaluate", "--checkpoint", str(checkpoint), "-d", "DanceReID", "--data-dir", str(data),
                 "--protocol", "market1501", "--ap", "trapezoid"]) == 0
    assert "read from the cache" in capsys.readouterr().out
    again = _metrics(metrics_file)
    assert again["feature_cache"]["hit"] is True
    assert (again["protocol"], again["ap"]) == ("market1501", "trapezoid")
    other = evaluate_reid(model, dataset.query, dataset.gallery, "market1501", height=H, width=W).result
    assert again["R1"] == pytest.approx(other.rank1, abs=1e-6)


def test_dataset_dir_rerank_flip_and_ranked_lists(tmp_path):
    root = make_openreid(tmp_path / "market", trainval_pids=(0, 1), test_pids=(2, 3, 4, 5), num_cameras=2, per_camera=2)
    checkpoint = make_checkpoint(tmp_path / "ck.pth.tar", height=H, width=W)
    out = tmp_path / "out"
    assert main(["evaluate", str(root), "--checkpoint", str(checkpoint), "--rerank", "--k1", "4", "--k2", "2",
                 "--flip", "--out", str(out), "--ranked-list", "3", "--top-k", "4", "--show-junk"]) == 0
    metrics = _metrics(out / "metrics.json")
    assert metrics["rerank"] == {"k1": 4, "k2": 2, "lambda_value": 0.3} and metrics["flip"] is True

    dataset = load_dataset(root)
    model, _ = load_encoder(checkpoint)
    feats, pids, cams = extract_features(model, dataset.query, flip=True, height=H, width=W)  # query == gallery here
    assert dataset.query == dataset.gallery
    expected = evaluate_protocol(re_rank(feats.numpy(), feats.numpy(), 4, 2, 0.3), pids, pids, cams, cams, "market1501")
    assert metrics["mAP"] == pytest.approx(expected.mAP, abs=1e-6)
    figures = sorted((out / "ranked").iterdir())
    assert len(figures) == 3 and all(f.read_bytes()[:4] == b"\x89PNG" for f in figures)


# bf16 keeps an 8-bit significand: each operation rounds to about 0.2 %, and through the encoder's
# layers the errors add up to about 1 % of a feature's norm (0.6 % on this fixture). 5 % leaves
# headroom for other CPUs and still catches a broken bf16 kernel (some give errors of 14 %, or NaN).
BF16_FEATURE_TOLERANCE = 0.05


@pytest.mark.precision
def test_amp_without_cache_gives_the_float32_metrics(setup, tmp_path):
    data, checkpoint = setup
    assert main(["evaluate", "--checkpoint", str(checkpoint), "-d", "DanceReID", "--data-dir", str(data), "--amp",
                 "--no-cache", "--out", str(tmp_path / "amp"), "--ranked-list", "2", "--ranked-select", "failures"]) == 0
    metrics = _metrics(tmp_path / "amp" / "metrics.json")
    assert metrics["amp"] == "bfloat16" and metrics["feature_cache"] is None
    assert not (checkpoint.parent / "feature_cache").exists()
    dataset = load_dataset(data / "DanceReID")
    model, _ = load_encoder(checkpoint)
    fp32 = evaluate_reid(model, dataset.query, dataset.gallery, "dancereid", height=H, width=W).result
    # Features within BF16_FEATURE_TOLERANCE reorder only near-tied gallery images: at most one
    # query of the 16 may rank differently, which moves R1 or mAP by at most 1/16.
    one_query = 1 / fp32.num_valid
    assert metrics["num_valid"] == fp32.num_valid
    assert metrics["R1"] == pytest.approx(fp32.rank1, abs=one_query) and metrics["R1"] < 1.0
    assert metrics["mAP"] == pytest.approx(fp32.mAP, abs=one_query) and metrics["mAP"] < 1.0
    assert np.isfinite(metrics["mINP"])
    assert len(list((tmp_path / "amp" / "ranked").iterdir())) == 2  # there are rank-1 failures to show


@pytest.mark.precision
def test_amp_features_match_float32_within_bf16_rounding(setup, tmp_path):
    """What --amp stores in the feature cache against what float32 stores, image by image."""
    data, checkpoint = setup
    features = {}
    for name, extra in (("float32", []), ("amp", ["--amp"])):
        assert main(["evaluate", "--checkpoint", str(checkpoint), "-d", "DanceReID", "--data-dir", str(data), *extra,
                     "--cache-dir", str(tmp_path / name), "--out", str(tmp_path / f"{name}-out")]) == 0
        [entry] = (tmp_path / name).rglob("*.npz")
        features[name] = np.load(entry)["features"]
    fp32, amp = features["float32"], features["amp"]
    assert amp.shape == fp32.shape == (16, fp32.shape[1]) and np.isfinite(amp).all()
    relative = np.linalg.norm(amp - fp32, axis=1) / np.linalg.norm(fp32, axis=1)
    assert relative.max() < BF16_FEATURE_TOLERANCE, relative


@pytest.mark.parametrize("extra, message", [
    ([], "no dataset"),
    (["-d", "nosuch"], "not found"),
    (["-d", "DanceReID", "DATASET_DIR"], "give the dataset once"),
    (["-d", "DanceReID", "--protocol", "olympics"], "unknown protocol"),
    (["-d", "DanceReID", "--batch-size", "0"], "--batch-size 0"),
])
def test_user_errors_exit_2_with_one_line(setup, capsys, extra, message):
    data, checkpoint = setup
    extra = [str(data / "DanceReID") if e == "DATASET_DIR" else e for e in extra]
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--data-dir", str(data), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_missing_checkpoint_is_reported_before_anything_runs(tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(tmp_path / "none.pth.tar"), "-d", "x"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
