"""Every user error is one line, exit 2, nothing lost (issue 13 section 3): damaged and crafted
checkpoints, output paths that cannot be written (a file, a folder, a device, a full disk), numbers
out of range, resumes that cannot continue a run, selection that cannot choose, rates above 1,
misspelt notebook parameters, non-finite detection confidences."""
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _make_checkpoint import make_checkpoint
from _make_train_run import cli_args, single_thread, tiny_config, tiny_openreid

from streid_core.cli import main
from streid_core.errors import StreidError
from streid_core.models.loading import FORMAT, VERSION, load_checkpoint, load_encoder
from streid_core.training.checkpoint import CHECKPOINT_NAME
from streid_core.training.config import BaselineConfig

_one_thread = pytest.fixture(scope="module", autouse=True)(single_thread)


def _error(capsys) -> str:
    """The one line the CLI printed on stderr (asserting it is one line)."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("streid: error: ") and "\n" not in err, err
    return err


# ------------------------------------------------------------------ 1. checkpoints


def _raw(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _crafted(path: Path, **changes) -> Path:
    """A valid tiny checkpoint with some entries replaced."""
    make_checkpoint(path)
    state = torch.load(path, weights_only=True)
    for key, value in changes.items():
        if key.startswith("encoder_config."):
            state["encoder_config"][key.split(".", 1)[1]] = value
        else:
            state[key] = value
    torch.save(state, path)
    return path


@pytest.mark.parametrize("craft, words", [
    (lambda p: _raw(p, b""), "checkpoint is empty (0 bytes"),
    (lambda p: _raw(p, b"\x80\x02garbage"), "cannot read checkpoint"),
    (lambda p: _crafted(p, version="one"), "checkpoint version 'one' is not a version number"),
    (lambda p: _crafted(p, version=None), "checkpoint version None"),
    (lambda p: _crafted(p, epoch="x"), "checkpoint epoch 'x'"),
    (lambda p: _crafted(p, encoder_config="resnet18"), "encoder_config is not a mapping"),
    (lambda p: _crafted(p, **{"encoder_config.arch": "resnet9000"}), "arch='resnet9000'"),
    (lambda p: _crafted(p, **{"encoder_config.height": "tall"}), "height='tall'"),
    (lambda p: _crafted(p, **{"encoder_config.num_classes": -3}), "num_classes=-3"),
    (lambda p: _crafted(p, **{"encoder_config.use_bn": "yes"}), "use_bn='yes'"),
    (lambda p: _crafted(p, encoder=[1, 2]), "encoder is not a state dict"),
])
def test_damaged_or_crafted_checkpoint_is_one_line_naming_it(tmp_path, capsys, craft, words):
    checkpoint = craft(tmp_path / "model.pth.tar")
    out = tmp_path / "model.pt"
    assert main(["export", "--checkpoint", str(checkpoint), "--torchscript", str(out)]) == 2
    err = _error(capsys)
    assert str(checkpoint) in err and words in err, err
    assert not out.exists()
    with pytest.raises(StreidError, match="model.pth.tar"):
        load_encoder(checkpoint)


def test_every_torch_file_reader_names_an_empty_file(tmp_path):
    from streid_core.models.reid import ResNetTrunk, load_resnet_weights
    from streid_core.models.loading import read_network_state

    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(StreidError, match=r"empty\.pth: checkpoint is empty"):
        load_checkpoint(empty)
    with pytest.raises(StreidError, match=r"empty\.pth: pretrained weights file is empty"):
        load_resnet_weights(ResNetTrunk("resnet18", 1, True), empty, "resnet18")
    with pytest.raises(StreidError, match=r"empty\.pth: --netE-pretrain file is empty"):
        read_network_state(str(empty), "E", "--netE-pretrain")


# ------------------------------------------------------------------ 2. outputs


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tiny_openreid(tmp_path_factory.mktemp("data"))


def test_logs_dir_that_is_a_file_or_under_a_file_is_refused_before_the_data_is_read(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    nowhere = tmp_path / "no-data"  # the dataset does not exist: the logs dir is checked first
    for logs, words in ((blocker, "is a file, not a folder"), (blocker / "run", "cannot create it")):
        assert main(cli_args(tiny_config(nowhere, logs))) == 2
        err = _error(capsys)
        assert f"--logs-dir {logs}" in err and words in err, err
    assert blocker.read_text() == "not a folder"


def test_train_checkpoints_folder_that_is_a_file_is_refused(tmp_path, capsys):
    blocker = tmp_path / "ck"
    blocker.write_text("")
    assert main(["train", "--checkpoints", str(blocker), "--name", "x", "--dataroot", str(tmp_path)]) == 2
    assert "--checkpoints/--name" in _error(capsys)


@pytest.mark.parametrize("flag", ["--onnx", "--torchscript"])
def test_export_to_a_folder_or_a_device_is_refused_and_the_device_is_left_alone(tmp_path, capsys, flag):
    checkpoint = make_checkpoint(tmp_path / "model.pth.tar")
    assert main(["export", "--checkpoint", str(checkpoint), flag, str(tmp_path)]) == 2
    assert f"{flag} {tmp_path}: is a folder" in _error(capsys)
    assert main(["export", "--checkpoint", str(checkpoint), flag, "/dev/full"]) == 2
    assert f"{flag} /dev/full: is a device" in _error(capsys)
    assert Path("/dev/full").is_char_device()  # a rename would have replaced it with a plain file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pth.tar"]


def test_evaluate_out_that_is_a_file_is_refused_before_embedding(tmp_path, capsys, data_dir):
    checkpoint = make_checkpoint(tmp_path / "run" / "model.pth.tar")
    blocker = tmp_path / "metrics"
    blocker.write_text("")
    assert main(["evaluate", "-d", "tiny", "--data-dir", str(data_dir), "--checkpoint", str(checkpoint),
                 "--out", str(blocker), "--device", "cpu"]) == 2
    assert f"--out {blocker}: is a file" in _error(capsys)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["model.pth.tar"]  # no feature cache written


def test_track_outputs_that_are_folders_are_refused(tmp_path, capsys):
    dets = tmp_path / "det.txt"
    dets.write_text("1,-1,10,10,20,40,0.9\n")
    assert main(["track", "--frames", str(tmp_path), "--dets", str(dets), "--checkpoint", "none",
                 "--out", str(tmp_path)]) == 2
    assert f"--out {tmp_path}: is a folder" in _error(capsys)
    (tmp_path / "table.md").mkdir()
    assert main(["track-eval", "--gt-root", str(tmp_path), "--results", f"a={tmp_path}",
                 "--out", str(tmp_path / "table.json")]) == 2
    assert f"--out {tmp_path / 'table.md'}: is a folder" in _error(capsys)


def test_full_disk_while_logging_is_one_line_naming_the_log(tmp_path, capsys, data_dir):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "log.txt").symlink_to("/dev/full")  # every write fails with ENOSPC, as on a full disk
    assert main(cli_args(tiny_config(data_dir, logs))) == 2
    err = _error(capsys)
    assert f"{logs / 'log.txt'}: No space left on device; the disk is full" in err, err
    assert not (logs / CHECKPOINT_NAME).exists()


def _limit_file_size():
    # Files may not grow past 64 KiB: writes then fail with EFBIG, as writes to a full disk fail
    # with ENOSPC (SIGXFSZ ignored so that the write returns the error instead of killing us).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


def test_a_write_failing_at_the_end_leaves_no_half_written_output(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "model.pth.tar")  # written before the limit
    out = tmp_path / "encoder.pt"
    done = subprocess.run([sys.executable, "-m", "streid_core", "export", "--checkpoint", str(checkpoint),
                           "--torchscript", str(out)], capture_output=True, text=True, timeout=300,
                          preexec_fn=_limit_file_size, env={**os.environ, "OMP_NUM_THREADS": "1"})
    err = done.stderr.strip()
    assert done.returncode == 2, err
    assert err.startswith("streid: error: ") and "\n" not in err, err
    assert str(out) in err and "File too large" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pth.tar"]  # no output, no temporary


# ------------------------------------------------------------------ 3. numbers


@pytest.mark.parametrize("flags, words", [
    (["--height", "0"], "--height 0"),
    (["--width", "-4"], "--width -4"),
    (["--lr", "nan"], "--lr nan"),
    (["--lr", "inf"], "--lr inf"),
    (["--lr", "0"], "--lr 0"),
    (["--weight-decay=-0.5"], "--weight-decay -0.5"),
    (["--momentum", "nan"], "--momentum nan"),
    (["--margin", "nan"], "--margin nan"),
    (["--lambda-tri", "-1"], "--lambda-tri -1"),
    (["--seed", "-1"], "--seed -1"),
    (["-j", "-2"], "-j/--workers -2"),
    (["--epochs", "0"], "--epochs 0"),
    (["-b", "0"], "-b/--batch-size 0"),
    (["--split", "-1"], "--split -1"),
])
def test_baseline_numbers_out_of_range_are_refused_before_any_work(tmp_path, capsys, flags, words):
    logs = tmp_path / "logs"
    argv = cli_args(tiny_config(tmp_path / "no-data", logs, soft_margin=False)) + flags
    assert main(argv) == 2
    assert words in _error(capsys)
    assert not logs.exists()


def test_height_zero_is_not_read_as_the_default():
    assert BaselineConfig(height=0).input_size == (0, 128)
    assert BaselineConfig().input_size == (256, 128)
    with pytest.raises(StreidError, match="--height 0"):
        BaselineConfig(height=0).validate()


@pytest.mark.parametrize("flags, words", [
    (["--height", "0"], "--height 0"),
    (["--width", "48"], "--width 48: must be positive and divisible by 32"),
    (["--lr", "nan"], "--lr nan"),
    (["--lr", "-1"], "--lr -1"),
    (["--drop", "1.5"], "--drop 1.5"),
    (["--lambda-d", "nan"], "--lambda-d nan"),
    (["--margin", "0"], "--margin 0"),
    (["--pose-feature-size", "0"], "--pose-feature-size 0"),
    (["--skip-frame", "-1"], "--skip-frame -1"),
    (["-j", "-1"], "-j/--workers -1"),
    (["--seed", "-5"], "--seed -5"),
    (["--eval-step", "0"], "--eval-step 0"),
    (["--display-port", "0"], "--display-port 0"),
    (["--niter", "0", "--niter-decay", "0"], "--niter 0 --niter-decay 0"),
])
def test_train_numbers_out_of_range_are_refused_before_any_work(tmp_path, capsys, flags, words):
    argv = ["train", "--dataroot", str(tmp_path / "no-data"), "--checkpoints", str(tmp_path / "ck"), "--name", "x",
            "--device", "cpu"] + flags
    assert main(argv) == 2
    assert words in _error(capsys)
    assert not (tmp_path / "ck").exists()


def test_streidnet_config_validates_for_api_users():
    from streid_core.training.streidnet import StreidNetTask
    from streid_core.training.streidnet_config import StreidNetConfig

    with pytest.raises(StreidError, match="--lr nan"):
        StreidNetTask(StreidNetConfig(num_classes=4, arch="resnet18", height=64, width=32, lr=float("nan")))


# ------------------------------------------------------------------ 4. resume


@pytest.fixture(scope="module")
def finished_run(data_dir, tmp_path_factory):
    """A one-epoch baseline run (its config.json bytes and checkpoint kept to compare)."""
    from streid_core.training.baseline import train_baseline

    logs = tmp_path_factory.mktemp("run") / "logs"
    config = tiny_config(data_dir, logs, epochs=1, max_iters_per_epoch=1)
    train_baseline(config)
    return config, logs


@pytest.mark.parametrize("flags, words", [
    (["--lr", "0.5"], "--lr=0.001 (now 0.5)"),
    (["--opt-name", "SGD"], "--opt-name='Adam' (now 'SGD')"),
    (["--weight-decay", "0"], "--weight-decay=0.0005 (now 0.0)"),
    (["--seed", "4"], "--seed=3 (now 4)"),
])
def test_resume_with_other_optimisation_settings_is_refused_and_changes_nothing(finished_run, capsys, flags, words):
    config, logs = finished_run
    before = {p.name: p.read_bytes() for p in logs.iterdir() if p.is_file() and p.name != "log.txt"}
    argv = cli_args(config) + ["--epochs", "2", "--resume", str(logs / CHECKPOINT_NAME)] + flags
    assert main(argv) == 2
    err = _error(capsys)
    assert "the run was trained with other settings" in err and words in err, err
    assert {p.name: p.read_bytes() for p in logs.iterdir() if p.is_file() and p.name != "log.txt"} == before


def test_resume_into_another_logs_dir_is_refused_before_training(finished_run, tmp_path, capsys):
    config, logs = finished_run
    elsewhere = tmp_path / "elsewhere"
    argv = cli_args(config) + ["--epochs", "2", "--resume", str(logs / CHECKPOINT_NAME), "--logs-dir", str(elsewhere)]
    assert main(argv) == 2
    err = _error(capsys)
    assert f"the run lives in {logs.resolve()}" in err and "--logs-dir" in err, err
    assert not elsewhere.exists()


def test_resume_for_more_epochs_is_honoured_and_recorded(data_dir, tmp_path):
    from streid_core.training.baseline import train_baseline

    logs = tmp_path / "logs"
    train_baseline(tiny_config(data_dir, logs, epochs=1, max_iters_per_epoch=1))
    result = train_baseline(tiny_config(data_dir, logs, epochs=2, max_iters_per_epoch=1,
                                        resume=str(logs / CHECKPOINT_NAME)))
    assert result.epochs == 2 and load_checkpoint(logs / CHECKPOINT_NAME)["epoch"] == 2
    assert json.loads((logs / "config.json").read_text())["config"]["epochs"] == 2


# ------------------------------------------------------------------ 5. selection


def test_one_validation_identity_selects_the_last_epoch_and_says_why(tmp_path):
    from streid_core.training.baseline import train_baseline

    data = tiny_openreid(tmp_path / "data", trainval=6)  # a fifth of 6 identities: 1 held out
    logs = tmp_path / "logs"
    result = train_baseline(tiny_config(data, logs, epochs=2, max_iters_per_epoch=1))
    assert result.selection == "last" and result.selected_epoch == 2
    results = json.loads((logs / "results.json").read_text())
    assert results["selection"] == "last" and results["selected_epoch"] == 2
    assert "holds 1 identity" in results["selection_reason"]
    assert load_checkpoint(logs / "model_best.pth.tar")["epoch"] == 2  # the selected model, as in every mode
    assert "model selection: last epoch (the validation set holds 1 identity" in (logs / "log.txt").read_text()


# ------------------------------------------------------------------ 6. rates


def test_single_gallery_shot_rates_never_exceed_one():
    from streid_core.evaluation.protocols import evaluate_protocol

    # seed 0, third draw: ten 1/10 shares summed to 1.0000000000000002 before
    rng = np.random.default_rng(0)
    for _ in range(3):
        distances = rng.random((3, 6))
        distances[np.arange(3), [0, 2, 4]] = 0.0
    result = evaluate_protocol(distances, np.array([0, 1, 2]), np.array([0, 0, 1, 1, 2, 2]),
                               np.zeros(3, int), np.ones(6, int), "cuhk03")
    assert result.cmc.max() == 1.0
    assert all(0.0 <= v <= 1.0 for k, v in result.as_dict().items() if k != "num_valid")


# ------------------------------------------------------------------ 7. notebook parameters


def test_misspelt_notebook_parameter_is_refused_before_anything_runs(tmp_path, capsys):
    reports = tmp_path / "reports"
    assert main(["notebooks", "run", "02", "-p", "datset", "x", "--reports", str(reports)]) == 2
    err = _error(capsys)
    assert "-p datset: not a parameter of 02_baseline_training" in err and "dataset" in err, err
    assert not reports.exists()


def test_declared_notebook_parameters_are_read_from_the_parameters_cell():
    from streid_core.reporting.notebooks import check_parameters, notebook_parameters, resolve_notebook

    names = notebook_parameters(resolve_notebook("02"))
    assert {"output_dir", "dataset", "epochs", "lr"} <= set(names)
    check_parameters([resolve_notebook("01"), resolve_notebook("02")], {"epochs": 1}, {})  # known to one of them


# ------------------------------------------------------------------ 8. detections


def test_nan_detection_confidence_is_refused_naming_file_and_line(tmp_path, capsys):
    from streid_core.data.formats.mot import read_detections

    dets = tmp_path / "det.txt"
    dets.write_text("1,-1,10,10,20,40,0.9\n2,-1,10,10,20,40,nan\n")
    with pytest.raises(StreidError, match=r"det\.txt:2: column 7 is 'nan', not a finite number"):
        read_detections(dets)
    assert main(["track", "--frames", str(tmp_path), "--dets", str(dets), "--checkpoint", "none",
                 "--out", str(tmp_path / "out.txt"), "--min-conf", "0.5"]) == 2
    assert f"{dets}:2: column 7" in _error(capsys)
    assert not (tmp_path / "out.txt").exists()


# ------------------------------------------------------------------ more commands


@pytest.mark.parametrize("argv, words", [
    (["synth", "--workers", "-1", "--out", "{tmp}/s"], "--workers -1"),
    (["synth", "--out", "{tmp}/s", "--report-dir", "{file}"], "--report-dir {file}: is a file"),
    (["synth-video", "--workers", "0", "--out", "{tmp}/v"], "--workers 0"),
    (["st-vs-baseline", "--jobs", "0", "--out", "{tmp}/st"], "--jobs 0"),
    (["st-vs-baseline", "--seeds", "-1", "--out", "{tmp}/st"], "--seeds -1"),
    (["st-vs-baseline", "--finetune-lr", "nan", "--out", "{tmp}/st"], "--finetune-lr nan"),
    (["st-vs-baseline", "--out", "{file}"], "--out {file}: is a file"),
    (["st-vs-baseline", "--no-paint-limbs", "--out", "{tmp}/st"], "--lambda-paint 1.0: weighs the loss of a limb painting"),
    (["st-vs-baseline", "--lambda-paint", "-1", "--out", "{tmp}/st"], "--lambda-paint -1.0"),
    (["st-vs-baseline", "--paint-from", "pixels", "--out", "{tmp}/st"], "--paint-from 'pixels': choose one of"),
    (["st-vs-baseline", "--paint-layer", "0", "--out", "{tmp}/st"], "--paint-layer 0: a stage of E's ResNet trunk"),
    (["demo", "--out", "{file}"], "--out {file}: is a file"),
    (["notebooks", "run", "01", "--reports", "{file}"], "--reports {file}: is a file"),
    (["evaluate", "{tmp}/nowhere", "--checkpoint", "{file}"], "nowhere: no such dataset folder"),
    (["evaluate", "-d", "x", "--checkpoint", "{file}", "--seed", "-1"], "--seed -1"),
    (["track", "--frames", "{tmp}", "--dets", "{tmp}", "--checkpoint", "none", "--out", "{tmp}/t.txt"],
     "detection file not found"),
])
def test_other_commands_refuse_bad_values_and_outputs_before_any_work(tmp_path, capsys, argv, words):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    fill = {"tmp": tmp_path, "file": blocker}
    assert main([a.format(**fill) for a in argv]) == 2
    assert words.format(**fill) in _error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
