"""More user errors that must be one line, exit 2, before the work and with nothing written (the
cases of test_hostile_inputs.py, continued): ONNX opsets the exporter cannot write, outputs of
transfer-eval, frames missing for appearance tracking, damaged checkpoints in track-bench, test
sets where no query can be scored, budgets and flags that would be ignored or fail late, and
training sets of one identity."""
from pathlib import Path

import pytest
import torch
from _make_checkpoint import make_checkpoint
from _make_datasets import make_openreid, write_jpeg
from _make_train_run import cli_args, single_thread, tiny_config, tiny_openreid

from streid_core.cli import main
from streid_core.errors import StreidError

_one_thread = pytest.fixture(scope="module", autouse=True)(single_thread)


def _error(capsys) -> str:
    """The one line the CLI printed on stderr (asserting it is one line, with no traceback)."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("streid: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def _damaged(path: Path) -> Path:
    path.write_bytes(b"\x80\x02garbage")
    return path


# ------------------------------------------------------------------ export --opset


@pytest.mark.parametrize("exporter, opset, words", [
    ("dynamo", "99", "--opset 99: the dynamo exporter writes opsets up to"),
    ("torchscript", "21", "--opset 21: the torchscript exporter writes opsets up to 20"),
])
def test_export_opset_beyond_the_exporter_is_refused_before_the_checkpoint_is_read(tmp_path, capsys, exporter,
                                                                                  opset, words):
    checkpoint = _damaged(tmp_path / "model.pth.tar")  # a read would fail with another message
    out = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--onnx", str(out), "--exporter", exporter,
                 "--opset", opset]) == 2
    assert words in _error(capsys)
    assert not out.exists()


def test_an_opset_the_exporter_did_not_write_is_refused_and_nothing_is_written(tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    from streid_core.evaluation import export

    real = export._onnx_bytes
    # what dynamo does when it cannot convert: it keeps its own opset and only logs a warning
    monkeypatch.setattr(export, "_onnx_bytes", lambda model, example, exporter, opset: real(model, example, exporter, None))
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    out = tmp_path / "model.onnx"
    with pytest.raises(StreidError, match=r"--opset 16: the torchscript exporter wrote opset 17 instead"):
        export.export_onnx(model, out, 16, 8, exporter="torchscript", opset=16)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ transfer-eval outputs


@pytest.mark.parametrize("flags, words", [
    (["--out", "{tmp}"], "--out {tmp}: is a folder"),
    (["--figure", "{file}/grid.png"], "--figure {file}: cannot create it"),
    (["--min-pose-distance", "nan"], "--min-pose-distance nan: must be a finite number"),
    (["--min-pose-distance", "inf"], "--min-pose-distance inf: must be a finite number"),
])
def test_transfer_eval_outputs_and_distance_are_checked_before_the_checkpoint(tmp_path, capsys, flags, words):
    checkpoint = _damaged(tmp_path / "checkpoint.pth.tar")  # reading it would be the first work
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    fill = {"tmp": tmp_path, "file": blocker}
    argv = ["transfer-eval", str(checkpoint), "-d", str(tmp_path / "no-data"), "--device", "cpu"]
    assert main(argv + [f.format(**fill) for f in flags]) == 2
    assert words.format(**fill) in _error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "checkpoint.pth.tar"]


# ------------------------------------------------------------------ tracking


def test_track_with_appearance_refuses_missing_frames_before_loading_the_model(tmp_path, capsys):
    frames = tmp_path / "img1"
    for number in (1, 3):
        write_jpeg(frames / f"{number:06d}.jpg", 0, number, size=(64, 48))
    dets = tmp_path / "det.txt"
    dets.write_text("".join(f"{n},-1,10,10,20,30,0.9\n" for n in (1, 2, 3)))
    checkpoint = _damaged(tmp_path / "model.pth.tar")
    out = tmp_path / "out.txt"
    argv = ["track", "--frames", str(frames), "--dets", str(dets), "--checkpoint", str(checkpoint),
            "--out", str(out), "--device", "cpu"]
    assert main(argv) == 2
    err = _error(capsys)
    assert f"--frames {frames}: no image for frame 2, which has detections" in err, err
    assert not out.exists()
    assert main(argv + ["--min-conf", "0.95"]) == 2  # frame 2's detection dropped: the frames are all there
    assert "model.pth.tar" in _error(capsys)


def _sequence(root: Path, frames: int = 3, missing: tuple[int, ...] = ()) -> Path:
    seq = root / "seq-01"
    (seq / "gt").mkdir(parents=True)
    (seq / "det").mkdir()
    (seq / "seqinfo.ini").write_text(f"[Sequence]\nname=seq-01\nimDir=img1\nframeRate=15\nseqLength={frames}\n"
                                     "imWidth=64\nimHeight=48\nimExt=.jpg\n")
    rows = "".join(f"{n},1,10,10,20,30,1,1,1\n" for n in range(1, frames + 1))
    (seq / "gt" / "gt.txt").write_text(rows)
    (seq / "det" / "det.txt").write_text("".join(f"{n},-1,10,10,20,30,0.9\n" for n in range(1, frames + 1)))
    for n in range(1, frames + 1):
        if n not in missing:
            write_jpeg(seq / "img1" / f"{n:06d}.jpg", 0, n, size=(64, 48))
    return root


@pytest.mark.parametrize("damage, words", [
    ("checkpoint", "cannot read checkpoint"),
    ("frame", "000002.jpg: frame missing"),
])
def test_track_bench_reads_every_checkpoint_and_frame_before_any_tracking(tmp_path, capsys, damage, words):
    videos = _sequence(tmp_path / "videos", missing=(2,) if damage == "frame" else ())
    checkpoint = tmp_path / "model.pth.tar"
    _damaged(checkpoint) if damage == "checkpoint" else make_checkpoint(checkpoint)
    out = tmp_path / "bench"
    assert main(["track-bench", "--videos", str(videos), "--out", str(out), "--checkpoint", f"reid={checkpoint}",
                 "--device", "cpu", "--no-trackeval"]) == 2
    assert words in _error(capsys)
    assert not out.exists()  # motion-only used to run first and leave results/motion-only behind


# ------------------------------------------------------------------ evaluate


def test_evaluate_refuses_a_test_set_no_query_can_be_scored_before_embedding(tmp_path, capsys):
    data = make_openreid(tmp_path / "onecam", num_cameras=1, per_camera=2)  # every match is same-camera junk
    checkpoint = make_checkpoint(tmp_path / "run" / "model.pth.tar")
    out = tmp_path / "metrics"
    assert main(["evaluate", str(data), "--checkpoint", str(checkpoint), "--device", "cpu", "--out", str(out)]) == 2
    err = _error(capsys)
    assert f"{data / 'splits.json'}: split 0 has no query identity with a gallery image of itself from another " \
           "camera" in err, err
    assert not out.exists()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["model.pth.tar"]  # no feature cache


def test_evaluate_checkpoint_that_is_a_folder_says_so(tmp_path, capsys):
    data = tiny_openreid(tmp_path / "data")
    assert main(["evaluate", "-d", "tiny", "--data-dir", str(data), "--checkpoint", str(tmp_path)]) == 2
    assert f"{tmp_path}: is a folder, not a checkpoint" in _error(capsys)


# ------------------------------------------------------------------ values accepted but failing late or ignored


def test_st_vs_baseline_unknown_arch_is_refused_before_the_first_run(tmp_path, capsys):
    out = tmp_path / "st"
    assert main(["st-vs-baseline", "--arch", "resnet9000", "--out", str(out), "--device", "cpu"]) == 2
    assert "--arch 'resnet9000': not a ResNet streid builds" in _error(capsys)
    assert not out.exists()


def test_baseline_momentum_without_sgd_is_refused_rather_than_ignored(tmp_path, capsys):
    logs = tmp_path / "logs"
    argv = cli_args(tiny_config(tmp_path / "no-data", logs)) + ["--momentum", "0.5"]
    assert main(argv) == 2
    assert "--momentum 0.5: only --opt-name SGD uses it (this run uses Adam)" in _error(capsys)
    assert not logs.exists()
    assert main(argv + ["--opt-name", "SGD"]) == 2  # accepted: the run goes on to the missing dataset
    assert "no-data" in _error(capsys)


@pytest.mark.parametrize("flags, words", [
    (["--display-id", "-5"], "--display-id -5: must be >= 1"),
    (["--name", ""], "--name '': must name a folder under --checkpoints"),
    (["--name", "../../elsewhere"], "--name '../../elsewhere': must name a folder under --checkpoints"),
])
def test_train_display_id_and_name_out_of_range_are_refused(tmp_path, capsys, flags, words):
    argv = ["train", "--dataroot", str(tmp_path / "no-data"), "--checkpoints", str(tmp_path / "ck" / "runs"),
            "--device", "cpu"] + (["--name", "x"] if "--name" not in flags else []) + flags
    assert main(argv) == 2
    assert words in _error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# ------------------------------------------------------------------ pose


def test_pose_checks_out_and_images_before_mediapipe_loads(tmp_path, capsys):
    images = tmp_path / "images"
    write_jpeg(images / "a.jpg", 0, 0, size=(32, 64))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["pose", "--images", str(images), "--out", str(blocker / "poses")]) == 2
    assert f"--out {blocker / 'poses'}: cannot create it, {blocker} is a file" in _error(capsys)
    (images / "b.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "poses"
    assert main(["pose", "--images", str(images), "--out", str(out)]) == 2
    assert f"{images / 'b.jpg'}: not a readable image" in _error(capsys)
    assert not out.exists()


# ------------------------------------------------------------------ one training identity


def test_baseline_on_one_training_identity_names_the_split(tmp_path, capsys):
    make_openreid(tmp_path / "data" / "Tiny", trainval_pids=(0,), test_pids=(1, 2))
    logs = tmp_path / "logs"
    assert main(cli_args(tiny_config(tmp_path / "data", logs, batch_size=2))) == 2
    err = _error(capsys)
    assert f"{tmp_path / 'data' / 'Tiny' / 'splits.json'}: split 0 trains on 1 identity (pid 0)" in err, err
    assert not logs.exists()


def test_train_on_one_training_identity_names_the_split(tmp_path, capsys):
    make_openreid(tmp_path / "data" / "Tiny", trainval_pids=(0,), test_pids=(1, 2), poses=True)
    checkpoints = tmp_path / "ck"
    assert main(["train", "-d", "tiny", "--dataroot", str(tmp_path / "data"), "--checkpoints", str(checkpoints),
                 "--name", "x", "--device", "cpu", "--height", "64", "--width", "32", "-b", "2", "-j", "0",
                 "--display-id", "0", "--arch", "resnet18"]) == 2
    err = _error(capsys)
    assert f"{tmp_path / 'data' / 'Tiny' / 'splits.json'}: split 0 trains on 1 identity (pid 0)" in err, err
    assert not (checkpoints / "x").exists()


def test_a_long_reader_error_is_cut_at_a_word_and_marked():
    from streid_core.models.torch_file import first_line

    long = RuntimeError("PytorchStreamReader failed reading zip archive: failed finding central directory " * 3
                        + "\nsecond line")
    line = first_line(long)
    assert line.endswith("...") and len(line) <= 123 and "second" not in line
    assert long.args[0].startswith(line[:-3]) and line[-4] != " " and line[:-3].split()[-1] in long.args[0].split()
    assert first_line(RuntimeError("short text\nmore")) == "short text"
    assert first_line(EOFError()) == ""
