"""The dance: forward kinematics checked by hand, the shared choreography, and the property the
dataset exists for: pose is a trap (at one frame the dancers of a video share their pose)."""
from __future__ import annotations

import numpy as np
import pytest

from streid_core.data.synth.appearance import sample_appearance
from streid_core.data.synth.choreography import STYLES, Performer, make_choreography
from streid_core.data.synth.formation import make_formation
from streid_core.data.synth.scene import Dancer, VideoScene
from streid_core.data.synth.skeleton import DOF, D, Body, body_joints, turn

# Round numbers so every joint below can be worked out by hand.
BODY = Body(height=1.0, shoulder_half=0.2, hip_half=0.1, torso=0.5, thigh=0.4, shin=0.4,
            upper_arm=0.3, forearm=0.25, head_radius=0.1, neck=0.05, build=1.0)


def _pose(**degrees_or_metres) -> np.ndarray:
    a = np.zeros((1, len(DOF)))
    for name, value in degrees_or_metres.items():
        a[0, D[name]] = value if name == "jump" else np.radians(value)
    return a


def test_straight_pose_by_hand():
    j = body_joints(BODY, _pose())[0]
    # Ankles rest at ankle height 0.045 * 1.0; hips 0.4 + 0.4 above: 0.845; shoulders 0.5 higher.
    np.testing.assert_allclose(j[15], [0.1, 0.045, 0.0], atol=1e-9)
    np.testing.assert_allclose(j[16], [-0.1, 0.045, 0.0], atol=1e-9)
    np.testing.assert_allclose(j[11], [0.1, 0.845, 0.0], atol=1e-9)
    np.testing.assert_allclose(j[5], [0.2, 1.345, 0.0], atol=1e-9)
    np.testing.assert_allclose(j[6], [-0.2, 1.345, 0.0], atol=1e-9)
    # Arms hang straight: wrist 0.3 + 0.25 = 0.55 below the shoulder.
    np.testing.assert_allclose(j[9], [0.2, 0.795, 0.0], atol=1e-9)
    # Head centre = neck + (0, neck + r, 0.01) = (0, 1.345 + 0.15, 0.01); nose = centre + (0, -0.02, 0.1).
    np.testing.assert_allclose(j[0], [0.0, 1.475, 0.11], atol=1e-9)
    # Person's left is +x: left eye and ear on the +x side.
    assert j[1, 0] > 0 > j[2, 0] and j[3, 0] > 0 > j[4, 0]


def test_arm_and_leg_angles_by_hand():
    # Left arm raised sideways 90 deg: wrist 0.55 out from the shoulder at shoulder height.
    j = body_joints(BODY, _pose(l_arm_abd=90, r_arm_abd=90))[0]
    np.testing.assert_allclose(j[9], [0.75, 1.345, 0.0], atol=1e-9)
    np.testing.assert_allclose(j[10], [-0.75, 1.345, 0.0], atol=1e-9)
    # Left arm flexed 90 deg: straight forward (+z), elbow at 0.3.
    j = body_joints(BODY, _pose(l_arm_flex=90))[0]
    np.testing.assert_allclose(j[7], [0.2, 1.345, 0.3], atol=1e-9)
    np.testing.assert_allclose(j[9], [0.2, 1.345, 0.55], atol=1e-9)
    # Left knee bent 90 deg with the thigh vertical: the shin points backwards; the right leg
    # still stands, so hips stay at 0.845, left knee at 0.445 and left ankle 0.4 behind it.
    j = body_joints(BODY, _pose(l_knee=90))[0]
    np.testing.assert_allclose(j[13], [0.1, 0.445, 0.0], atol=1e-9)
    np.testing.assert_allclose(j[15], [0.1, 0.445, -0.4], atol=1e-9)
    # A jump lifts everything.
    up = body_joints(BODY, _pose(jump=0.2))[0] - body_joints(BODY, _pose())[0]
    np.testing.assert_allclose(up, np.tile([0.0, 0.2, 0.0], (17, 1)), atol=1e-9)


def test_turning_round_shows_the_back():
    j = body_joints(BODY, _pose())
    back = turn(j, np.array([np.pi]))[0]
    np.testing.assert_allclose(back[:, 0], -j[0, :, 0], atol=1e-9)  # the person's left is now image-left
    np.testing.assert_allclose(back[:, 2], -j[0, :, 2], atol=1e-9)  # the nose points away from the camera
    side = turn(j, np.array([np.pi / 2]))[0]
    assert side[0, 0] > 0.1 and abs(side[0, 2]) < 1e-9  # facing image-right: the nose sticks out right


def test_dancers_share_the_dance_but_not_the_details():
    rng = np.random.default_rng(0)
    dance = make_choreography(rng, 300.0, STYLES[0])
    a, b = Performer.random(rng, 300.0), Performer.random(rng, 300.0)
    t = np.arange(0.0, 300.0, 5.0)
    pa, pb = a.angles(dance, t), b.angles(dance, t)
    limbs = [D[n] for n in DOF if n not in ("yaw", "jump")]
    between_dancers = np.abs(pa - pb)[:, limbs].mean()
    over_time = np.abs(pa[:-12] - pa[12:])[:, limbs].mean()  # one dancer, 60 raw frames apart
    assert 0 < between_dancers < over_time / 3
    # Turns are shared: both face the same way, up to personal noise and timing (mid-spin a
    # lag of a frame or two is worth tens of degrees).
    yaw_gap = np.abs(np.angle(np.exp(1j * (pa[:, D["yaw"]] - pb[:, D["yaw"]]))))
    assert np.median(yaw_gap) < np.radians(10)


def test_formations_move_and_keep_dancers_apart():
    f = make_formation(np.random.default_rng(1), n=6, duration=600.0)
    pos = f.positions(np.arange(0.0, 600.0, 5.0))
    assert pos.shape == (120, 6, 2)
    assert np.ptp(pos[..., 0], axis=0).max() > 0.5, "dancers change place over the video"
    settled = pos[[0, 40, 80, 119]]
    gaps = np.linalg.norm(settled[:, :, None] - settled[:, None], axis=-1) + np.eye(6) * 9
    assert np.median(gaps.min(axis=2)) > 0.5


def _normalised(kps: np.ndarray) -> np.ndarray:
    """Pose without position and size: centred on the torso, divided by torso length."""
    centre = np.nanmean(kps[[5, 6, 11, 12]], axis=0)
    torso = np.linalg.norm(np.nanmean(kps[[5, 6]], axis=0) - np.nanmean(kps[[11, 12]], axis=0))
    return (kps - centre) / torso


def _pose_distance(a: np.ndarray, b: np.ndarray) -> float:
    both = np.isfinite(a[:, 0]) & np.isfinite(b[:, 0])
    return float(((a[both] - b[both]) ** 2).sum(1).mean())


@pytest.mark.filterwarnings("ignore:Mean of empty slice")
def test_pose_is_a_trap():
    rng = np.random.default_rng(5)
    dancers = [Dancer(pid, sample_appearance(rng)) for pid in range(4)]
    scene = VideoScene(rng, dancers, list(range(0, 200, 5)), (64, 32))
    dets = [d for d in scene.detections() if np.isfinite(d.keypoints[[5, 6, 11, 12]]).all()]
    poses = {(d.pid, d.frame): _normalised(d.keypoints) for d in dets}
    same_frame, same_dancer_later = [], []
    for (p, f), k in poses.items():
        for (q, g), m in poses.items():
            if f == g and p < q:
                same_frame.append(_pose_distance(k, m))
            elif p == q and g - f >= 50:
                same_dancer_later.append(_pose_distance(k, m))
    # Another dancer at the same moment looks far more alike in pose than the same dancer a
    # couple of seconds later: a pose-encoding feature would match the wrong person.
    assert np.median(same_frame) < np.median(same_dancer_later) / 3
