"""ReidImageDataset: tensors, keypoints on the pixels, flips, erasing, reproducibility, errors."""
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from _make_person import colour_at, write_person_dataset
from streid_core.data.keypoints import COCO17, OPENPOSE18
from streid_core.data.preprocessor import ReidImageDataset
from streid_core.data.records import Record
from streid_core.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from streid_core.errors import StreidError

H, W = 256, 128
LABELS = {100: 0, 101: 1, 102: 2}


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return write_person_dataset(tmp_path_factory.mktemp("dance"), count=12)


def pixels(t: torch.Tensor) -> np.ndarray:
    """Undo the normalisation: (3, H, W) -> HxWx3 uint8."""
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    return ((t * std + mean) * 255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()


def joint_sides(item) -> list[str]:
    """Colour under each present keypoint in the clean target."""
    img = pixels(item["target"])
    return [colour_at(img, x, y) for x, y in item["keypoints"].numpy() if np.isfinite(x)]


def expected_sides(conv=COCO17, swapped=False):
    swap = {"left": "right", "right": "left"}
    out = []
    for name in conv.names:
        s = "left" if name.startswith("left") else "right" if name.startswith("right") else "centre"
        out.append(swap.get(s, s) if swapped else s)
    return out


def test_test_mode_resizes_and_normalises(records):
    ds = ReidImageDataset(records, LABELS, "test", H, W, keypoints="coco17")
    item = ds[4]
    assert item["image"].shape == (3, H, W) and item["image"].dtype == torch.float32
    assert item["image"] is item["target"]
    assert (item["label"], item["pid"], item["camid"], item["index"]) == (LABELS[records[4].pid], records[4].pid, 4, 4)
    # keypoints scale 96x192 -> 128x256 and truncate: x * 4/3, y * 4/3
    from streid_core.data.keypoints import read_keypoints

    raw = read_keypoints(records[4].pose_path, COCO17)
    np.testing.assert_array_equal(item["keypoints"].numpy(), np.floor(raw * 4 / 3))
    assert joint_sides(item) == expected_sides()
    ds.set_epoch(5)
    assert torch.equal(ds[4]["image"], item["image"])  # test mode has no randomness


def test_streid_train_flips_jointly_and_erases_only_the_input(records):
    ds = ReidImageDataset(records, LABELS, "streid_train", H, W, keypoints="coco17", with_pose=True,
                          with_mask=True, eraser=True, erase_prob=1.0, seed=3)
    flips = set()
    for index in range(len(records)):
        item = ds[index]
        kps = item["keypoints"].numpy()
        sides = joint_sides(item)
        flipped = sides == expected_sides(swapped=True)
        assert flipped or sides == expected_sides()
        flips.add(flipped)
        # pose peaks and the mask follow the (flipped) keypoints
        for j, (x, y) in enumerate(kps.astype(int)):
            assert item["pose"][j, y, x] == 1.0 and item["mask"][0, y, x] == 1.0
        assert item["pose"].shape == (17, H, W) and item["mask"].shape == (1, H, W)
        # erasing touches E's input only, inside one rectangle
        diff = (item["image"] != item["target"]).any(dim=0).numpy()
        rows, cols = np.nonzero(diff)
        assert diff.any() and diff[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()
    assert flips == {True, False}


def test_release_compat_flips_without_swapping(records):
    ds = ReidImageDataset(records, LABELS, "streid_train", H, W, keypoints="coco17", with_pose=True,
                          release_compat=True, seed=3)
    left, right = COCO17.names.index("left_shoulder"), COCO17.names.index("right_shoulder")
    orders = set()
    for index in range(len(records)):
        item = ds[index]
        assert joint_sides(item) == expected_sides()  # a channel keeps its own joint's pixels
        kps = item["keypoints"].numpy()
        orders.add(bool(kps[left, 0] > kps[right, 0]))
    assert orders == {True, False}  # flipped samples put the left shoulder on the image's left


def test_baseline_crop_keeps_joints_on_their_pixels(records):
    ds = ReidImageDataset(records, LABELS, "baseline_train", H, W, keypoints="coco17", eraser=True, seed=1)
    cut = 0
    for epoch in range(3):
        ds.set_epoch(epoch)
        for index in range(len(records)):
            item = ds[index]
            kps = item["keypoints"].numpy()
            present = np.isfinite(kps[:, 0])
            cut += int((~present).sum())
            sides = joint_sides(item)
            assert sides in (
                [s for s, p in zip(expected_sides(), present) if p],
                [s for s, p in zip(expected_sides(swapped=True), present) if p],
            )
    assert cut > 0  # some crops cut joints off; they come back as NaN


def test_reproducible_per_seed_epoch_index_and_across_workers(records):
    def make(seed):
        return ReidImageDataset(records, LABELS, "streid_train", H, W, keypoints="coco17", with_pose=True,
                                pose_aug="gauss", eraser=True, seed=seed)

    a, b = make(7), make(7)
    for ds in (a, b):
        ds.set_epoch(2)
    for key in ("image", "target", "pose", "keypoints"):
        assert torch.equal(a[5][key], b[5][key])
    b.set_epoch(3)
    assert any(not torch.equal(a[i]["image"], b[i]["image"]) for i in range(len(records)))
    assert any(not torch.equal(a[i]["image"], make(8).__getitem__(i)["image"]) for i in range(len(records)))

    serial = next(iter(DataLoader(a, batch_size=len(records), num_workers=0)))
    parallel = next(iter(DataLoader(a, batch_size=3, num_workers=2)))
    assert torch.equal(serial["image"][:3], parallel["image"])
    assert torch.equal(serial["pose"][:3], parallel["pose"])
    assert serial["label"].dtype == torch.int64


def test_openpose_files_with_missing_joints(tmp_path):
    recs = write_person_dataset(tmp_path, count=2, height=128, width=64, conv_name="openpose18")
    ds = ReidImageDataset(recs, LABELS, "test", H, W, keypoints="openpose18", with_pose=True, with_mask=True)
    item = ds[0]
    neck = OPENPOSE18.names.index("neck")
    assert torch.isnan(item["keypoints"][neck]).all()  # written "-1 -1"
    assert not item["pose"][neck].any()
    assert item["pose"].shape == (18, H, W)
    nose = item["keypoints"][0].long()
    assert item["pose"][0, nose[1], nose[0]] == 1.0


def test_records_without_pose_files(records):
    bare = [Record(records[0].path, 100, 0), *records[1:3]]
    with pytest.raises(StreidError, match=records[0].path.replace("\\", "\\\\")):
        ReidImageDataset(bare, LABELS, "streid_train", H, W, keypoints="coco17", with_pose=True)
    ds = ReidImageDataset(bare, LABELS, "test", H, W, keypoints="coco17")
    assert torch.isnan(ds[0]["keypoints"]).all() and "pose" not in ds[0]
    assert "keypoints" not in ReidImageDataset(bare, LABELS, "test", H, W)[0]


def test_bad_configuration_is_a_user_error(records):
    with pytest.raises(StreidError, match="transform mode"):
        ReidImageDataset(records, LABELS, "train", H, W)
    with pytest.raises(StreidError, match="need keypoints"):
        ReidImageDataset(records, LABELS, "streid_train", H, W, with_mask=True)
    with pytest.raises(StreidError, match="pose augmentation"):
        ReidImageDataset(records, LABELS, "streid_train", H, W, keypoints="coco17", pose_aug="gaus")
