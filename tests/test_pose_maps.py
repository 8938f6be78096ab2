"""Pose heat-maps and skeleton masks against values worked out by hand."""
import math
import random

import numpy as np
import pytest
from scipy import ndimage

from streid_core.data.keypoints import COCO17, OPENPOSE18
from streid_core.data.pose import (
    canvas_sigma,
    augmented_pose_maps,
    keypoints_to_canvas,
    pose_maps,
    skeleton_mask,
    snap_to_canvas,
)
from streid_core.errors import StreidError

H, W = 256, 128


def only(joints: dict[int, tuple[float, float]], k: int = 17) -> np.ndarray:
    kps = np.full((k, 2), np.nan, dtype=np.float32)
    for j, xy in joints.items():
        kps[j] = xy
    return kps


def test_heat_map_values_by_hand():
    # joint at x=40.7, y=100.2 sits on pixel (row 100, col 40), like the original's int() truncation
    maps = pose_maps(only({3: (40.7, 100.2)}), H, W)
    assert maps.shape == (17, H, W) and maps.dtype == np.float32
    m = maps[3]
    assert m[100, 40] == 1.0 and m.max() == 1.0
    # sigma 5: exp(-d^2 / 50); one pixel away exp(-1/50) = 0.98020, five pixels exp(-25/50) = 0.60653
    assert m[101, 40] == pytest.approx(math.exp(-1 / 50), rel=1e-6)
    assert m[100, 45] == pytest.approx(math.exp(-25 / 50), rel=1e-6)
    # the 3-4-5 diagonal is also 5 pixels away
    assert m[103, 44] == pytest.approx(math.exp(-25 / 50), rel=1e-6)
    # every other channel is a missing joint: all zero
    assert not np.delete(maps, 3, axis=0).any()


def test_heat_map_tails_hold_exact_zeros_not_denormals():
    # exp(-d^2 / 2 sigma^2) falls below float32's smallest normal number (1.2e-38) ~33 px from a
    # sigma-2.5 joint; denormals there made every convolution reading the maps 3-4x slower on x86
    maps = pose_maps(only({0: (3.0, 5.0), 5: (60.0, 120.0)}), 128, 64)
    tiny = np.finfo(np.float32).tiny
    assert not np.any((maps > 0) & (maps < tiny))
    # sigma 2.5: exp(-d^2 / 12.5) is exp(-32) = 1.3e-14 at 20 px (kept), exp(-72) = 5e-32 at 30 px
    # (under 1e-18: zero), and zero far away; diagonally each axis's factor counts on its own
    assert maps[0, 25, 3] == pytest.approx(math.exp(-400 / 12.5), rel=1e-5)
    assert maps[0, 35, 3] == 0.0 and maps[0, 100, 3] == 0.0
    assert maps[0, 5 + 12, 3 + 12] == pytest.approx(math.exp(-288 / 12.5), rel=1e-5)
    assert maps[5, 120, 60] == 1.0 and maps[5, 100, 60] == pytest.approx(math.exp(-400 / 12.5), rel=1e-5)


def test_sigma_changes_the_width():
    m = pose_maps(only({0: (60, 60)}), H, W, sigma=4.0)[0]
    assert m[60, 62] == pytest.approx(math.exp(-4 / 32), rel=1e-6)  # d=2, 2*sigma^2=32


def test_out_of_canvas_joints_give_zero_maps():
    # x = 128 is one past the last column; y = -0.5 truncates to row -1; both are off the canvas
    maps = pose_maps(only({0: (128.0, 10.0), 1: (10.0, -0.5), 2: (127.9, 255.9)}), H, W)
    assert not maps[0].any() and not maps[1].any()
    assert maps[2, 255, 127] == 1.0


def test_matches_the_original_gaussian_filter_away_from_borders():
    maps = pose_maps(only({5: (64, 120)}), H, W)
    delta = np.zeros((H, W))
    delta[120, 64] = 1.0
    ref = ndimage.gaussian_filter(delta, sigma=5)
    ref /= ref.max()
    # inside the 4-sigma window the two agree to float precision; beyond it the original is 0 and
    # the closed form is at most exp(-21^2/50) = 1.5e-4
    assert np.abs(maps[5] - ref).max() < 2e-4
    assert np.abs(maps[5] - ref)[100:141, 44:85].max() < 1e-6


def test_canvas_scaling_truncates():
    # a 64x128 (w x h) Market image onto 256x128: x*2, y*2 -> (21.4, 40.4) -> pixel (21, 40);
    # x = 63.9 -> 127.8 -> the last column 127; x = 64 -> 128 is off the canvas
    src = np.array([[10.7, 20.2], [np.nan, np.nan], [63.9, 10.0], [64.0, 10.0]])
    out = keypoints_to_canvas(src, (64, 128), H, W)
    np.testing.assert_array_equal(out[0], [21, 40])
    np.testing.assert_array_equal(out[2], [127, 20])
    assert np.isnan(out[1]).all() and np.isnan(out[3]).all()


def test_snap_marks_outside_joints_missing():
    out = snap_to_canvas(np.array([[127.8, 3.0], [128.0, 3.0], [-0.1, 3.0]]), H, W)
    np.testing.assert_array_equal(out[0], [127, 3])
    assert np.isnan(out[1:]).all()


def test_gauss_augmentation_draws_one_sigma_per_image_from_4_5_6():
    kps = only({0: (30, 40), 7: (90, 200)})
    seen = set()
    for seed in range(60):
        maps = augmented_pose_maps(kps, H, W, "gauss", random.Random(seed))
        # one pixel off the peak: exp(-1 / 2 sigma^2) -> sigma = sqrt(-1 / (2 ln v))
        sigmas = {round(math.sqrt(-1 / (2 * math.log(float(m[r + 1, c])))), 3) for m, (c, r) in ((maps[0], (30, 40)), (maps[7], (90, 200)))}
        assert len(sigmas) == 1
        seen |= sigmas
    assert seen == {4.0, 5.0, 6.0}


def test_erase_augmentation_empties_exactly_one_channel():
    kps = np.stack([np.full(17, 64.0), np.linspace(20, 230, 17)], axis=1).astype(np.float32)
    erased = set()
    for seed in range(80):
        maps = augmented_pose_maps(kps, H, W, "erase", random.Random(seed))
        empty = [j for j in range(17) if not maps[j].any()]
        assert len(empty) == 1
        erased.add(empty[0])
    assert len(erased) > 12
    assert np.array_equal(augmented_pose_maps(kps, H, W, "no", random.Random(0)), pose_maps(kps, H, W))


def test_unknown_pose_augmentation_is_a_user_error():
    with pytest.raises(StreidError, match="blur"):
        augmented_pose_maps(only({}), H, W, "blur", random.Random(0))


def test_mask_limb_widths_by_hand():
    # left shoulder (5) above left elbow (7): a thin limb, 20 px wide; discs of radius 10
    mask = skeleton_mask(only({5: (40, 60), 7: (40, 140)}), H, W, COCO17)
    assert mask.shape == (1, H, W) and mask.dtype == np.float32 and set(np.unique(mask)) == {0.0, 1.0}
    m = mask[0]
    assert m[100, 40] == 1 and m[100, 48] == 1 and m[100, 32] == 1  # within 10 px of the line
    assert m[100, 52] == 0 and m[100, 28] == 0  # 12 px off the line
    assert m[51, 40] == 1 and m[47, 40] == 0  # the disc around the shoulder ends at ~10 px

    # shoulders (5, 6): torso limb, 30 px wide
    m = skeleton_mask(only({5: (90, 60), 6: (30, 60)}), H, W, COCO17)[0]
    assert m[73, 60] == 1 and m[47, 60] == 1  # 13 px off
    assert m[78, 60] == 0 and m[42, 60] == 0  # 18 px off


def test_mask_head_disc_and_missing_partners():
    m = skeleton_mask(only({0: (64, 50), 9: (64, 200)}), H, W, COCO17)[0]
    assert m[50, 64 + 18] == 1 and m[50, 64 + 22] == 0  # nose: radius 20
    assert m[200, 64 + 8] == 1 and m[200, 64 + 12] == 0  # wrist: radius 10
    assert m[125, 64] == 0  # nose and wrist are not a limb: nothing between them
    # the elbow (7) is missing, so the limb elbow-wrist is not drawn
    assert m[185, 64] == 0


def test_mask_scales_with_the_canvas():
    # on 128x64 every size halves: thin limbs 10 px wide
    m = skeleton_mask(only({5: (20, 30), 7: (20, 70)}), 128, 64, COCO17)[0]
    assert m[50, 20 + 4] == 1 and m[50, 20 + 7] == 0


def test_openpose_neck_is_a_thick_limb():
    kps = only({0: (64, 30), 1: (64, 70)}, k=18)  # nose - neck
    m = skeleton_mask(kps, H, W, OPENPOSE18)[0]
    assert m[50, 64 + 13] == 1 and m[50, 64 + 18] == 0


def test_sigma_scales_with_the_canvas_so_a_blob_covers_the_same_part_of_the_body():
    assert canvas_sigma(256, 128) == 5.0 and canvas_sigma(128, 64) == 2.5 and canvas_sigma(512, 256) == 10.0
    small = pose_maps(only({0: (30, 60)}), 128, 64)[0]
    # sigma 2.5 at 128x64: two pixels away exp(-4 / 12.5); with the fixed 5 it would be exp(-4 / 50)
    assert small[60, 32] == pytest.approx(math.exp(-4 / 12.5), rel=1e-6)
    large = pose_maps(only({0: (60, 120)}), 256, 128)[0]
    assert large[120, 64] == pytest.approx(small[60, 32], rel=1e-6)  # 4 px at twice the size = 2 px


def test_gauss_augmentation_scales_its_sigmas_with_the_canvas():
    rng = random.Random(0)
    seen = set()
    for _ in range(40):
        m = augmented_pose_maps(only({0: (30, 60)}), 128, 64, "gauss", rng)[0]
        seen.add(round(math.sqrt(-1 / (2 * math.log(float(m[61, 30])))), 3))
    assert seen == {2.0, 2.5, 3.0}
