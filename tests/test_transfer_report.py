"""Pose transfer where users see it: the measurement of a checkpoint kept beside it (and read back
instead of drawn again), the notebooks' section, the demo's transfer files, and TensorBoard."""
import json
import os

import pytest

from _make_streid_batch import HEIGHT, WIDTH, one_thread
from _make_synth import TINY
from _make_transfer_checkpoint import make_transfer_checkpoint
from streid_core.data import load_dataset
from streid_core.data.synth import generate
from streid_core.evaluation.pose_transfer import METRICS, on_training_dancers
from streid_core.reporting.demo_index import TRANSFER_GALLERY, TRANSFER_JSON, TRANSFER_SEEN_JSON, write_demo_transfer
from streid_core.reporting.transfer_report import (CACHE_DIR, measure_transfer,
                                                   report_from_dict, transfer_section)

_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny synthetic set and a random tiny ST-ReIDNet checkpoint on its 64x32 canvas."""
    root = tmp_path_factory.mktemp("transfer-report")
    generate(root / "synthdance", TINY, workers=1)
    checkpoint = make_transfer_checkpoint(root / "run" / "checkpoint.pth.tar")
    return load_dataset(root / "synthdance"), checkpoint


def test_a_measurement_is_kept_beside_the_checkpoint_and_read_back_unchanged(tiny):
    dataset, checkpoint = tiny
    first = measure_transfer(checkpoint, dataset, pairs=6, seed=1, examples=2)
    assert not first.cached and first.report.pairs == 6 and first.report.image_size == (HEIGHT, WIDTH)
    assert len(list((checkpoint.parent / CACHE_DIR).glob("*.json"))) == 1
    again = measure_transfer(checkpoint, dataset, pairs=6, seed=1, examples=2)
    assert again.cached and again.report.scores == first.report.scores and again.report.chance == first.report.chance
    assert again.figure_png == first.figure_png and again.report.format() == first.report.format()
    assert again.report.per_pair == first.report.per_pair
    # other settings are another entry; the summary leaves the per-pair rows out
    other = measure_transfer(checkpoint, dataset, pairs=4, seed=1, examples=2)
    assert not other.cached and other.report.pairs == 4
    summary = again.summary()
    assert "per_pair" not in summary and summary["scores"] == first.report.scores
    assert summary["checkpoint"] == str(checkpoint) and json.loads(json.dumps(summary)) == summary


def test_a_rewritten_checkpoint_is_measured_again_and_replaces_its_entry(tiny, tmp_path):
    dataset, _ = tiny
    checkpoint = make_transfer_checkpoint(tmp_path / "run" / "checkpoint.pth.tar", seed=1)
    measure_transfer(checkpoint, dataset, pairs=5, seed=0, examples=1)
    stat = checkpoint.stat()
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # another epoch wrote it
    redone = measure_transfer(checkpoint, dataset, pairs=5, seed=0, examples=1)
    assert not redone.cached
    assert len(list((checkpoint.parent / CACHE_DIR).glob("*.json"))) == 1
    assert measure_transfer(checkpoint, dataset, pairs=5, seed=0, examples=1).cached


def test_the_training_dancers_are_an_entry_of_their_own(tiny, tmp_path):
    # the demo measures G on the test dancers and on the dancers it trained on: each measurement
    # is read back, neither replaces the other
    dataset, _ = tiny
    seen_dancers = on_training_dancers(dataset)
    checkpoint = make_transfer_checkpoint(tmp_path / "run" / "checkpoint.pth.tar", seed=3)
    test = measure_transfer(checkpoint, dataset, pairs=5, seed=0, examples=1)
    seen = measure_transfer(checkpoint, seen_dancers, pairs=5, seed=0, examples=1)
    assert not test.cached and not seen.cached
    assert len(list((checkpoint.parent / CACHE_DIR).glob("*.json"))) == 2
    test_again = measure_transfer(checkpoint, dataset, pairs=5, seed=0, examples=1)
    seen_again = measure_transfer(checkpoint, seen_dancers, pairs=5, seed=0, examples=1)
    assert test_again.cached and test_again.report.per_pair == test.report.per_pair
    assert seen_again.cached and seen_again.report.per_pair == seen.report.per_pair
    assert seen.report.per_pair != test.report.per_pair


def test_a_damaged_entry_is_measured_again(tiny, tmp_path):
    dataset, _ = tiny
    checkpoint = make_transfer_checkpoint(tmp_path / "run" / "checkpoint.pth.tar", seed=2)
    measure_transfer(checkpoint, dataset, pairs=5, seed=0, examples=1)
    (entry,) = (checkpoint.parent / CACHE_DIR).glob("*.json")
    entry.write_text(entry.read_text()[:100])
    assert not measure_transfer(checkpoint, dataset, pairs=5, seed=0, examples=1).cached


def test_the_notebook_section_writes_the_grid_and_prints_the_table(tiny, tmp_path, capsys):
    dataset, checkpoint = tiny
    shown = transfer_section(checkpoint, dataset, tmp_path / "out" / "03_transfer_examples.png", pairs=6, seed=1,
                             examples=2)
    printed = capsys.readouterr().out
    assert "| G(s, pose t) |" in printed and "| source s unchanged |" in printed and "6 pairs" in printed
    assert shown.figure == tmp_path / "out" / "03_transfer_examples.png"
    assert shown.figure.read_bytes() == shown.figure_png and shown.figure_png.startswith(b"\x89PNG")


def test_the_demo_writes_the_full_report_and_the_gallery(tiny, tmp_path):
    dataset, checkpoint = tiny
    measured = write_demo_transfer(tmp_path / "demo", checkpoint, dataset.root, pairs=6, seed=1)
    data = json.loads((tmp_path / "demo" / TRANSFER_JSON).read_text())
    assert data["pairs"] == 6 and len(data["per_pair"]) == 6 and data["checkpoint"] == str(checkpoint)
    assert data["scores"] == measured.report.scores and set(data["definitions"]) == set(METRICS)
    assert (tmp_path / "demo" / TRANSFER_GALLERY).read_bytes() == measured.figure_png
    assert data["identities"] == "test"
    # beside it, the same measurement on the dancers G trained on
    seen = json.loads((tmp_path / "demo" / TRANSFER_SEEN_JSON).read_text())
    trained_on = {r.pid for r in dataset.train or dataset.trainval}
    assert seen["identities"] == "train" and seen["pairs"] == 6
    assert {row["pid"] for row in seen["per_pair"]} <= trained_on
    assert not {row["pid"] for row in data["per_pair"]} & trained_on


def test_a_report_survives_its_dictionary():
    data = {"pairs": 3, "seed": 2, "image_size": [64, 32], "dataset": "tiny", "dancers": 2,
            "scores": {k: {m: 0.25 for m in METRICS} for k in ("generator", "source", "mean")},
            "chance": {"pose_accuracy": 0.5, "identity_accuracy": 0.5, "rank1": 0.1}, "mean_image_from": "x",
            "other_video_pairs": 0, "min_pose_distance": 0.05, "mean_pose_change": 0.3,
            "mean_other_pose_change": 0.6, "per_pair": [], "rows": {}, "definitions": {}}
    report = report_from_dict(data)
    assert report.image_size == (64, 32) and report.examples is None
    assert {k: report.to_dict()[k] for k in data if k not in ("rows", "definitions")} == \
        {k: v for k, v in data.items() if k not in ("rows", "definitions")}


# ---------------------------------------------------------------- TensorBoard
