"""Drawing people: the body follows the skeleton, nearer people hide farther ones, a back view
shows hair instead of a face, garments show their patterns, and drawing cached shapes through a
crop transform equals drawing the cropped person."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from streid_core.data.synth.appearance import Appearance, Garment, Hair
from streid_core.data.synth.render import PersonView, draw_person, draw_shapes, person_shapes
from streid_core.data.synth.skeleton import NEUTRAL, Body, D, body_joints, turn

BODY = Body(height=1.7, shoulder_half=0.19, hip_half=0.09, torso=0.5, thigh=0.41, shin=0.41,
            upper_arm=0.3, forearm=0.25, head_radius=0.11, neck=0.06, build=1.0)
SKIN, HAIR = (200, 150, 110), (0, 255, 0)
LOOK = Appearance(
    body=BODY, skin=SKIN, hair=Hair("short", HAIR, (0, 0, 0)),
    top=Garment("long", (255, 0, 0), (0, 0, 255), "solid", 0.08),
    bottom=Garment("trousers", (40, 40, 40), (250, 250, 250), "solid", 0.1), shoes=(255, 255, 255),
)
H, W = 256, 128


def _view(look=LOOK, yaw=0.0, dx=0.0, arms=0.0) -> PersonView:
    angles = NEUTRAL.copy()[None]
    angles[0, [D["l_arm_abd"], D["r_arm_abd"]]] = np.radians(arms)
    j = turn(body_joints(look.body, angles), np.array([yaw]))[0]
    s = 100.0  # pixels per metre
    kps = np.stack([W / 2 + dx + s * j[:, 0], 245 - s * j[:, 1]], 1)
    return PersonView(kps, j[:, 2], s, yaw, look)


def _canvas():
    return np.full((H, W, 3), 128, np.uint8), np.zeros((H, W), np.uint8)


def _count(image, color, tol=12):
    return int((np.abs(image.astype(int) - color).max(-1) <= tol).sum())


def test_body_covers_its_skeleton_and_little_else():
    image, labels = _canvas()
    view = _view(arms=40)
    draw_person(image, view, labels, 7)
    for x, y in view.keypoints:
        assert labels[int(y), int(x)] == 7, "every joint lies on the drawn body"
    ys, xs = np.nonzero(labels == 7)
    k = view.keypoints
    assert k[:, 0].min() - 15 < xs.min() and xs.max() < k[:, 0].max() + 15
    assert ys.max() < k[:, 1].max() + 15
    assert 0.1 < (labels == 7).mean() < 0.45  # a person, not a box filling the crop
    assert _count(image, (255, 0, 0)) > 800 and _count(image, SKIN) > 100  # shirt and skin visible


def test_nearer_person_hides_the_farther_one():
    image, labels = _canvas()
    draw_person(image, _view(dx=-10), labels, 1)
    alone = int((labels == 1).sum())
    draw_person(image, _view(dx=10, look=replace(LOOK, top=replace(LOOK.top, color=(0, 0, 255)))), labels, 2)
    assert 0 < (labels == 1).sum() < 0.7 * alone  # partly covered
    assert _count(image, (0, 0, 255)) > _count(image, (255, 0, 0))


def test_back_view_shows_hair_not_face():
    front, _ = _canvas()
    back, _ = _canvas()
    draw_person(front, _view(yaw=0.0))
    draw_person(back, _view(yaw=np.pi))
    head = slice(0, int(_view().keypoints[[5, 6], 1].min()))  # everything above the shoulders
    assert _count(back[head], HAIR) > 1.5 * _count(front[head], HAIR)
    assert _count(front[head], SKIN) > 3 * max(_count(back[head], SKIN), 1)


def test_patterns_show_both_colours():
    striped = replace(LOOK, top=replace(LOOK.top, pattern="hstripes"))
    plain, _ = _canvas()
    stripes, _ = _canvas()
    draw_person(plain, _view())
    draw_person(stripes, _view(look=striped))
    assert _count(plain, (0, 0, 255)) == 0
    assert _count(stripes, (0, 0, 255)) > 150 and _count(stripes, (255, 0, 0)) > 150
    # An emblem is printed on the front only.
    emblem = replace(LOOK, top=replace(LOOK.top, pattern="emblem"))
    front, _ = _canvas()
    back, _ = _canvas()
    draw_person(front, _view(look=emblem))
    draw_person(back, _view(look=emblem, yaw=np.pi))
    assert _count(front, (0, 0, 255)) > 50 and _count(back, (0, 0, 255)) == 0


def test_cached_shapes_through_a_crop_equal_the_cropped_person():
    view = _view(look=replace(LOOK, top=replace(LOOK.top, pattern="checks")), arms=80)
    offset, factor = np.array([20.0, 40.0]), 0.5
    direct, l1 = _canvas()
    cached, l2 = _canvas()
    draw_person(direct, view.transformed(offset, factor), l1, 3)
    draw_shapes(cached, person_shapes(view), view.scale, offset, factor, l2, 3)
    assert np.array_equal(l1, l2)
    assert np.abs(direct.astype(int) - cached.astype(int)).max() <= 1
