"""Loading the open-reid layout (docs/original-system.md §6.1) with FD-GAN poses (§6.2) and
streid's official lists."""
import json
from pathlib import Path

import pytest
from _make_datasets import make_openreid, truncate_jpeg

from streid_core.data import LoadedDataset, load_dataset
from streid_core.data.dataset import default_num_val, validate
from streid_core.errors import StreidError


def _pids(records):
    return sorted({r.pid for r in records})


def test_counts_paths_cameras_and_poses(tmp_path):
    # 6 trainval + 3 test pids, 2 cameras x 2 images = 4 images per pid.
    root = make_openreid(tmp_path / "market1501", poses=True)
    ds = load_dataset(root)
    assert isinstance(ds, LoadedDataset)
    # default num_val = min(100, 6 // 5) = 1 -> the last trainval pid (5) is validation
    assert _pids(ds.train) == [0, 1, 2, 3, 4] and len(ds.train) == 20
    assert _pids(ds.val) == [5] and len(ds.val) == 4
    assert _pids(ds.trainval) == [0, 1, 2, 3, 4, 5] and len(ds.trainval) == 24
    # identity protocol (no official_split.json): every image of every query / gallery pid
    assert _pids(ds.query) == [6, 7, 8] and len(ds.query) == 12
    assert _pids(ds.gallery) == [6, 7, 8] and len(ds.gallery) == 12
    assert ds.keypoints == "openpose18" and ds.protocol == "market1501"
    assert ds.labels == {0: 0, 1: 1, 2: 2, 3: 3, 4: 4} and ds.num_classes == 5
    for record in ds.trainval + ds.query:
        assert Path(record.path).is_absolute() and Path(record.path).is_file()
        assert Path(record.pose_path).read_text().count("\n") == 18
        assert record.frame == -1 and record.video == ""
    by_name = {Path(r.path).name: r for r in ds.query}
    assert by_name["00000007_01_0001.jpg"].camid == 1 and by_name["00000007_01_0001.jpg"].pid == 7
    assert Path(by_name["00000007_01_0001.jpg"].pose_path).name == "00000007_01_0001.txt"


def test_without_poses_keypoints_are_none(tmp_path):
    ds = load_dataset(make_openreid(tmp_path / "d"))
    assert ds.keypoints == "none"
    assert all(r.pose_path is None for r in ds.trainval + ds.gallery)


def test_num_val_and_combine_trainval(tmp_path):
    root = make_openreid(tmp_path / "d")
    ds = load_dataset(root, num_val=2, combine_trainval=True)
    assert _pids(ds.val) == [4, 5] and _pids(ds.train) == [0, 1, 2, 3]
    assert ds.train_set is ds.trainval and ds.num_classes == 6
    assert load_dataset(root, num_val=0).val == []
    with pytest.raises(StreidError, match="num_val 6: must be in 0..5"):
        load_dataset(root, num_val=6)


def test_default_num_val_keeps_originals_on_full_sets_and_shrinks_on_tiny_ones():
    assert default_num_val(100, 751) == 100  # Market-1501
    assert default_num_val(100, 702) == 100  # DukeMTMC-reID
    assert default_num_val(10, 71) == 10  # DanceReID: 71 // 5 = 14 >= 10
    assert default_num_val(10, 12) == 2  # 12 // 5
    assert default_num_val(10, 4) == 0  # too few to spare any


def test_official_and_identity_query_modes(tmp_path):
    root = make_openreid(tmp_path / "d", official=True)
    official = load_dataset(root)  # official is the default when official_split.json exists
    # official: camera-0 images of the 3 test pids query, the camera-1 images are the gallery
    assert len(official.query) == 6 and {r.camid for r in official.query} == {0}
    assert len(official.gallery) == 6 and {r.camid for r in official.gallery} == {1}
    identity = load_dataset(root, query_mode="identity")
    assert len(identity.query) == 12 and len(identity.gallery) == 12
    assert load_dataset(root, query_mode="official").query == official.query
    with pytest.raises(StreidError, match="query mode 'both'"):
        load_dataset(root, query_mode="both")
    with pytest.raises(StreidError, match="official_split.json: missing"):
        load_dataset(make_openreid(tmp_path / "plain"), query_mode="official")


def test_cuhk03_gets_its_protocol_and_market_keeps_empty_slots(tmp_path):
    assert load_dataset(make_openreid(tmp_path / "cuhk03", name="cuhk03")).protocol == "cuhk03"
    ds = load_dataset(make_openreid(tmp_path / "m", trainval_pids=(1, 2, 3), test_pids=(0, 1500), num_slots=1502))
    assert _pids(ds.gallery) == [0, 1500] and _pids(ds.trainval) == [1, 2, 3]


def _edit_json(path: Path, change) -> None:
    obj = json.loads(path.read_text())
    path.write_text(json.dumps(change(obj)))


def _rename_first(meta):
    meta["identities"][0][0][0] = "00000000_01_0000.jpg"  # listed under camera 0 but named camera 1
    return meta


def _garble_first(meta):
    meta["identities"][0][0][0] = "person0.jpg"
    return meta


def _duplicate_first(meta):
    meta["identities"][0][0].append(meta["identities"][0][0][0])
    return meta


@pytest.mark.parametrize(
    "damage, named, message",
    [
        (lambda r: __import__("shutil").rmtree(r / "images"), "images", "missing folder"),
        (lambda r: (r / "meta.json").unlink(), "meta.json", "missing"),
        (lambda r: (r / "meta.json").write_text("{not json"), "meta.json", "invalid JSON"),
        (lambda r: (r / "splits.json").unlink(), "splits.json", "missing"),
        (lambda r: (r / "splits.json").write_text("[]"), "splits.json", "non-empty list"),
        (lambda r: _edit_json(r / "meta.json", _rename_first), "meta.json", "its name says pid 0 camera 1"),
        (lambda r: _edit_json(r / "meta.json", _garble_first), "meta.json", "'person0.jpg'"),
        (lambda r: _edit_json(r / "meta.json", _duplicate_first), "meta.json", "listed twice"),
        (lambda r: (r / "images" / "00000003_01_0001.jpg").unlink(), "00000003_01_0001.jpg", "missing"),
        (lambda r: _edit_json(r / "splits.json", lambda s: [{**s[0], "query": []}]) or (r / "official_split.json").unlink(),
         "splits.json", "empty query set"),
        (lambda r: _edit_json(r / "splits.json", lambda s: [{**s[0], "gallery": [6, 42]}]), "splits.json", "pid 42 has no images"),
        (lambda r: _edit_json(r / "official_split.json", lambda o: {**o, "query": []}), "official_split.json", "empty query set"),
        (lambda r: _edit_json(r / "official_split.json", lambda o: {**o, "gallery": ["x.jpg"]}), "official_split.json", "'x.jpg'"),
    ],
    ids=["no-images-dir", "no-meta", "bad-json", "no-splits", "empty-splits", "name-mismatch", "unparsable-name",
         "duplicate-name", "missing-image", "empty-query", "unknown-pid", "empty-official-query", "unknown-official-name"],
)
def test_bad_datasets_name_the_file(tmp_path, damage, named, message):
    root = make_openreid(tmp_path / "d", official=True)
    damage(root)
    with pytest.raises(StreidError) as info:
        load_dataset(root)
    text = str(info.value)
    assert named in text and message in text and "\n" not in text


def test_split_index_out_of_range(tmp_path):
    root = make_openreid(tmp_path / "d")
    with pytest.raises(StreidError, match=r"splits.json: split 1 out of range, the file holds 1 split\(s\); use --split 0"):
        load_dataset(root, split=1)


def test_validate_decodes_images_and_parses_poses(tmp_path):
    root = make_openreid(tmp_path / "d", poses=True)
    result = validate(root, progress=False)
    assert (result.images, result.poses) == (36, 36)

    truncate_jpeg(root / "images" / "00000002_00_0001.jpg")
    (root / "poses" / "00000004_01_0000.txt").write_text("1 2\n" * 17)  # one line short
    load_dataset(root)  # loading does not decode, so it still works
    with pytest.raises(StreidError) as info:
        validate(root, progress=False)
    assert "00000002_00_0001.jpg: corrupt or truncated image" in str(info.value)
    assert "[1 more problem(s) found]" in str(info.value)


def test_validate_reports_non_numeric_pose(tmp_path):
    root = make_openreid(tmp_path / "d", poses=True)
    pose = root / "poses" / "00000006_00_0000.txt"
    pose.write_text(pose.read_text().replace("-1 -1", "nose ?", 1))
    with pytest.raises(StreidError, match=r"00000006_00_0000.txt: line 4 is 'nose \?', expected two numbers"):
        validate(root, progress=False)
