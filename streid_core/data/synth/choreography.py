"""The dance of one video, shared by all its dancers, and each dancer's small personal deviation.

This is what makes pose a trap: at any frame every dancer of a video holds nearly the same
pose, so a descriptor that encodes pose matches the neighbour rather than the person.

A choreography is a list of key poses placed on the beat and blended smoothly, plus a bounce on
every beat. A dancer follows it with a small time lag, a personal amplitude (some dance bigger)
and slow angle noise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .skeleton import DOF, NEUTRAL, D
from .smooth import SmoothCurve, smooth_blend

FPS = 30.0


@dataclass(frozen=True)
class DanceStyle:
    name: str
    bpm: tuple[float, float]
    arm_energy: float  # how often arms leave the relaxed pose
    leg_energy: float  # how often legs kick, lunge or crouch
    turn_rate: float  # probability per key pose of turning to the back / spinning
    bounce: float  # metres of vertical bounce per beat


STYLES = (
    DanceStyle("kpop", (100, 130), 0.85, 0.5, 0.12, 0.03),
    DanceStyle("jpop", (110, 140), 0.8, 0.4, 0.08, 0.035),
    DanceStyle("hiphop", (85, 105), 0.7, 0.7, 0.10, 0.05),
    DanceStyle("zumba", (120, 140), 0.9, 0.8, 0.06, 0.04),
    DanceStyle("locking", (95, 115), 0.9, 0.45, 0.06, 0.03),
    DanceStyle("choreo", (80, 120), 0.75, 0.6, 0.15, 0.025),
)


def _deg(*v: float) -> np.ndarray:
    return np.radians(np.array(v, dtype=np.float64))


# Arm moves: (upper-arm abduction, flexion, elbow abduction, elbow flexion) ranges in degrees.
ARM_MOVES = {
    "down": ((5, 25), (-10, 25), (-5, 10), (5, 30)),
    "side": ((70, 100), (-10, 20), (-20, 20), (0, 30)),
    "up": ((140, 175), (-10, 20), (-10, 15), (0, 25)),
    "forward": ((0, 25), (60, 100), (-20, 10), (0, 40)),
    "hands_on_hips": ((35, 50), (-15, 0), (-95, -70), (-10, 10)),
    "goal_post": ((75, 95), (0, 20), (70, 100), (-10, 10)),
    "cross": ((-35, -10), (60, 90), (-40, -10), (20, 60)),
    "punch_up": ((110, 150), (20, 50), (-10, 10), (0, 15)),
}
# Leg moves: per leg (abduction, flexion, knee) ranges; the second entry is the other leg.
LEG_MOVES = {
    "stand": (((2, 8), (-5, 5), (0, 15)), ((2, 8), (-5, 5), (0, 15))),
    "wide": (((14, 26), (-5, 10), (10, 35)), ((14, 26), (-5, 10), (10, 35))),
    "crouch": (((8, 18), (35, 55), (60, 95)), ((8, 18), (35, 55), (60, 95))),
    "side_kick": (((35, 60), (0, 20), (0, 20)), ((3, 10), (-5, 5), (5, 20))),
    "front_kick": (((0, 10), (50, 85), (0, 30)), ((3, 8), (-5, 5), (5, 20))),
    "step": (((3, 10), (15, 30), (20, 45)), ((3, 10), (-20, -8), (0, 15))),
    "knee_up": (((5, 15), (60, 90), (80, 110)), ((3, 8), (-5, 5), (5, 15))),
}


@dataclass(frozen=True)
class Choreography:
    """Key poses (n, len(DOF)) at key times (n,) in raw video frames, and the beat."""

    style: str
    key_times: np.ndarray
    key_poses: np.ndarray
    beat: float  # raw frames per beat
    bounce: float

    def angles(self, t: np.ndarray) -> np.ndarray:
        """Joint angles (T, len(DOF)) at raw frame times t (T,), fractional times allowed."""
        t = np.asarray(t, dtype=np.float64)
        k = np.clip(np.searchsorted(self.key_times, t, side="right") - 1, 0, len(self.key_times) - 2)
        t0, t1 = self.key_times[k], self.key_times[k + 1]
        w = smooth_blend((t - t0) / (t1 - t0))[:, None]
        out = self.key_poses[k] * (1 - w) + self.key_poses[k + 1] * w
        phase = np.abs(np.sin(np.pi * t / self.beat))
        out[:, D["jump"]] += self.bounce * phase
        # Knees give a little on every beat so the bounce looks like a bounce, not a float.
        out[:, [D["l_knee"], D["r_knee"]]] += np.radians(10) * (1 - phase)[:, None]
        return out


def _arm(rng: np.random.Generator, move: str) -> np.ndarray:
    return _deg(*(rng.uniform(lo, hi) for lo, hi in ARM_MOVES[move]))


def _legs(rng: np.random.Generator, move: str) -> tuple[np.ndarray, np.ndarray]:
    first, second = LEG_MOVES[move]
    a = _deg(*(rng.uniform(lo, hi) for lo, hi in first))
    b = _deg(*(rng.uniform(lo, hi) for lo, hi in second))
    return (a, b) if rng.random() < 0.5 else (b, a)


def _key_pose(rng: np.random.Generator, style: DanceStyle, yaw: float) -> np.ndarray:
    pose = NEUTRAL.copy()
    names = list(ARM_MOVES)
    if rng.random() < style.arm_energy:
        left = rng.choice(names)
        right = left if rng.random() < 0.55 else rng.choice(names)  # symmetric moves are common
    else:
        left = right = "down"
    pose[[D["l_arm_abd"], D["l_arm_flex"], D["l_elbow_abd"], D["l_elbow_flex"]]] = _arm(rng, left)
    pose[[D["r_arm_abd"], D["r_arm_flex"], D["r_elbow_abd"], D["r_elbow_flex"]]] = _arm(rng, right)
    legs = rng.choice(list(LEG_MOVES)[1:]) if rng.random() < style.leg_energy else "stand"
    lg, rg = _legs(rng, legs)
    pose[[D["l_leg_abd"], D["l_leg_flex"], D["l_knee"]]] = lg
    pose[[D["r_leg_abd"], D["r_leg_flex"], D["r_knee"]]] = rg
    pose[D["torso_roll"]] = np.radians(rng.normal(0, 7))
    pose[D["torso_pitch"]] = np.radians(rng.uniform(-5, 12) + (25 if legs == "crouch" else 0))
    pose[D["torso_twist"]] = np.radians(rng.normal(0, 12))
    pose[D["head_roll"]] = np.radians(rng.normal(0, 8))
    pose[D["yaw"]] = yaw
    pose[D["jump"]] = rng.uniform(0.1, 0.25) if rng.random() < 0.06 else 0.0
    return pose


def make_choreography(rng: np.random.Generator, duration: float, style: DanceStyle) -> Choreography:
    """A dance lasting `duration` raw frames: one key pose every one or two beats."""
    beat = FPS * 60.0 / rng.uniform(*style.bpm)
    times, poses = [0.0], []
    facing = 0.0  # 0 = towards the camera; multiples of 2 pi keep it so after a spin
    while times[-1] <= duration + 2 * beat:
        u = rng.random()
        if u < style.turn_rate * 0.5:
            facing += np.pi if rng.random() < 0.5 else -np.pi  # turn to the back or back again
        elif u < style.turn_rate:
            facing += 2 * np.pi * rng.choice([-1, 1])  # a full spin
        elif np.cos(facing) < 0 and rng.random() < 0.6:
            facing += np.pi * rng.choice([-1, 1])  # do not stay turned away for long
        poses.append(_key_pose(rng, style, facing + np.radians(rng.normal(0, 18))))
        times.append(times[-1] + beat * rng.choice([1, 2, 2]))
    return Choreography(
        style=style.name,
        key_times=np.array(times[:-1]),
        key_poses=np.array(poses),
        beat=beat,
        bounce=style.bounce * rng.uniform(0.5, 1.2),
    )


@dataclass(frozen=True)
class Performer:
    """How one dancer deviates from the shared choreography."""

    lag: float  # raw frames behind (+) or ahead (-) of the count
    amplitude: float  # scales every move away from the relaxed pose
    noise: SmoothCurve  # slow personal variation of every angle

    @classmethod
    def random(cls, rng: np.random.Generator, duration: float) -> "Performer":
        std = np.full(len(DOF), np.radians(5.0))
        std[D["jump"]] = 0.0
        std[D["yaw"]] = np.radians(6.0)
        return cls(
            lag=float(rng.uniform(-2.0, 2.0)),
            amplitude=float(rng.uniform(0.85, 1.12)),
            noise=SmoothCurve.random(rng, duration, spacing=12.0, std=std, channels=len(DOF)),
        )

    def angles(self, dance: Choreography, t: np.ndarray) -> np.ndarray:
        shared = dance.angles(np.asarray(t, dtype=np.float64) - self.lag)
        noise = self.noise(t)
        out = NEUTRAL + self.amplitude * (shared - NEUTRAL) + noise
        # Turning is not scaled: a dancer who turns less than the others would face another way.
        out[:, D["yaw"]] = shared[:, D["yaw"]] + noise[:, D["yaw"]]
        return out
