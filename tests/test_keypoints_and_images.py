"""Pose files and images as the real datasets store them."""
import io

import h5py
import numpy as np
import pytest
from PIL import Image

from streid_core.data.images import h5_path, load_image
from streid_core.data.keypoints import (
    COCO17,
    OPENPOSE18,
    flip_keypoints,
    format_keypoints,
    load_keypoints,
    parse_keypoints,
    read_keypoints,
)
from streid_core.data.validation import image_problem
from streid_core.errors import StreidError


def test_dancereid_pose_file_is_x_then_y():
    text = "\n".join(f"{10 + j}.5 {100 + j}" for j in range(17))
    kps = parse_keypoints(text, COCO17)
    assert kps.shape == (17, 2)
    assert kps[3].tolist() == [13.5, 103.0]


def test_fdgan_pose_file_is_row_then_col_with_minus_one_missing():
    lines = ["-1 -1"] * 18
    lines[1] = "40 20"  # neck at row 40, column 20
    kps = parse_keypoints("\n".join(lines), OPENPOSE18)
    assert kps[1].tolist() == [20.0, 40.0]
    assert np.isnan(kps[0]).all() and np.isnan(kps[17]).all()


def test_round_trip_through_text_keeps_missing_joints(tmp_path):
    kps = np.arange(34, dtype=np.float32).reshape(17, 2)
    kps[5] = np.nan
    path = tmp_path / "p.txt"
    path.write_text(format_keypoints(kps, COCO17))
    back = read_keypoints(path, COCO17)
    assert np.isnan(back[5]).all()
    np.testing.assert_allclose(np.delete(back, 5, 0), np.delete(kps, 5, 0))


@pytest.mark.parametrize(
    "text, fragment",
    [("1 2\n" * 16, "16 lines, expected 17"), ("1 2\n" * 16 + "a b\n", "line 17")],
)
def test_bad_pose_files_name_the_file_and_the_problem(tmp_path, text, fragment):
    path = tmp_path / "0001_000005.txt"
    path.write_text(text)
    with pytest.raises(StreidError) as err:
        read_keypoints(path, COCO17)
    message = str(err.value)
    assert str(path) in message and fragment in message and "\n" not in message


def test_flip_mirrors_x_and_swaps_left_right():
    kps = np.full((17, 2), np.nan, dtype=np.float32)
    kps[5] = (10, 50)  # left shoulder near the left edge
    flipped = flip_keypoints(kps, 128, COCO17)
    assert flipped[6].tolist() == [117.0, 50.0]  # now the right shoulder, at 127 - 10
    assert np.isnan(flipped[5]).all()


def _jpeg_bytes(size=(8, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


def test_a_file_that_is_no_image_says_so_without_pil_internals(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is a text file with a .jpg name\n")
    with pytest.raises(StreidError) as caught:
        load_image(str(path))
    assert str(caught.value) == (f"{path}: corrupt or truncated image (not an image format PIL can read); "
                                 "replace or delete this file")
    assert image_problem(str(path)) == f"{path}: not a readable image (not an image format PIL can read); replace or delete it"


def test_truncated_jpeg_is_reported_with_its_path(tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(_jpeg_bytes()[:60])
    with pytest.raises(StreidError, match="broken.jpg: corrupt or truncated image"):
        load_image(str(path))


def test_hdf5_variant_images_and_poses(tmp_path):
    file = tmp_path / "DanceReID.h5"
    with h5py.File(file, "w") as h5:
        h5["dataset/images/0001_000005.jpg"] = np.frombuffer(_jpeg_bytes(), dtype=np.uint8)
        pose = np.tile([[3.0, 4.0]], (17, 1))
        pose[2] = (-1, -1)
        h5["dataset/poses/0001_000005.jpg"] = pose
    image = load_image(h5_path(str(file), "dataset/images/0001_000005.jpg"))
    assert image.size == (8, 16) and image.mode == "RGB"
    kps = load_keypoints(h5_path(str(file), "dataset/poses/0001_000005.jpg"), COCO17)
    assert kps[0].tolist() == [3.0, 4.0] and np.isnan(kps[2]).all()
    with pytest.raises(StreidError, match="no entry"):
        load_image(h5_path(str(file), "dataset/images/missing.jpg"))
