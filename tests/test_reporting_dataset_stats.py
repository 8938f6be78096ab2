"""Notebook 01's numbers and figures: split counts, identities per video, images per identity,
missing-joint rates and joint positions (checked against hand-computed values)."""
import numpy as np
import pytest
from PIL import Image

from streid_core.data.keypoints import COCO17, write_keypoints
from streid_core.data.records import LoadedDataset, Record
from streid_core.reporting import dataset_figures, dataset_stats


def _record(tmp_path, name, pid, video, kps=None, size=(20, 40)):
    """An image of `size` (width, height) and, if `kps` is given, its COCO-17 pose file."""
    image = tmp_path / f"{name}.png"
    Image.new("RGB", size, (pid * 40 % 256, 90, 160)).save(image)
    pose = None
    if kps is not None:
        pose = tmp_path / f"{name}.txt"
        write_keypoints(pose, kps, COCO17)
    return Record(str(image), pid, camid=int(name[-1]), frame=int(name[-1]), video=video,
                  pose_path=str(pose) if pose else None)


def _pose(x, y, missing=()):
    kps = np.tile(np.array([[x, y]], dtype=np.float32), (17, 1))
    kps[list(missing)] = np.nan
    return kps


@pytest.fixture
def records(tmp_path):
    # Every joint of an image sits at one point; image A misses joint 0, image C misses joint 16.
    return [
        _record(tmp_path, "a0", 1, "v1", _pose(10, 20, missing=[0])),
        _record(tmp_path, "b1", 1, "v1", _pose(5, 10)),
        _record(tmp_path, "c2", 2, "v2", _pose(15, 30, missing=[16])),
        _record(tmp_path, "d3", 3, "v2"),  # no pose file
    ]


def test_keypoint_statistics_by_hand(records):
    stats = dataset_stats.keypoint_statistics(records, COCO17)
    assert (stats.images, stats.images_without_pose) == (3, 1)
    expected_missing = np.zeros(17)
    expected_missing[[0, 16]] = 1 / 3  # one image of three misses each
    np.testing.assert_allclose(stats.missing_rate, expected_missing)
    assert stats.with_missing == pytest.approx(2 / 3) and stats.mean_missing == pytest.approx(2 / 3)
    # joint 1 (present everywhere) at x/w = 10/20, 5/20, 15/20 and y/h = 20/40, 10/40, 30/40
    np.testing.assert_allclose(stats.mean_xy[1], [0.5, 0.5])
    np.testing.assert_allclose(stats.std_xy[1], [np.sqrt((0 + 0.25**2 + 0.25**2) / 3)] * 2)
    # joint 0 only in B and C: x/w = 0.25, 0.75
    np.testing.assert_allclose(stats.mean_xy[0], [0.5, 0.5])
    as_json = stats.as_dict()
    assert as_json["missing_rate"]["nose"] == pytest.approx(1 / 3) and as_json["missing_rate"]["left_eye"] == 0


def test_a_joint_missing_everywhere_has_no_position_and_full_missing_rate(tmp_path):
    recs = [_record(tmp_path, f"x{i}", 1, "v", _pose(4, 8, missing=[5])) for i in range(2)]
    stats = dataset_stats.keypoint_statistics(recs, COCO17)
    assert stats.missing_rate[5] == 1.0 and np.isnan(stats.mean_xy[5]).all()


def test_counts_per_split_video_and_identity(records):
    ds = LoadedDataset("t", records[0].path, "coco17", "dancereid", train=records[:2], val=records[2:3],
                       trainval=records[:3], query=records[3:], gallery=records[3:])
    counts = dataset_stats.split_counts(ds)
    assert counts["train"] == {"ids": 1, "images": 2, "videos": 1}
    assert counts["trainval"] == {"ids": 2, "images": 3, "videos": 2}
    assert counts["query"] == {"ids": 1, "images": 1, "videos": 1}
    assert dataset_stats.identities_per_video(records) == {"v1": 1, "v2": 2}
    assert dataset_stats.images_per_identity(records) == {1: 2, 2: 1, 3: 1}


def test_figures_show_every_split_joint_and_record(records):
    ds = LoadedDataset("t", records[0].path, "coco17", "dancereid", train=records[:2], val=records[2:3],
                       trainval=records[:3], query=records[3:], gallery=records[3:])
    counts = dataset_figures.counts_figure(ds)
    assert [t.get_text() for t in counts.axes[0].get_xticklabels()] == list(dataset_stats.SPLITS)
    joints = dataset_figures.keypoints_figure(dataset_stats.keypoint_statistics(records, COCO17))
    assert len(joints.axes[0].patches) == 17  # one bar per joint
    inputs = dataset_figures.pose_inputs_figure(records, COCO17, height=64, width=32)
    assert len(inputs.axes) == 3 * 3  # image, heat-maps, mask for each of the 3 records with a pose
