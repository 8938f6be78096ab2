"""User errors of synth, synth-video, prepare, info, transfer, export and notebooks that must be
one line, exit 2, before the work and with nothing written (test_hostile_inputs.py and
test_hostile_inputs_more.py, continued): negative seeds and crops too large to render, outputs
that would replace their own inputs or the current folder, image formats PIL cannot write,
binary pose and parameter files, TorchScript files passed as checkpoints, flags that would be
ignored, and run names that leave --reports."""
import os
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from _make_checkpoint import make_checkpoint
from _make_datasets import make_custom_csv, make_custom_folder, make_market_raw, write_jpeg
from _make_train_run import single_thread

from streid_core.cli import main, os_error_line

_one_thread = pytest.fixture(scope="module", autouse=True)(single_thread)

TINY_SYNTH = ["synth", "--ids", "6", "--videos", "2", "--frames", "4", "--height", "64", "--width", "32",
              "--no-report", "--workers", "1"]
TINY_VIDEO = ["synth-video", "--sequences", "1", "--frames", "2", "--width", "64", "--height", "48", "--workers", "1"]


def _error(capsys) -> str:
    """The one line the CLI printed on stderr (one line, no traceback, no warning)."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("streid: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` (hidden ones included) with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _damaged(path: Path) -> Path:
    path.write_bytes(b"\x80\x02garbage")
    return path


# ------------------------------------------------------------------ synth / synth-video numbers


@pytest.mark.parametrize("argv, words", [
    (TINY_SYNTH + ["--seed", "-1"], "--seed -1: must be >= 0"),
    (TINY_VIDEO + ["--seed", "-3"], "--seed -3: must be >= 0"),
    (TINY_SYNTH + ["--height", "100000"], "--height 100000 --width 32: crops larger than 2048x2048"),
    (TINY_SYNTH + ["--width", "1000000"], "--height 64 --width 1000000: crops larger than 2048x2048"),
    (TINY_SYNTH + ["--frames", "1000000"], "--frames 1000000 --frame-step 5:"),
])
def test_synth_seeds_and_sizes_out_of_range_are_refused_before_rendering(tmp_path, capsys, argv, words):
    out = tmp_path / "out"
    assert main(argv + ["--out", str(out)]) == 2  # a negative seed was a ValueError traceback, a huge crop out of memory
    assert words in _error(capsys)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ outputs over inputs or the current folder


def test_prepare_folder_dst_over_its_src_is_refused_and_the_images_kept(tmp_path, capsys):
    src = make_custom_folder(tmp_path / "people", {"alice": 2, "bob": 2})
    before = _tree(tmp_path)
    for dst in (src, tmp_path):  # the source itself, or a folder holding it: --overwrite deleted the images
        assert main(["prepare", "folder", "--src", str(src), "--dst", str(dst), "--overwrite"]) == 2
        assert f"--dst {dst}: holds --src {src}, which the new dataset would replace" in _error(capsys)
        assert _tree(tmp_path) == before


def test_prepare_csv_dst_over_the_csv_or_its_images_is_refused(tmp_path, capsys):
    csv_file = make_custom_csv(tmp_path / "mine", [{"path": "imgs/a.jpg", "pid": 1}, {"path": "imgs/b.jpg", "pid": 2}])
    before = _tree(tmp_path)
    assert main(["prepare", "folder", "--csv", str(csv_file), "--dst", str(csv_file.parent), "--overwrite"]) == 2
    assert f"--dst {csv_file.parent}: holds --csv {csv_file}" in _error(capsys)
    images = csv_file.parent / "imgs"
    assert main(["prepare", "folder", "--csv", str(csv_file), "--dst", str(images), "--overwrite"]) == 2
    assert f"--dst {images}: holds {images / 'a.jpg'} ({csv_file}: line 2)" in _error(capsys)
    assert _tree(tmp_path) == before


def test_prepare_market_dst_over_the_raw_folder_inside_src_is_refused(tmp_path, capsys):
    raw = make_market_raw(tmp_path / "downloads" / "Market-1501-v15.09.15", train=[(1, 1), (1, 2), (2, 1), (2, 3)],
                          test=[(3, 1), (3, 2), (4, 1), (4, 2)], query=[(3, 3), (4, 3)])
    before = _tree(tmp_path)
    assert main(["prepare", "market1501", "--src", str(raw.parent), "--dst", str(raw), "--overwrite"]) == 2
    assert f"--dst {raw}: holds the Market-1501 folder {raw}" in _error(capsys)
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("dst, words", [
    ("{file}", "--dst {file}: is a file, not a folder"),  # with --overwrite the file became a dataset folder
    ("{file}/x", "--dst {file}/x: cannot create it, {file} is a file"),  # was "a-file: File exists"
])
def test_prepare_dst_that_is_or_lies_under_a_file_is_refused(tmp_path, capsys, dst, words):
    src = make_custom_folder(tmp_path / "people", {"alice": 2, "bob": 2})
    blocker = tmp_path / "a-file"
    blocker.write_text("mine")
    fill = {"file": blocker}
    assert main(["prepare", "folder", "--src", str(src), "--dst", dst.format(**fill), "--overwrite"]) == 2
    assert words.format(**fill) in _error(capsys)
    assert blocker.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "people"]


def test_prepare_csv_camera_id_too_large_is_refused_naming_the_line(tmp_path, capsys):
    csv_file = make_custom_csv(tmp_path / "mine", [{"path": "a.jpg", "pid": 1, "camid": 0},
                                                   {"path": "b.jpg", "pid": 2, "camid": 99999999999}],
                               columns=("path", "pid", "camid"))
    dst = tmp_path / "out"
    assert main(["prepare", "folder", "--csv", str(csv_file), "--dst", str(dst)]) == 2  # was out of memory
    assert f"{csv_file}: line 3: camid 99999999999 is above 99" in _error(capsys)
    assert not dst.exists()


@pytest.mark.parametrize("command", ["synth", "prepare"])
def test_an_output_holding_the_current_folder_is_refused_before_the_work(tmp_path, capsys, monkeypatch, command):
    src = make_custom_folder(tmp_path / "people", {"alice": 2, "bob": 2})
    here = tmp_path / "here"
    here.mkdir()
    (here / "keep.txt").write_text("mine")
    monkeypatch.chdir(here)
    argv = TINY_SYNTH + ["--out", ".", "--overwrite"] if command == "synth" else \
        ["prepare", "folder", "--src", str(src), "--dst", ".", "--overwrite"]
    if command == "prepare":
        argv[-2] = str(Path("..") / "here")
    before = _tree(tmp_path)
    assert main(argv) == 2  # renaming "." failed after the work, leaving an empty ".<name>.old" folder
    assert f"{here}: holds the current folder, which cannot be replaced" in _error(capsys)
    assert _tree(tmp_path) == before and sorted(p.name for p in here.iterdir()) == ["keep.txt"]


def test_generated_folders_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        assert main(TINY_SYNTH + ["--out", str(tmp_path / "out")]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755  # was 0700: no one else could read it


# ------------------------------------------------------------------ pose files


def test_a_binary_pose_file_is_one_line_naming_it(tmp_path, capsys):
    root = tmp_path / "data"
    assert main(TINY_SYNTH + ["--out", str(root)]) == 0
    capsys.readouterr()
    pose = sorted((root / "poses").iterdir())[0]
    pose.write_bytes(bytes(range(128, 256)))  # was a UnicodeDecodeError traceback
    assert main(["info", str(root), "--check"]) == 2
    assert f"{pose}: not a text pose file (not UTF-8 text)" in _error(capsys)


def test_pose_coordinates_far_off_the_canvas_are_missing_without_a_warning():
    from streid_core.data.pose import canvas_pixels

    kps = np.array([[1e30, 1e30], [-1e30, 5.0], [3.0, 4.0], [np.nan, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # was "RuntimeWarning: invalid value encountered in cast" on stderr
        rows, cols, present = canvas_pixels(kps, 64, 32)
    assert present.tolist() == [False, False, True, False] and (rows[2], cols[2]) == (4, 3)


# ------------------------------------------------------------------ transfer


@pytest.fixture(scope="module")
def transfer_files(tmp_path_factory):
    """A transfer checkpoint (no source-limbs painting), a source image and a coco17 pose."""
    from _make_transfer_checkpoint import make_transfer_checkpoint
    from streid_core.data.keypoints import COCO17, write_keypoints

    folder = tmp_path_factory.mktemp("transfer")
    checkpoint = make_transfer_checkpoint(folder / "checkpoint.pth.tar")
    write_jpeg(folder / "source.jpg", 1, 0, size=(16, 32))
    kps = np.stack([np.linspace(2, 13, 17), np.linspace(2, 29, 17)], axis=1).astype(np.float32)
    write_keypoints(folder / "pose.txt", kps, COCO17)
    return checkpoint, folder / "source.jpg", folder / "pose.txt"


def _transfer(checkpoint, source, pose, out, *extra) -> list[str]:
    return ["transfer", "--checkpoint", str(checkpoint), "--source", str(source), "--pose", str(pose),
            "--out", str(out), "--device", "cpu", *extra]


@pytest.mark.parametrize("name", ["out.psd", "out.xbm"])
def test_transfer_out_in_a_format_pil_cannot_write_is_refused_before_the_checkpoint(tmp_path, capsys, name):
    checkpoint = _damaged(tmp_path / "checkpoint.pth.tar")  # reading it would fail with another message
    source = write_jpeg(tmp_path / "source.jpg", 1, 0)
    pose = tmp_path / "pose.txt"
    pose.write_text("1 1\n" * 17)
    out = tmp_path / name
    assert main(_transfer(checkpoint, source, pose, out)) == 2  # .psd was a KeyError traceback after the drawing
    assert f"--out {out}: PIL cannot write an RGB image as '{out.suffix}'" in _error(capsys)
    assert not out.exists()


def test_transfer_out_that_is_the_source_image_is_refused(tmp_path, capsys):
    checkpoint = _damaged(tmp_path / "checkpoint.pth.tar")
    source = write_jpeg(tmp_path / "source.jpg", 1, 0)
    pose = tmp_path / "pose.txt"
    pose.write_text("1 1\n" * 17)
    before = _tree(tmp_path)
    assert main(_transfer(checkpoint, source, pose, tmp_path / "." / "source.jpg")) == 2  # was overwritten
    assert "is also the --source file, which writing it would replace" in _error(capsys)
    assert _tree(tmp_path) == before


def test_transfer_refuses_a_binary_pose_and_a_source_pose_it_would_ignore(transfer_files, tmp_path, capsys):
    checkpoint, source, pose = transfer_files
    binary = tmp_path / "binary.txt"
    binary.write_bytes(bytes(range(128, 256)))
    out = tmp_path / "out.png"
    assert main(_transfer(checkpoint, source, binary, out)) == 2  # was a UnicodeDecodeError traceback
    assert f"--pose {binary}: not a text pose file" in _error(capsys)
    assert main(_transfer(checkpoint, source, pose, out, "--source-pose", str(pose))) == 2  # was silently ignored
    assert f"--source-pose {pose}: this checkpoint's G does not paint the source's limbs" in _error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["binary.txt"]
    assert main(_transfer(checkpoint, source, pose, out)) == 0  # the same files without the flag draw
    assert out.is_file()


def test_transfer_names_a_bad_source_or_pose_before_reading_the_checkpoint(tmp_path, capsys):
    checkpoint = _damaged(tmp_path / "checkpoint.pth.tar")  # reading it would fail with another message
    source = write_jpeg(tmp_path / "source.jpg", 1, 0)
    pose = tmp_path / "pose.txt"
    pose.write_text("1 1\n" * 17)
    out = tmp_path / "out.png"
    text = tmp_path / "notes.jpg"
    text.write_text("not an image\n")
    assert main(_transfer(checkpoint, text, pose, out)) == 2
    assert _error(capsys) == f"streid: error: --source {text}: not a readable image (not an image format PIL can read); replace or delete it"
    assert main(_transfer(checkpoint, source, tmp_path / "missing.txt", out)) == 2
    assert f"--pose {tmp_path / 'missing.txt'}: cannot read pose file (No such file or directory)" in _error(capsys)
    assert main(_transfer(checkpoint, source, pose, out, "--keypoints", "openpose18")) == 2  # 17 lines, not 18
    assert f"{pose}: pose file has 17 lines, expected 18 (openpose18" in _error(capsys)
    assert not out.exists()


# ------------------------------------------------------------------ export


@pytest.mark.parametrize("flags, words", [
    (["--torchscript", "{checkpoint}"], "--torchscript {checkpoint}: is also the --checkpoint file"),
    (["--onnx", "{checkpoint}"], "--onnx {checkpoint}: is also the --checkpoint file"),
    (["--onnx", "{tmp}/model.x", "--torchscript", "{tmp}/model.x"], "--torchscript {tmp}/model.x: is also the --onnx file"),
])
def test_export_over_its_own_checkpoint_is_refused_and_the_checkpoint_kept(tmp_path, capsys, flags, words):
    checkpoint = make_checkpoint(tmp_path / "model.pth.tar")
    before = checkpoint.read_bytes()
    fill = {"checkpoint": checkpoint, "tmp": tmp_path}
    assert main(["export", "--checkpoint", str(checkpoint), *[f.format(**fill) for f in flags]]) == 2
    assert words.format(**fill) in _error(capsys)  # the checkpoint was replaced by the TorchScript file
    assert checkpoint.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["model.pth.tar"]


def test_a_torchscript_file_passed_as_checkpoint_says_what_it_is(tmp_path, capsys):
    scripted = tmp_path / "encoder.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(scripted))
    out = tmp_path / "again.pt"
    assert main(["export", "--checkpoint", str(scripted), "--torchscript", str(out)]) == 2
    assert f"{scripted}: is a TorchScript model (a `streid export --torchscript` output), not a checkpoint" \
        in _error(capsys)  # torch's two-line UserWarning used to come first
    assert not out.exists()


def test_an_os_error_without_errno_keeps_its_own_text():
    error = OSError("cannot write mode RGB as XBM")
    error.filename = "out.xbm"  # as atomic_file sets it; str() then reads "[Errno None] None: 'out.xbm'"
    assert os_error_line(error) == "out.xbm: cannot write mode RGB as XBM"


# ------------------------------------------------------------------ notebooks


@pytest.fixture
def no_notebook_runs(monkeypatch):
    """Fail, rather than run a notebook (which would write reports and generate data), should a
    check under test let the run through."""
    from streid_core.reporting import notebooks

    def refuse(*args, **kwargs):
        raise AssertionError("a notebook ran")

    monkeypatch.setattr(notebooks, "execute", refuse)


def test_notebooks_binary_parameters_file_is_one_line(tmp_path, capsys, no_notebook_runs):
    params = tmp_path / "params.yaml"
    params.write_bytes(bytes(range(128, 256)))
    reports = tmp_path / "reports"
    assert main(["notebooks", "run", "01", "--params", str(params), "--reports", str(reports)]) == 2
    assert f"{params}: not valid YAML/JSON" in _error(capsys)  # was a UnicodeDecodeError traceback
    assert not reports.exists()


@pytest.mark.parametrize("run_name, words", [
    ("../../elsewhere", "--run-name '../../elsewhere': must name one folder under --reports"),
    ("{tmp}/elsewhere", "--run-name '{tmp}/elsewhere': must name one folder under --reports"),
    ("..", "--run-name '..': must name one folder under --reports"),
    ("a-file", "--run-name {reports}/a-file: is a file, not a folder"),
])
def test_notebooks_run_name_outside_reports_or_a_file_is_refused_before_any_notebook(tmp_path, capsys, run_name,
                                                                                     words, no_notebook_runs):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "a-file").write_text("")
    fill = {"reports": reports, "tmp": tmp_path}
    assert main(["notebooks", "run", "01", "--run-name", run_name.format(**fill), "--reports", str(reports)]) == 2
    assert words.format(**fill) in _error(capsys)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a-file", "reports"]
