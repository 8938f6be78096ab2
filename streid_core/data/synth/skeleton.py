"""Forward kinematics: joint angles + body proportions -> the 17 COCO joints in 3-D.

Body frame (metres): x = the person's left, y = up, z = the way the person faces. The floor is
y = 0. Angles are radians; the degrees of freedom are listed in `DOF`. A whole dance is
evaluated at once: angles (T, len(DOF)) -> joints (T, 17, 3).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DOF = (
    "torso_roll", "torso_pitch", "torso_twist", "head_roll",
    "l_arm_abd", "l_arm_flex", "l_elbow_abd", "l_elbow_flex",
    "r_arm_abd", "r_arm_flex", "r_elbow_abd", "r_elbow_flex",
    "l_leg_abd", "l_leg_flex", "l_knee",
    "r_leg_abd", "r_leg_flex", "r_knee",
    "yaw", "jump",
)
D = {name: i for i, name in enumerate(DOF)}

# Relaxed standing pose; choreography moves are deviations from it.
NEUTRAL = np.zeros(len(DOF))
NEUTRAL[[D["l_arm_abd"], D["r_arm_abd"]]] = np.radians(10)
NEUTRAL[[D["l_elbow_flex"], D["r_elbow_flex"]]] = np.radians(12)
NEUTRAL[[D["l_leg_abd"], D["r_leg_abd"]]] = np.radians(4)
NEUTRAL[[D["l_knee"], D["r_knee"]]] = np.radians(4)


@dataclass(frozen=True)
class Body:
    """Proportions of one identity, in metres (build scales limb and torso thickness)."""

    height: float
    shoulder_half: float
    hip_half: float
    torso: float  # hip centre to shoulder centre
    thigh: float
    shin: float
    upper_arm: float
    forearm: float
    head_radius: float
    neck: float
    build: float

    @property
    def ankle_height(self) -> float:
        return 0.045 * self.height


def _rot_x(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _rot_y(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rot_z(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def limb_direction(abduction: np.ndarray, flexion: np.ndarray, side: float) -> np.ndarray:
    """Unit vector of a limb hanging straight down, swung `abduction` out to its side (side=+1
    left, -1 right) and then `flexion` forward. (T,) angles -> (T, 3)."""
    return np.stack(
        [side * np.sin(abduction), -np.cos(abduction) * np.cos(flexion), np.cos(abduction) * np.sin(flexion)],
        -1,
    )


def _apply(rot: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.einsum("tij,tj->ti", rot, v)


def body_joints(body: Body, angles: np.ndarray) -> np.ndarray:
    """COCO-17 joints (T, 17, 3) in the body frame for angles (T, len(DOF)), standing on the floor.

    `yaw` is not applied here (it turns the whole body in the scene); `jump` lifts the lowest
    ankle above its resting height.
    """
    a = np.atleast_2d(angles)
    t = len(a)
    out = np.zeros((t, 17, 3))
    pelvis = np.zeros((t, 3))
    torso_rot = _rot_y(a[:, D["torso_twist"]]) @ _rot_z(a[:, D["torso_roll"]]) @ _rot_x(a[:, D["torso_pitch"]])
    up = np.broadcast_to([0.0, 1.0, 0.0], (t, 3))
    lateral = np.broadcast_to([1.0, 0.0, 0.0], (t, 3))
    spine = _apply(torso_rot, up)
    neck = pelvis + body.torso * spine
    shoulder_axis = _apply(torso_rot, lateral)
    out[:, 5] = neck + body.shoulder_half * shoulder_axis
    out[:, 6] = neck - body.shoulder_half * shoulder_axis

    head_rot = torso_rot @ _rot_z(a[:, D["head_roll"]])
    r = body.head_radius
    centre = neck + _apply(head_rot, np.broadcast_to([0.0, body.neck + r, 0.01], (t, 3)))
    face = {0: (0.0, -0.2, 1.0), 1: (0.4, 0.15, 0.85), 2: (-0.4, 0.15, 0.85), 3: (0.85, 0.0, -0.1), 4: (-0.85, 0.0, -0.1)}
    for j, offset in face.items():
        out[:, j] = centre + _apply(head_rot, np.broadcast_to(np.array(offset) * r, (t, 3)))

    for side, (sh, el, wr), pre in ((1.0, (5, 7, 9), "l"), (-1.0, (6, 8, 10), "r")):
        abd, flex = a[:, D[f"{pre}_arm_abd"]], a[:, D[f"{pre}_arm_flex"]]
        upper = _apply(torso_rot, limb_direction(abd, flex, side))
        fore = _apply(
            torso_rot,
            limb_direction(abd + a[:, D[f"{pre}_elbow_abd"]], flex + a[:, D[f"{pre}_elbow_flex"]], side),
        )
        out[:, el] = out[:, sh] + body.upper_arm * upper
        out[:, wr] = out[:, el] + body.forearm * fore

    for side, (hp, kn, an), pre in ((1.0, (11, 13, 15), "l"), (-1.0, (12, 14, 16), "r")):
        abd, flex = a[:, D[f"{pre}_leg_abd"]], a[:, D[f"{pre}_leg_flex"]]
        out[:, hp] = pelvis + side * body.hip_half * lateral
        out[:, kn] = out[:, hp] + body.thigh * limb_direction(abd, flex, side)
        out[:, an] = out[:, kn] + body.shin * limb_direction(abd, flex - a[:, D[f"{pre}_knee"]], side)

    # Stand on the floor: the lowest ankle rests at ankle height, raised by the jump.
    lowest = np.minimum(out[:, 15, 1], out[:, 16, 1])
    out[:, :, 1] += (body.ankle_height + np.maximum(a[:, D["jump"]], 0.0) - lowest)[:, None]
    return out


def turn(joints: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Rotate body-frame joints (T, K, 3) about the vertical axis by yaw (T,): at yaw 0 the person
    faces the camera (+z), at pi they show their back."""
    return np.einsum("tij,tkj->tki", _rot_y(np.asarray(yaw, dtype=np.float64)), joints)
