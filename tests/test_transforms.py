"""Transforms move keypoints with the pixels, flips swap left/right joints, erasing lands where drawn."""
import math
import random

import numpy as np
import pytest
import torch
from PIL import Image

from _make_person import colour_at, person_keypoints, render_person, side
from streid_core.data.keypoints import COCO17
from streid_core.data.transforms import (
    horizontal_flip,
    random_erase,
    random_sized_rect_crop,
    resize,
    to_normalized_tensor,
)


def person(height: int = 192, width: int = 96):
    kps = person_keypoints(height, width)
    return Image.fromarray(render_person(kps, height, width)), kps


def assert_on_joints(image: Image.Image, kps: np.ndarray, swapped: bool = False) -> int:
    """Every keypoint inside the image sits on a disc of its side (the other side if swapped).
    Returns how many keypoints were checked."""
    pixels = np.asarray(image)
    flip_side = {"left": "right", "right": "left", "centre": "centre"}
    checked = 0
    for name, (x, y) in zip(COCO17.names, kps):
        if not (0 <= x < image.size[0] and 0 <= y < image.size[1]):
            continue
        expected = flip_side[side(name)] if swapped else side(name)
        assert colour_at(pixels, x, y) == expected, f"{name} at ({x:.1f}, {y:.1f})"
        checked += 1
    return checked


def test_resize_scales_keypoints_by_the_size_ratio():
    image, kps = person(192, 96)
    out, moved = resize(image, kps, 256, 128)
    assert out.size == (128, 256)
    # x * 128/96, y * 256/192: the nose (48, 22.5) -> (64, 30)
    np.testing.assert_allclose(moved[0], [48 * 128 / 96, 22.5 * 256 / 192], rtol=1e-6)
    assert assert_on_joints(out, moved) == 17


def test_random_crops_keep_keypoints_on_the_rendered_joints():
    image, kps = person(192, 96)
    plain = resize(image, kps, 256, 128)[1]
    moved_any = 0
    for seed in range(40):
        out, moved = random_sized_rect_crop(image, kps, 256, 128, random.Random(seed))
        assert out.size == (128, 256)
        assert_on_joints(out, moved)
        moved_any += not np.allclose(moved, plain)
    assert moved_any > 30  # the crops really cropped


def test_crop_that_never_fits_falls_back_to_resize():
    # A square image: a crop with h/w >= 2 and >= 64 % of the area would need h >= 113 > 100.
    image = Image.fromarray(render_person(person_keypoints(100, 100), 100, 100))
    kps = person_keypoints(100, 100)
    out, moved = random_sized_rect_crop(image, kps, 256, 128, random.Random(0))
    ref, ref_kps = resize(image, kps, 256, 128)
    assert np.array_equal(np.asarray(out), np.asarray(ref))
    np.testing.assert_allclose(moved, ref_kps)


def test_flip_swaps_left_and_right_joints():
    image, kps = person(256, 128)
    flipped, fkps = horizontal_flip(image, kps, COCO17)
    # after the mirror the disc drawn for a right joint depicts the person's left one
    assert assert_on_joints(flipped, fkps, swapped=True) == 17
    left, right = COCO17.names.index("left_shoulder"), COCO17.names.index("right_shoulder")
    assert fkps[left, 0] > fkps[right, 0]  # like the unflipped person, left is on the image's right
    np.testing.assert_allclose(fkps[left], [127 - kps[right, 0], kps[right, 1]])
    back, bkps = horizontal_flip(flipped, fkps, COCO17)
    assert np.array_equal(np.asarray(back), np.asarray(image))
    np.testing.assert_allclose(bkps, kps)


def test_release_flip_keeps_channels():
    image, kps = person(256, 128)
    flipped, fkps = horizontal_flip(image, kps, COCO17, swap_joints=False)
    assert assert_on_joints(flipped, fkps, swapped=False) == 17
    np.testing.assert_allclose(fkps[:, 0], 127 - kps[:, 0])


def erased_region(before: Image.Image, after: Image.Image):
    diff = np.any(np.asarray(before) != np.asarray(after), axis=2)
    rows, cols = np.nonzero(diff)
    return cols.min(), rows.min(), cols.max() + 1, rows.max() + 1


def test_erasing_fills_one_rectangle_at_the_drawn_position():
    image = Image.new("RGB", (128, 256), (1, 2, 3))
    corners = set()
    for seed in range(200):
        out, box = random_erase(image, random.Random(seed), prob=1.0)
        assert box is not None
        assert np.asarray(image).max() == 3  # input untouched
        assert erased_region(image, out) == (box.x, box.y, box.x + box.width, box.y + box.height)
        patch = np.asarray(out)[box.y : box.y + box.height, box.x : box.x + box.width]
        assert (patch == box.colour).all()
        # area fraction U(0.02, 0.2) and aspect U(0.3, 1/0.3) before rounding the box inwards
        assert box.width * box.height <= 0.2 * 128 * 256
        assert 0.3 * 0.5 < box.height / box.width < (1 / 0.3) * 2
        corners.add((box.x, box.y))
    assert len(corners) > 150


def test_release_erasing_pastes_at_its_own_size():
    image = Image.new("RGB", (128, 256), (1, 2, 3))
    for seed in range(50):
        # both variants use one draw for the erase decision, then the same draws for the patch
        _, drawn = random_erase(image, random.Random(seed), prob=1.0)
        out, box = random_erase(image, random.Random(seed), prob=1.0, release_compat=True)
        assert (box.x, box.y) == (drawn.width, drawn.height) and box.colour == drawn.colour
        assert (box.width, box.height) == (min(drawn.width, 128 - box.x), min(drawn.height, 256 - box.y))
        assert erased_region(image, out) == (box.x, box.y, box.x + box.width, box.y + box.height)


@pytest.mark.parametrize("release_compat, expected", [(False, 0.5), (True, 0.75)])
def test_erasing_probability(release_compat, expected):
    # the release erases when U(-1, 1) <= 0.5: probability (1 + 0.5) / 2 = 0.75
    image = Image.new("RGB", (16, 32))
    rng = random.Random(3)
    n = 3000
    erased = sum(random_erase(image, rng, 0.5, release_compat)[1] is not None for _ in range(n))
    bound = 4.5 * math.sqrt(expected * (1 - expected) / n)
    assert abs(erased / n - expected) < bound


def test_normalisation_by_hand():
    image = Image.new("RGB", (2, 1), (255, 0, 128))
    t = to_normalized_tensor(image)
    assert t.shape == (3, 1, 2) and t.dtype == torch.float32
    # (255/255 - 0.485) / 0.229 = 2.2489; (0 - 0.456) / 0.224 = -2.0357; (128/255 - 0.406) / 0.225 = 0.4266
    np.testing.assert_allclose(t[:, 0, 0].numpy(), [2.24891, -2.03571, 0.42654], atol=1e-4)


def test_same_generator_state_gives_the_same_crop():
    image, kps = person(192, 96)
    a = random_sized_rect_crop(image, kps, 256, 128, random.Random(11))
    b = random_sized_rect_crop(image, kps, 256, 128, random.Random(11))
    assert np.array_equal(np.asarray(a[0]), np.asarray(b[0]))
    np.testing.assert_array_equal(a[1], b[1])
