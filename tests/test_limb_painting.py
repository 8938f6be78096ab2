"""G's limb painting (--paint-limbs): the target's limb strokes, coloured by a linear map of E's
feature, in G's pose input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from streid_core.data.keypoints import convention
from streid_core.data.pose import pose_maps, skeleton_mask
from streid_core.models.generator import PoseGenerator
from streid_core.models.limb_painting import LimbPainting
from streid_core.models.streidnet import StreidNetArchitecture

COCO = convention("coco17")
H, W = 128, 64  # mask scale 0.5: torso lines 15 px wide, joint discs radius 5
STANDING = np.array([[32, 10], [30, 8], [34, 8], [28, 9], [36, 9], [24, 30], [40, 30], [20, 50], [44, 50],
                     [18, 65], [46, 65], [26, 70], [38, 70], [26, 95], [38, 95], [26, 120], [38, 120]], np.float32)


def maps(keypoints: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pose_maps(keypoints, H, W))[None]


def test_a_limb_is_painted_within_half_its_width_and_overlaps_are_averaged():
    arm = np.full((17, 2), np.nan, np.float32)
    arm[5], arm[6], arm[7] = (20, 40), (44, 40), (20, 60)  # shoulders and the left elbow
    painting = LimbPainting(COCO, 2, (H, W))
    strokes = list(zip(painting.start.tolist(), painting.end.tolist()))
    shoulders, upper_arm = strokes.index((5, 6)), strokes.index((5, 7))  # torso line 15 px wide, arm line 10
    shoulder, elbow = strokes.index((5, 5)), strokes.index((7, 7))  # joint discs, radius 5
    with torch.no_grad():
        painting.colour.bias[3 * shoulders: 3 * shoulders + 3] = torch.tensor([0.5, -0.5, 0.25])
        painting.colour.bias[3 * upper_arm: 3 * upper_arm + 3] = torch.tensor([1.0, 1.0, 1.0])
        painting.colour.bias[3 * shoulder: 3 * shoulder + 3] = torch.tensor([-1.0, 0.5, 0.0])
        painting.colour.bias[3 * elbow: 3 * elbow + 3] = torch.tensor([0.0, 0.0, -1.0])
        painting.colour.weight[3 * shoulders] = torch.tensor([1.0, 0.0])  # red of the shoulders += feature[0]
        out = painting(maps(arm), torch.tensor([[0.25, 3.0]]))[0]
    rgb, cover = out[:3], out[3]
    # (x 32, y 47): 7 px below the shoulder line, inside its half-width 7.5; y 48 is outside
    assert cover[47, 32] == 1 and cover[48, 32] == 0
    assert torch.allclose(rgb[:, 47, 32], torch.tensor([0.75, -0.5, 0.25]))
    # (x 16, y 40): 4 px left of shoulder 5, in both lines' round ends and its disc: three colours averaged
    assert torch.allclose(rgb[:, 40, 16], torch.tensor([(0.75 + 1 - 1) / 3, (-0.5 + 1 + 0.5) / 3, (0.25 + 1 + 0) / 3]))
    # (x 20, y 63 / 66): 3 and 6 px below the elbow, inside and outside the arm's half-width and the disc's radius 5
    assert cover[63, 20] == 1 and torch.allclose(rgb[:, 63, 20], torch.tensor([0.5, 0.5, 0.0])) and cover[66, 20] == 0
    # (x 10, y 40): 10 px from the shoulder, beyond both; nothing else is drawn without the other joints
    assert cover[40, 10] == 0 and torch.all(rgb[:, 40, 10] == 0)
    assert cover[:32].sum() == 0 and cover[66:].sum() == 0


def test_the_strokes_cover_the_skeleton_mask_of_the_pose():
    cover = LimbPainting(COCO, 2, (H, W))(maps(STANDING), torch.zeros(1, 2))[0, 3]
    mask = torch.from_numpy(skeleton_mask(STANDING, H, W, COCO))[0]
    inter, union = (cover * mask).sum(), ((cover + mask) > 0).sum()
    assert inter / union > 0.9  # the same strokes; cv2 rasterises their edges a pixel differently


def test_an_erased_joint_paints_none_of_its_strokes():
    erased = STANDING.copy()
    erased[9] = np.nan  # left wrist
    painting = LimbPainting(COCO, 2, (H, W))
    full, without = (painting(maps(k), torch.zeros(1, 2))[0, 3] for k in (STANDING, erased))
    assert full[65, 18] == 1 and without[65, 18] == 0  # the wrist's disc
    assert torch.equal(full[:40], without[:40])  # head and shoulders unchanged


def test_g_with_painting_starts_grey_and_its_loss_teaches_the_colours_from_e():
    torch.manual_seed(0)
    g = PoseGenerator(17, 8, image_size=(H, W), connect_layers=5, ngf=8, paint_limbs=COCO)
    assert torch.count_nonzero(g.limb_painting.colour.weight) == 0  # not re-initialised by the GAN init
    feature = torch.randn(2, 8, requires_grad=True)
    g(maps(STANDING).repeat(2, 1, 1, 1), feature).mean().backward()
    assert g.limb_painting.colour.weight.grad.abs().sum() > 0


def test_g_without_painting_is_the_release_layout_and_a_wrong_convention_is_refused():
    assert PoseGenerator(17, 8, image_size=(H, W), ngf=8).limb_painting is None
    assert PoseGenerator(17, 8, image_size=(H, W), ngf=8, paint_limbs=COCO).encoder[0].in_channels == 17 + 4
    with pytest.raises(Exception, match="openpose18 has 18 joints"):
        PoseGenerator(17, 8, image_size=(H, W), ngf=8, paint_limbs=convention("openpose18"))


def test_checkpoints_without_the_field_build_the_release_g():
    config = dict(num_classes=4, keypoints="coco17", arch="resnet18", emb_type="Single", last_stride=1, height=H,
                  width=W, norm="batch", drop=0.0, connect_layers=5, fuse_mode="cat", pose_feature_size=128, ngf=8)
    assert StreidNetArchitecture.from_config(config).build_generator(512).limb_painting is None
    painted = StreidNetArchitecture.from_config({**config, "paint_limbs": True}).build_generator(512)
    assert painted.limb_painting is not None


# ---------------------------------------------------------------- --paint-from source-limbs


def test_part_features_average_e_map_under_each_source_stroke_by_coverage():
    painting = LimbPainting(COCO, 2, (4, 4), source="source-limbs")
    feature_map = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[10.0, 20.0], [30.0, 40.0]]])[None]  # (1, D 2, 2, 2)
    strokes = torch.zeros(1, 3, 4, 4)
    strokes[0, 0, :2, :2] = 1  # all of the top-left cell
    strokes[0, 1, 0, :] = 1  # the top row of pixels: half of each top cell
    strokes[0, 1, 2, 0] = 1  # and a quarter of the bottom-left cell; stroke 2 is absent: the whole map
    parts = painting.part_features(feature_map, strokes)[0]
    # stroke 1's cell weights 0.5, 0.5, 0.25, 0 over a total of 1.25
    assert torch.allclose(parts, torch.tensor([[1.0, 10.0], [(0.5 * 1 + 0.5 * 2 + 0.25 * 3) / 1.25, 18.0],
                                               [2.5, 25.0]]))


def test_source_limbs_colour_each_stroke_by_its_own_part_feature():
    painting = LimbPainting(COCO, 2, (H, W), source="source-limbs")
    strokes = list(zip(painting.start.tolist(), painting.end.tolist()))
    torso = strokes.index((11, 12))  # the hip line: 15 px wide at 128x64
    assert not hasattr(painting, "colour") and torch.count_nonzero(painting.part_weight) == 0
    parts = torch.zeros(1, len(strokes), 2)
    parts[0, torso] = torch.tensor([2.0, -1.0])
    with torch.no_grad():
        painting.part_weight[torso] = torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.0, 1.0]])  # red = f0 / 2, blue = f1
        painting.part_bias[torso] = torch.tensor([0.0, 0.25, 0.0])
        out = painting(maps(STANDING), torch.zeros(1, 2), parts=parts)[0]
    masks = painting.stroke_masks(maps(STANDING))[0]
    only_hips = torch.nonzero((masks[torso] == 1) & (masks.sum(0) == 1))  # pixels of the hip line alone
    elsewhere = torch.nonzero((masks[torso] == 0) & (masks.sum(0) > 0))
    assert len(only_hips) and len(elsewhere)
    (y, x), (v, u) = only_hips[0].tolist(), elsewhere[0].tolist()
    assert torch.allclose(out[:3, y, x], torch.tensor([1.0, 0.25, -1.0]))
    assert torch.all(out[:3, v, u] == 0) and out[3, v, u] == 1  # other strokes: their own (zero) colours
    with pytest.raises(ValueError, match="pass parts"):
        painting(maps(STANDING), torch.zeros(1, 2))


def test_g_reading_source_limbs_follows_the_source_pose_and_teaches_e_map():
    torch.manual_seed(0)
    g = PoseGenerator(17, 8, image_size=(H, W), connect_layers=5, ngf=8, paint_limbs=COCO, paint_from="source-limbs")
    assert g.reads_source_limbs and not PoseGenerator(17, 8, image_size=(H, W), ngf=8).reads_source_limbs
    with torch.no_grad():
        g.limb_painting.part_weight.normal_()
    feature_map = torch.randn(1, 8, 4, 2, requires_grad=True)
    lowered = STANDING + np.array([0, 30], np.float32)  # the source stands lower in its frame: other cells
    drawn = [g.eval()(maps(STANDING), feature_map.amax((2, 3)), parts=g.part_features(feature_map, maps(src)))
             for src in (STANDING, lowered)]
    assert not torch.allclose(drawn[0], drawn[1])
    drawn[0].mean().backward()
    assert feature_map.grad.abs().sum() > 0


def test_paint_from_is_stored_and_older_checkpoints_read_the_descriptor():
    config = dict(num_classes=4, keypoints="coco17", arch="resnet18", emb_type="Single", last_stride=1, height=H,
                  width=W, norm="batch", drop=0.0, connect_layers=5, fuse_mode="cat", pose_feature_size=128, ngf=8,
                  paint_limbs=True)
    assert not StreidNetArchitecture.from_config(config).build_generator(512).reads_source_limbs
    assert StreidNetArchitecture.from_config({**config, "paint_from": "source-limbs"}).build_generator(512).reads_source_limbs
    with pytest.raises(Exception, match="unknown painting source 'pixels'"):
        LimbPainting(COCO, 2, (H, W), source="pixels")


def test_an_earlier_stage_of_e_is_read_with_its_own_channels():
    from streid_core.models.reid import ReIDEncoder

    encoder = ReIDEncoder("resnet18", last_stride=1).eval()
    x = torch.randn(1, 3, H, W)
    with torch.no_grad():
        descriptor, stage2 = encoder(x, map_layer=2)
        _, stage4 = encoder(x, map_layer=4)
        assert torch.equal(descriptor, encoder(x)) and torch.equal(descriptor, stage4.amax(dim=(2, 3)))
    assert stage2.shape == (1, 128, H // 8, W // 8) and stage4.shape == (1, 512, H // 16, W // 16)
    config = dict(num_classes=4, keypoints="coco17", arch="resnet18", emb_type="Single", last_stride=1, height=H,
                  width=W, norm="batch", drop=0.0, connect_layers=5, fuse_mode="cat", pose_feature_size=128, ngf=8,
                  paint_limbs=True, paint_from="source-limbs", paint_layer=2)
    g = StreidNetArchitecture.from_config(config).build_generator(512)
    assert g.part_layer == 2 and g.limb_painting.part_weight.shape[1] == 128
    parts = g.part_features(stage2, maps(STANDING))
    assert parts.shape == (1, g.limb_painting.part_weight.shape[0], 128)
    assert g.eval()(maps(STANDING), descriptor, parts=parts).shape == (1, 3, H, W)
