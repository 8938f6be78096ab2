"""`streid train --transfer-eval-every N`: the pose-transfer metrics of E and G while ST-ReIDNet
trains, every N global iterations and after the last, in TensorBoard and transfer_metrics.jsonl."""
import json

import pytest

from _make_streid_batch import one_thread
from _make_synth import TINY
from streid_core.cli import main
from streid_core.data.synth import generate
from streid_core.evaluation.pose_transfer import METRICS
from streid_core.errors import StreidError
from streid_core.reporting.tensorboard_logs import read_scalars
from streid_core.reporting.transfer_report import transfer_curve
from streid_core.training.transfer_metrics import TRANSFER_METRICS_FILE, read_transfer_metrics

_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tmh") / "data"
    generate(root / "synthdance", TINY, workers=1)
    return root


def _argv(data_dir, out, *extra):
    return ["train", "-d", "synthdance", "--dataroot", str(data_dir), "--checkpoints", str(out), "--name", "run",
            "--arch", "resnet18", "--height", "64", "--width", "32", "-b", "2", "-j", "0", "--niter", "2",
            "--niter-decay", "0", "--max-iters-per-epoch", "2", "--eval-step", "2", "--mask", "--device", "cpu",
            "--save-step", "100", "--display-id", "0", *extra]


def test_metrics_every_n_iterations_and_after_the_last(data_dir, tmp_path):
    # 2 epochs of 2 iterations: global iterations 1..4; every 3 -> after iteration 3, then the end (4)
    assert main(_argv(data_dir, tmp_path, "--transfer-eval-every", "3", "--transfer-eval-pairs", "8")) == 0
    run = tmp_path / "run"
    rows = [json.loads(line) for line in (run / TRANSFER_METRICS_FILE).read_text().splitlines()]
    assert [(r["iteration"], r["epoch"]) for r in rows] == [(3, 2), (4, 2)]
    for row in rows:
        assert set(row["generator"]) == set(METRICS) and set(row["source"]) == set(METRICS)
        assert all(0.0 <= row[d][m] <= 1.0 for d in ("generator", "source", "mean")
                   for m in ("pose_accuracy", "identity_accuracy", "rank1"))
        assert row["source"]["pose_accuracy"] == 0.5  # the unchanged source ignores the pose
        assert row["pairs"] >= 1 and row["train_seconds"] > 0
    assert rows[1]["train_seconds"] >= rows[0]["train_seconds"]
    # the same pairs each time: the references' drawings do not move while G trains (their E
    # rank-1 does: E trains in stage 0)
    for reference in ("source", "mean"):
        for metric in ("body_l1", "ssim", "pose_accuracy", "identity_accuracy"):
            assert rows[0][reference][metric] == rows[1][reference][metric]
    scalars = read_scalars(run)
    for metric in METRICS:
        steps, values = scalars[f"transfer/{metric}"]
        assert list(steps) == [3, 4]
        assert list(values) == pytest.approx([r["generator"][metric] for r in rows], rel=1e-6)
    assert "pose transfer at iteration 4" in (run / "log.txt").read_text()
    assert read_transfer_metrics(run) == rows
    figure = transfer_curve(run, tmp_path / "curve.png")
    assert figure.is_file() and figure.stat().st_size > 1000


def test_reader_keeps_the_later_line_of_a_repeated_iteration_and_names_a_bad_line(tmp_path):
    row = {"iteration": 5, "generator": {}, "source": {}, "mean": {}, "pairs": 1}
    lines = [dict(row, pairs=1), dict(row, iteration=2), dict(row, pairs=2)]
    (tmp_path / TRANSFER_METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert [(r["iteration"], r["pairs"]) for r in read_transfer_metrics(tmp_path)] == [(2, 1), (5, 2)]
    assert read_transfer_metrics(tmp_path / "nothing") == []
    with pytest.raises(StreidError, match="no pose-transfer metrics"):
        transfer_curve(tmp_path / "nothing", tmp_path / "c.png")
    (tmp_path / TRANSFER_METRICS_FILE).write_text(json.dumps(row) + "\n{broken\n")
    with pytest.raises(StreidError, match=f"{TRANSFER_METRICS_FILE}:2: not a pose-transfer metrics line"):
        read_transfer_metrics(tmp_path)


def test_off_by_default_and_bad_values_are_one_line(data_dir, tmp_path, capsys):
    assert main(_argv(data_dir, tmp_path / "off", "--niter", "1", "--max-iters-per-epoch", "1")) == 0
    assert not (tmp_path / "off" / "run" / TRANSFER_METRICS_FILE).exists()
    capsys.readouterr()
    for flag, value in (("--transfer-eval-every", "-1"), ("--transfer-eval-pairs", "0")):
        assert main(_argv(data_dir, tmp_path / "bad", flag, value)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and flag in err[0], err
        assert not (tmp_path / "bad" / "run" / "config.json").exists()
