"""Bad data is found before training (issue 13, section 2): images, pose files and the split's
semantics are checked before the first epoch, all problems reported as one line, and an error
inside a DataLoader worker still reaches the user as that one line."""
import io
import json

import h5py
import numpy as np
import pytest
import torch
from _make_datasets import jpeg_bytes, make_dancereid, make_openreid, truncate_jpeg
from _make_train_run import DATASET, cli_args, single_thread, tiny_config, tiny_openreid
from PIL import Image

from streid_core.cli import main
from streid_core.data import load_dataset
from streid_core.data.dataset import validate
from streid_core.data.validation import check_run_data, image_problem
from streid_core.errors import StreidError
from streid_core.evaluation.features import extract_features

_one_thread = pytest.fixture(scope="module", autouse=True)(single_thread)


def _check(root, poses=False):
    ds = load_dataset(root)
    return check_run_data(ds, ds.train, ds.val, with_poses=poses, threads=2)


def _image(root, pid, cam=0, i=0):
    return root / "images" / f"{pid:08d}_{cam:02d}_{i:04d}.jpg"


def _png_bytes():
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, size=(128, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _rewrite_split(root, **lists):
    splits = json.loads((root / "splits.json").read_text())
    splits[0].update(lists)
    (root / "splits.json").write_text(json.dumps(splits))


# ------------------------------------------------------------------------------ images


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_a_truncated_image_is_named(tmp_path, fmt):
    root = make_openreid(tmp_path / "d")
    bad = _image(root, 1)
    bad.write_bytes(jpeg_bytes(size=(64, 128)) if fmt == "jpeg" else _png_bytes())  # Market's size
    truncate_jpeg(bad)  # the first half of the file, as an interrupted copy leaves it
    with pytest.raises(StreidError) as caught:
        _check(root)
    message = str(caught.value)
    assert message.startswith(f"{bad}: truncated or corrupt {fmt.upper()}") and "\n" not in message
    assert message.endswith("or pass --skip-validation to run anyway") and "more" not in message


def test_a_zero_byte_image_and_the_count_of_the_others(tmp_path):
    root = make_openreid(tmp_path / "d")
    _image(root, 0).write_bytes(b"")
    for pid in (2, 7):  # a training and a test image
        truncate_jpeg(_image(root, pid))
    with pytest.raises(StreidError, match=r"^\S+00000000_00_0000.jpg: empty image file \(0 bytes\); replace or "
                                          r"delete it \(and 2 more bad images\); or pass --skip-validation"):
        _check(root)
    # a file cut inside its header fails at the header
    assert image_problem(str(_image(root, 2))).endswith("not a readable image (Truncated File Read); replace or delete it")


def test_bytes_after_the_end_marker_are_no_false_alarm_and_good_data_passes(tmp_path):
    root = make_openreid(tmp_path / "d", poses=True)
    padded = _image(root, 3)
    padded.write_bytes(padded.read_bytes() + b"\0" * 500)  # some writers pad files; PIL decodes them
    png = _image(root, 4)
    png.write_bytes(_png_bytes())
    assert image_problem(str(padded)) is None and image_problem(str(png)) is None
    result = _check(root, poses=True)
    assert result.images == 9 * 2 * 2 and result.poses == 5 * 2 * 2  # every image; the train images' poses


def test_an_image_too_small_to_be_a_crop_is_refused(tmp_path):
    root = make_openreid(tmp_path / "d")
    _image(root, 8).write_bytes(jpeg_bytes(size=(2, 2)))
    with pytest.raises(StreidError, match=r"00000008_00_0000.jpg: 2x2 pixels is no person crop"):
        _check(root)


def test_an_hdf5_image_entry_holding_a_decoded_array_is_refused(tmp_path):
    root = make_dancereid(tmp_path / "DanceReID", h5=True)
    with h5py.File(root / "DanceReID.h5", "a") as handle:
        del handle["dataset/images/0001_000005"]
        handle.create_dataset("dataset/images/0001_000005", data=np.zeros((32, 16, 3), np.uint8))
    with pytest.raises(StreidError, match=r"DanceReID.h5::dataset/images/0001_000005: holds a 32x16x3 uint8 array, "
                                          r"expected encoded JPEG/PNG bytes"):
        _check(root, poses=True)


# ------------------------------------------------------------------------------ poses


def test_a_pose_file_with_nan_is_refused(tmp_path):
    root = make_openreid(tmp_path / "d", poses=True)  # FD-GAN poses: 18 OpenPose lines "row col"
    pose = root / "poses" / "00000001_01_0001.txt"
    lines = pose.read_text().splitlines()
    lines[5] = "nan 12"
    pose.write_text("\n".join(lines) + "\n")
    with pytest.raises(StreidError, match=rf"^{pose}: line 6 holds a non-finite number; fix this pose file; or pass"):
        _check(root, poses=True)
    _check(root, poses=False)  # a run that reads no poses (the baseline) is not refused for them


def test_poses_written_for_another_image_size_are_refused(tmp_path):
    # the fixture's 16x32 images were, say, downscaled from 128x256 crops without their poses
    root = make_dancereid(tmp_path / "DanceReID")
    pose = root / "poses" / "0001_000005.txt"
    keypoints = np.loadtxt(pose)
    np.savetxt(pose, keypoints * 8, fmt="%s")
    assert (keypoints * 8 >= [16, 32]).any(axis=1).all()  # every joint off the 16x32 image
    with pytest.raises(StreidError, match=rf"^{pose}: none of its 17 joints lies inside its 16x32 image "
                                          rf"{root / 'images' / '0001_000005.jpg'}; pose coordinates are pixels"):
        _check(root, poses=True)
    with pytest.raises(StreidError, match=r"0001_000005.txt: none of its 17 joints lies inside"):
        validate(root, progress=False)  # `streid info --check`
    # one joint inside is enough (a pose partly outside its crop is normal), and so is a pose
    # that gives no joint at all (the detector found none: blank maps, as in the original)
    keypoints = keypoints * 8
    keypoints[4] = [3.0, 7.0]
    np.savetxt(pose, keypoints, fmt="%s")
    _check(root, poses=True)
    np.savetxt(pose, np.full((17, 2), -1.0), fmt="%s")
    _check(root, poses=True)


def test_a_dancereid_pose_file_with_18_lines_is_refused(tmp_path):
    root = make_dancereid(tmp_path / "DanceReID")  # COCO-17: 17 lines "x y"
    pose = root / "poses" / "0002_000010.txt"
    pose.write_text(pose.read_text() + "12.5 40.0\n")  # an OpenPose-18 file among COCO-17 ones
    with pytest.raises(StreidError, match=r"0002_000010.txt: pose file has 18 lines, expected 17 \(coco17"):
        _check(root, poses=True)


# ------------------------------------------------------------------------------ split


def test_test_identities_in_trainval_are_refused(tmp_path):
    root = make_openreid(tmp_path / "d")  # trainval 0-5, test 6-8
    _rewrite_split(root, trainval=[0, 1, 2, 3, 4, 5, 7, 8])
    with pytest.raises(StreidError, match=rf"^{root / 'splits.json'}: split 0 puts 2 test identities in trainval "
                                          r"too \(pid 7, 8\), so the test numbers would be measured on trained"):
        _check(root)
    with pytest.raises(StreidError, match=r"puts 2 test identities in trainval"):  # `streid info --check` too
        validate(root, progress=False)
    # the released DanceReID split overlaps (ids 35-39): --release-compat reproduces it
    dataset = load_dataset(root)
    assert check_run_data(dataset, dataset.trainval, allow_split_overlap=True).images > 0


def test_a_duplicated_query_identity_is_refused(tmp_path):
    root = make_openreid(tmp_path / "d")
    _rewrite_split(root, query=[6, 7, 7, 8])
    with pytest.raises(StreidError, match=r"splits.json: split 0 lists 4 query image\(s\) more than once \(pid 7, "
                                          r"e.g. \S+00000007_00_0000.jpg\), which changes R1 and mAP"):
        _check(root)


def test_a_query_identity_without_a_match_from_another_camera_is_refused(tmp_path):
    root = make_openreid(tmp_path / "d", num_cameras=1)  # every image of an identity from the same camera
    with pytest.raises(StreidError, match=r"split 0 query pid 6, 7, 8 have no gallery image from another camera "
                                          r"\(same-pid same-camera images are junk\).* \(and 1 more split problem\)"):
        _check(root)  # the other problem: the validation identity cannot be scored either


def test_dancereid_needs_query_equal_to_gallery(tmp_path):
    root = make_dancereid(tmp_path / "DanceReID")  # test = video 7jRvxkYuYvk, pids 5 and 6
    _rewrite_split(root, query=[5])
    with pytest.raises(StreidError, match=r"split 0 has a query set different from its gallery set, but protocol "
                                          r"'dancereid' evaluates query = gallery"):
        _check(root)


# ------------------------------------------------------------------------------ the commands


def test_a_bad_test_image_stops_baseline_before_the_first_epoch(tmp_path, capsys):
    data = tiny_openreid(tmp_path / "data")  # trainval 0-11, test 12-15
    bad = _image(data / DATASET, 14, cam=1, i=2)
    truncate_jpeg(bad.write_bytes(jpeg_bytes(size=(64, 128))) and bad)
    logs = tmp_path / "logs"
    assert main(cli_args(tiny_config(data, logs, epochs=1, max_iters_per_epoch=1))) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"streid: error: {bad}: truncated or corrupt JPEG") and "\n" not in err, err
    assert err.endswith("; or pass --skip-validation to run anyway")
    assert not logs.exists() or not any(logs.iterdir())  # no log, no checkpoint: no epoch ran


def test_streid_train_validates_poses_and_skip_validation_is_a_config_field(tmp_path, capsys):
    root = make_dancereid(tmp_path / "data" / "DanceReID")
    pose = root / "poses" / "0000_000000.txt"
    pose.write_text(pose.read_text().replace("\n", "\nnan nan\n", 1))
    argv = ["train", "--dataroot", str(tmp_path / "data"), "--checkpoints", str(tmp_path / "ck"), "--arch", "resnet18",
            "--height", "64", "--width", "32", "-b", "2", "-j", "0", "--niter", "1", "--niter-decay", "0",
            "--max-iters-per-epoch", "1", "--display-id", "0", "--device", "cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert f"{pose}: pose file has 18 lines, expected 17" in err and "\n" not in err
    assert not (tmp_path / "ck").exists()

    from streid_core.cli import build_parser
    from streid_core.cli.train import run_config

    assert run_config(build_parser().parse_args(argv + ["--skip-validation"])).skip_validation
    assert not run_config(build_parser().parse_args(argv)).skip_validation
    assert tiny_config(tmp_path, tmp_path).skip_validation is False


def test_an_error_in_a_dataloader_worker_is_one_line(tmp_path, capsys):
    data = tiny_openreid(tmp_path / "data")
    for path in (data / DATASET / "images").glob("0000000[0-9]_*.jpg"):  # every batch meets a bad image
        truncate_jpeg(path)
    config = tiny_config(data, tmp_path / "logs", epochs=1, max_iters_per_epoch=1, workers=2, skip_validation=True)
    assert main(cli_args(config)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("streid: error: ") and "\n" not in err, err
    assert "truncated image" in err and "/images/0000000" in err and "replace or delete this file" in err
    assert "Traceback" not in err and "worker" not in err


def test_an_error_in_an_evaluation_worker_is_the_original_streid_error(tmp_path):
    root = make_openreid(tmp_path / "d")
    records = load_dataset(root).query
    bad = truncate_jpeg(_image(root, 7))
    with pytest.raises(StreidError) as caught:
        extract_features(torch.nn.Flatten(), records, batch_size=2, num_workers=2, height=16, width=8)
    assert str(caught.value).startswith(f"{bad}: corrupt or truncated image (") and "\n" not in str(caught.value)
