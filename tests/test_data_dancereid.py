"""Loading DanceReID as its gen_DanceReID.py writes it (docs/original-system.md §6.3): flat,
--split-folder and -h5."""
import json
from pathlib import Path

import numpy as np
import pytest
from _make_datasets import coco17_pose, jpeg_bytes, make_dancereid

from streid_core.data import load_dataset
from streid_core.data.dataset import validate
from streid_core.data.images import load_image
from streid_core.data.keypoints import COCO17, load_keypoints
from streid_core.errors import StreidError

# Default fixture: videos ZhuDSdmby8k (pids 0-1), Js76pyw4UDk (2-4), 7jRvxkYuYvk (5-6, test);
# every pid at frames 0, 5, 10 -> 21 images, 15 trainval, 6 test.


def _pids(records):
    return sorted({r.pid for r in records})


def test_flat_layout_counts_frames_in_camera_slot_videos_and_poses(tmp_path):
    ds = load_dataset(make_dancereid(tmp_path / "DanceReID"))
    # num_val = min(10, 5 trainval ids // 5) = 1 -> pid 4 is validation
    assert (len(ds.train), len(ds.val), len(ds.trainval)) == (12, 3, 15)
    assert _pids(ds.train) == [0, 1, 2, 3] and _pids(ds.val) == [4]
    assert ds.query == ds.gallery and _pids(ds.query) == [5, 6] and len(ds.query) == 6
    assert ds.keypoints == "coco17" and ds.protocol == "dancereid"
    assert ds.videos == {"ZhuDSdmby8k": [0, 1], "Js76pyw4UDk": [2, 3, 4], "7jRvxkYuYvk": [5, 6]}
    record = next(r for r in ds.query if Path(r.path).name == "0006_000010.jpg")
    assert (record.pid, record.camid, record.frame, record.video) == (6, 10, 10, "7jRvxkYuYvk")
    assert Path(record.pose_path) == tmp_path / "DanceReID" / "poses" / "0006_000010.txt"
    np.testing.assert_allclose(load_keypoints(record.pose_path, COCO17), coco17_pose(6, 10), rtol=1e-6)
    assert all(r.camid == r.frame for r in ds.trainval + ds.query)


def test_split_folder_variant(tmp_path):
    root = make_dancereid(tmp_path / "DanceReID", split_folder=True)
    ds = load_dataset(root)
    assert (len(ds.trainval), len(ds.query)) == (15, 6)
    record = next(r for r in ds.trainval if r.pid == 3 and r.frame == 5)
    assert Path(record.path) == root / "images" / "001_Js76pyw4UDk" / "0003_000005.jpg"
    assert Path(record.pose_path) == root / "poses" / "001_Js76pyw4UDk" / "0003_000005.txt"
    assert record.video == "Js76pyw4UDk" and record.camid == 5
    assert validate(root, progress=False).poses == 21


def test_released_split_json_name_is_accepted_with_one_warning(tmp_path, capsys):
    ds = load_dataset(make_dancereid(tmp_path / "DanceReID", splits_name="split.json"))
    assert len(ds.query) == 6
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "split.json" in err[0] and "warning" in err[0]


def test_missing_video_json_warns_once_and_leaves_videos_empty(tmp_path, capsys):
    root = make_dancereid(tmp_path / "DanceReID", split_folder=True, video_json=False)
    ds = load_dataset(root)
    load_dataset(root)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "video.json: missing" in err[0]
    assert ds.videos == {}
    # the split-folder name still tells each record its video
    assert {r.video for r in ds.query} == {"7jRvxkYuYvk"}


def test_h5_variant_points_records_into_the_file(tmp_path):
    root = make_dancereid(tmp_path / "DanceReID", h5=True)
    assert not (root / "images").exists()
    ds = load_dataset(root)
    assert (len(ds.train), len(ds.val), len(ds.query)) == (12, 3, 6)
    record = next(r for r in ds.query if r.pid == 5 and r.frame == 5)
    h5 = str(root / "DanceReID.h5")
    assert record.path == f"{h5}::dataset/images/0005_000005"
    assert record.pose_path == f"{h5}::dataset/poses/0005_000005"
    np.testing.assert_allclose(load_keypoints(record.pose_path, COCO17), coco17_pose(5, 5), rtol=1e-6)
    assert ds.keypoints == "coco17" and record.camid == 5


def test_h5_release_images_decode(tmp_path):
    root = make_dancereid(tmp_path / "DanceReID", h5=True)
    assert validate(root, progress=False).images == 21


def test_h5_keys_with_extension_and_folder_files_alongside(tmp_path):
    """Also accept entries keyed by the full meta name ("002_<video>/0005_000000.jpg", a nested
    group in HDF5) stored as flat byte arrays."""
    import h5py

    root = make_dancereid(tmp_path / "DanceReID", h5=True, h5_keep_folders=True, split_folder=True)
    with h5py.File(root / "DanceReID.h5", "w") as handle:
        for pid, names in enumerate(json.loads((root / "meta.json").read_text())["identities"]):
            for name in names:
                frame = int(name.rsplit("/", 1)[-1][5:11])
                handle.create_dataset(f"dataset/images/{name}", data=np.frombuffer(jpeg_bytes(pid, frame, (16, 32)), np.uint8))
    ds = load_dataset(root)
    assert ds.query[0].path.endswith("DanceReID.h5::dataset/images/002_7jRvxkYuYvk/0005_000000.jpg")
    assert ds.keypoints == "none" and ds.query[0].pose_path is None  # no poses group in this file
    assert load_image(ds.query[0].path).size == (16, 32)
    assert validate(root, progress=False).images == 21


def test_released_split_shape(tmp_path):
    """The released split: trainval = pids 17-87, query = gallery = 0-11, 35-39, 88-99
    (docs/original-system.md §6.3)."""
    ids_per_video = [5, 7, 5, 3, 3, 5, 3, 4, 5, 3, 5, 5, 7, 7, 4, 8, 4, 5, 4, 5, 3]  # 21 videos, 100 ids
    root = make_dancereid(tmp_path / "DanceReID", videos=[(f"v{i:02d}", n) for i, n in enumerate(ids_per_video)],
                          frames=(0,), test_videos=(), poses=False, splits_name="split.json")
    test = list(range(12)) + list(range(35, 40)) + list(range(88, 100))
    (root / "split.json").write_text(json.dumps([{"trainval": list(range(17, 88)), "query": test, "gallery": test}]))
    ds = load_dataset(root)
    assert len(_pids(ds.trainval)) == 71 and len(_pids(ds.query)) == 29
    assert _pids(ds.val) == list(range(78, 88))  # default num_val 10: the last ten trainval pids
    assert len(_pids(ds.train)) == 61 and len(ds.videos) == 21
    assert set(_pids(ds.trainval)) & set(_pids(ds.query)) == {35, 36, 37, 38, 39}  # the release's overlap


def _edit_meta(root: Path, change) -> None:
    meta = json.loads((root / "meta.json").read_text())
    change(meta["identities"])
    (root / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "damage, named, message",
    [
        (lambda r: _edit_meta(r, lambda ids: ids[1].append("0000_000099.jpg")), "meta.json", "its name says pid 0"),
        (lambda r: _edit_meta(r, lambda ids: ids[0].append("frame99.jpg")), "meta.json", "'frame99.jpg'"),
        (lambda r: _edit_meta(r, lambda ids: ids[0].append(ids[0][0])), "meta.json", "listed twice"),
        (lambda r: (r / "images" / "0002_000005.jpg").unlink(), "0002_000005.jpg", "missing"),
        (lambda r: (r / "video.json").write_text('{"a": [0, 7]}'), "video.json", "pids in 0..6"),
        (lambda r: (r / "video.json").write_text('{"a": [0], "b": [0]}'), "video.json", "both 'a' and 'b'"),
        (lambda r: (r / "video.json").write_text("{"), "video.json", "invalid JSON"),
        (lambda r: (r / "splits.json").unlink(), "splits.json", "missing"),
    ],
    ids=["pid-mismatch", "unparsable-name", "duplicate", "missing-image", "video-bad-pid", "video-two-owners",
         "video-bad-json", "no-splits"],
)
def test_bad_dancereid_names_the_file(tmp_path, damage, named, message):
    root = make_dancereid(tmp_path / "DanceReID")
    damage(root)
    with pytest.raises(StreidError) as info:
        load_dataset(root)
    assert named in str(info.value) and message in str(info.value)


def test_validate_rejects_pose_with_wrong_line_count(tmp_path):
    root = make_dancereid(tmp_path / "DanceReID")
    pose = root / "poses" / "0001_000010.txt"
    pose.write_text("\n".join(pose.read_text().splitlines()[:16]) + "\n")
    with pytest.raises(StreidError, match=r"0001_000010.txt: pose file has 16 lines, expected 17"):
        validate(root, progress=False)
