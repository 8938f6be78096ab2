"""Hue rotation (streid_core/data/hue_rotation.py): the colour cube turned about its grey axis."""
import math

import torch

from streid_core.data.hue_rotation import hue_rotation_matrices, rotate_hue


def test_a_third_of_a_turn_moves_each_channel_into_the_next():
    # about (1, 1, 1) a 120 degree turn takes the red axis to green, green to blue, blue to red
    image = torch.tensor([0.9, 0.3, 0.5]).view(1, 3, 1, 1)
    turned = rotate_hue(image, torch.tensor([2 * math.pi / 3]))
    assert torch.allclose(turned.flatten(), torch.tensor([0.5, 0.9, 0.3]), atol=1e-6)


def test_grey_stays_and_no_turn_changes_nothing():
    image = torch.rand(2, 3, 8, 4)
    assert torch.allclose(rotate_hue(image, torch.zeros(2)), image, atol=1e-6)
    grey = torch.full((1, 3, 2, 2), 0.3)
    assert torch.allclose(rotate_hue(grey, torch.tensor([1.0])), grey, atol=1e-6)


def test_each_image_gets_its_own_angle_and_the_result_stays_in_range():
    image = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).view(2, 3, 1, 1)
    turned = rotate_hue(image, torch.tensor([2 * math.pi / 3, 0.0]))
    assert torch.allclose(turned.flatten(1), torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]), atol=1e-6)
    # half a turn about mid-grey: red - 0.5 = (0.5, -0.5, -0.5) -> -v + 2 (k.v) k = (-5/6, 1/6, 1/6),
    # + 0.5 = (-1/3, 2/3, 2/3): cyan, its red clamped at the cube's edge
    half = rotate_hue(image[:1], torch.tensor([math.pi]))
    assert torch.allclose(half.flatten(), torch.tensor([0.0, 2 / 3, 2 / 3]), atol=1e-6)


def test_the_rotations_keep_length_and_the_grey_axis():
    rotations = hue_rotation_matrices(torch.tensor([0.3, 1.7, -2.0]))
    eye = torch.eye(3).expand(3, 3, 3)
    assert torch.allclose(rotations @ rotations.transpose(1, 2), eye, atol=1e-6)
    assert torch.allclose(rotations @ torch.ones(3), torch.ones(3, 3), atol=1e-6)
