"""`streid pose` and the MediaPipe -> COCO-17 conversion.

The conversion, the folder rules (--overwrite, no-person images) and the missing-extra message
run everywhere. The tests that run MediaPipe itself skip when the optional extra is absent,
except under CI, where its absence is a failure.
"""
from __future__ import annotations

import shlex
import shutil
import sys

import numpy as np
import pytest
from PIL import Image

from _ci import missing_dependency
from streid_core.cli import main
from streid_core.data.keypoints import COCO17, read_keypoints
from streid_core.data.pose_estimation import (
    MediaPipePoseEstimator,
    check_protobuf_version,
    estimate_folder,
    install_command,
    list_images,
    mediapipe_to_coco17,
)
from streid_core.errors import StreidError

LOWER_BODY = [COCO17.names.index(n) for n in ("left_hip", "right_hip", "left_knee", "right_knee",
                                               "left_ankle", "right_ankle")]


@pytest.fixture
def mediapipe_installed() -> None:
    try:
        from mediapipe.python.solutions import pose  # noqa: F401
    except Exception as exc:  # ImportError, or a protobuf mismatch failing inside mediapipe's import
        missing_dependency(f"the optional mediapipe extra cannot be imported ({type(exc).__name__}: {exc}); "
                           f"install it with: {install_command()}")


@pytest.fixture
def grace_hopper(tmp_path):
    """A folder with matplotlib's frontal head-and-shoulders portrait and a blank grey image."""
    from matplotlib import cbook

    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), images / "grace_hopper.jpg")
    Image.new("RGB", (128, 256), (128, 128, 128)).save(images / "blank.png")
    return images


def test_mediapipe_to_coco17_by_hand():
    lms = np.zeros((33, 3))
    lms[:, 2] = 1.0
    lms[:, :2] = 0.5  # every landmark at the image centre unless set below
    lms[0] = (0.25, 0.10, 0.90)   # nose       -> (0.25*200, 0.10*100) = (50, 10)
    lms[1] = (0.99, 0.99, 1.00)   # left eye INNER corner: not a COCO joint, must not appear
    lms[2] = (0.30, 0.05, 0.50)   # left eye   -> (60, 5); visibility == threshold is kept
    lms[5] = (0.20, 0.05, 0.49)   # right eye  -> below the threshold: missing
    lms[11] = (0.70, 0.40, 0.99)  # l-shoulder -> (140, 40)
    lms[12] = (0.10, 0.42, 0.99)  # r-shoulder -> (20, 42)
    lms[16] = (1.00, 0.50, 0.99)  # r-wrist    -> x = 200 = width: outside [0, 200): missing
    lms[23] = (0.60, -0.01, 0.99)  # l-hip     -> y = -1: outside: missing
    lms[28] = (0.999, 0.999, 0.99)  # r-ankle  -> (199.8, 99.9): last pixel, inside
    kps = mediapipe_to_coco17(lms, width=200, height=100, min_visibility=0.5)

    assert kps.shape == (17, 2) and kps.dtype == np.float32
    np.testing.assert_allclose(kps[0], (50, 10))
    np.testing.assert_allclose(kps[1], (60, 5))
    assert np.isnan(kps[2]).all()
    np.testing.assert_allclose(kps[5], (140, 40))
    np.testing.assert_allclose(kps[6], (20, 42))
    assert np.isnan(kps[10]).all() and np.isnan(kps[11]).all()
    np.testing.assert_allclose(kps[16], (199.8, 99.9), rtol=1e-6)
    # COCO 3 (left ear) is MediaPipe 7, left at the centre: (0.5*200, 0.5*100) = (100, 50).
    np.testing.assert_allclose(kps[3], (100, 50))
    assert not np.any(np.isclose(kps, 198.0))  # the inner eye corner (0.99 * 200) was not used


def test_without_mediapipe_the_command_prints_the_install_line(tmp_path, monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "mediapipe" or m.startswith("mediapipe.")] + ["mediapipe"]:
        monkeypatch.setitem(sys.modules, name, None)  # makes `import mediapipe...` raise ImportError
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (64, 128)).save(images / "a.png")

    code = main(["pose", "--images", str(images), "--out", str(tmp_path / "poses")])

    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert install_command() in err
    assert "--no-deps mediapipe==0.10.21" in err
    assert "'protobuf>=4.25.3,<5'" in err  # quoted, so a shell does not read "<5" as a redirect
    assert not (tmp_path / "poses").exists()


def test_install_line_pins_back_what_protobuf_4_would_break(monkeypatch):
    from streid_core.data import pose_estimation

    installed = {"tensorboard": "2.21.0", "onnx": "1.23.2", "setuptools": "84.2.1"}
    monkeypatch.setattr(pose_estimation, "_installed_version", installed.get)
    line = install_command()
    assert line.startswith(f"{shlex.quote(sys.executable)} -m pip install --no-deps mediapipe==0.10.21 ")
    for pin in ("'protobuf>=4.25.3,<5'", "'tensorboard<2.20'", "'setuptools<81'", " six", "'onnx<1.23'"):
        assert pin in line

    installed.update(tensorboard="2.19.0", onnx="1.22.0")  # already compatible: left alone
    line = install_command()
    assert "'protobuf>=4.25.3,<5'" in line
    assert "tensorboard" not in line and "onnx" not in line and "setuptools" not in line

    installed.clear()  # neither installed: nothing to pin back
    assert "tensorboard" not in install_command() and "onnx" not in install_command()


def test_protobuf_5_or_newer_is_refused_with_the_install_line():
    check_protobuf_version("4.25.9")
    with pytest.raises(StreidError, match=r"protobuf 7\.36\.2 .*needs protobuf<5") as info:
        check_protobuf_version("7.36.2")
    assert install_command() in str(info.value)


def test_folder_rules_overwrite_and_no_person(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.jpg"):
        Image.new("RGB", (64, 128)).save(images / name)
    out = tmp_path / "poses"
    found = np.full((17, 2), np.nan, dtype=np.float32)
    found[0] = (10.5, 20.25)
    people = {"a": found, "b": None}

    def estimate_by_name(rgb):  # the images are identical; tell them apart by call order
        return people[order.pop(0)]

    order = ["a", "b"]
    summary = estimate_folder(list_images(images), out, estimate_by_name)
    assert summary.written == [out / "a.txt"] and summary.no_person == [images / "b.jpg"]
    text = (out / "a.txt").read_text().splitlines()
    assert text[0] == "10.50 20.25" and text[1:] == ["-1 -1"] * 16
    assert not (out / "b.txt").exists()

    order = ["a", "b"]
    with pytest.raises(StreidError, match=r"a\.txt.*--overwrite"):
        estimate_folder(list_images(images), out, estimate_by_name)
    assert order == ["a", "b"]  # refused before estimating anything
    assert (out / "a.txt").read_text().splitlines()[0] == "10.50 20.25"

    people = {"a": None, "b": found}  # nobody in a.png any more: its old pose file goes
    order = ["a", "b"]
    summary = estimate_folder(list_images(images), out, estimate_by_name, overwrite=True)
    assert summary.removed == [out / "a.txt"] and not (out / "a.txt").exists()
    assert summary.written == [out / "b.txt"]
    assert [p.name for p in out.iterdir()] == ["b.txt"]  # no temporary files left behind


def test_images_whose_pose_files_would_collide_are_refused(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "x.jpg")
    with pytest.raises(StreidError, match=r"x\.txt"):
        list_images(tmp_path)


def test_pose_of_a_frontal_portrait(grace_hopper, tmp_path, mediapipe_installed, capsys):
    out = tmp_path / "poses"
    code = main(["pose", "--images", str(grace_hopper), "--out", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["grace_hopper.txt"]
    assert "no person found in 1 of 2 images" in stdout and "blank.png" in stdout

    width, height = Image.open(grace_hopper / "grace_hopper.jpg").size
    kps = read_keypoints(out / "grace_hopper.txt", COCO17)
    joint = {name: kps[i] for i, name in enumerate(COCO17.names)}
    for name in ("nose", "left_eye", "right_eye", "left_shoulder", "right_shoulder"):
        assert np.isfinite(joint[name]).all(), f"{name} not detected"
    present = np.isfinite(kps).all(axis=1)
    assert np.all((kps[present] >= 0) & (kps[present] < (width, height)))
    shoulders_y = min(joint["left_shoulder"][1], joint["right_shoulder"][1])
    for name in ("nose", "left_eye", "right_eye"):
        assert joint[name][1] < shoulders_y, f"{name} is not above the shoulders"
    # Frontal photo: the person's left is on the image's right.
    assert joint["left_shoulder"][0] > joint["right_shoulder"][0]
    assert joint["left_eye"][0] > joint["right_eye"][0]
    lines = (out / "grace_hopper.txt").read_text().splitlines()
    assert len(lines) == 17
    assert all(lines[i] == "-1 -1" for i in LOWER_BODY)  # the portrait ends at the chest


def test_joints_outside_the_image_stay_missing_at_zero_visibility(grace_hopper, mediapipe_installed):
    rgb = np.asarray(Image.open(grace_hopper / "grace_hopper.jpg").convert("RGB"))
    with MediaPipePoseEstimator(min_visibility=0.0) as estimator:
        kps = estimator(rgb)
        blank = estimator(np.full((256, 128, 3), 128, dtype=np.uint8))
    assert blank is None
    # MediaPipe extrapolates a whole body below the frame; only the inside test removes it.
    assert np.isnan(kps[LOWER_BODY]).all()
    present = np.isfinite(kps).all(axis=1)
    assert np.all((kps[present] >= 0) & (kps[present] < (rgb.shape[1], rgb.shape[0])))
