"""Constant-velocity Kalman filter over a box's centre, aspect ratio and height.

The state is (cx, cy, a, h, vcx, vcy, va, vh): the box centre, its aspect ratio a = w / h, its
height, and the per-frame velocity of each. A detection measures (cx, cy, a, h) directly. This is
the motion model of SORT and DeepSORT. Position and velocity noise are proportional to the box
height, so a tall (near) person may move more pixels per frame than a small (far) one; the aspect
ratio gets a small fixed noise because people keep roughly the same shape.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STATE_SIZE = 8
MEASUREMENT_SIZE = 4


@dataclass(frozen=True)
class KalmanNoise:
    """Standard deviations of the filter's noise, relative to the box height where noted.

    position_weight: measurement and process noise of cx, cy, h (fraction of h per frame).
    velocity_weight: process noise of the velocities (fraction of h per frame).
    aspect_std / aspect_velocity_std / aspect_measurement_std: absolute, for the aspect ratio.
    initial_position_scale / initial_velocity_scale: how much more uncertain a new track is.
    """

    position_weight: float = 1.0 / 20.0
    velocity_weight: float = 1.0 / 160.0
    aspect_std: float = 1e-2
    aspect_velocity_std: float = 1e-5
    aspect_measurement_std: float = 1e-1
    initial_position_scale: float = 2.0
    initial_velocity_scale: float = 10.0


def xywh_to_xyah(boxes: np.ndarray) -> np.ndarray:
    """(N,4) top-left x, y, width, height -> (N,4) centre x, centre y, aspect w/h, height."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = boxes.copy()
    out[:, 0] = boxes[:, 0] + boxes[:, 2] / 2.0
    out[:, 1] = boxes[:, 1] + boxes[:, 3] / 2.0
    out[:, 2] = boxes[:, 2] / boxes[:, 3]
    return out


def xyah_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """Inverse of xywh_to_xyah."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = boxes.copy()
    width = boxes[:, 2] * boxes[:, 3]
    out[:, 0] = boxes[:, 0] - width / 2.0
    out[:, 1] = boxes[:, 1] - boxes[:, 3] / 2.0
    out[:, 2] = width
    return out


class BoxKalmanFilter:
    """Predict/update steps of the constant-velocity box filter (one frame = one time unit)."""

    def __init__(self, noise: KalmanNoise | None = None) -> None:
        self.noise = noise or KalmanNoise()
        self._transition = np.eye(STATE_SIZE)
        self._transition[:MEASUREMENT_SIZE, MEASUREMENT_SIZE:] = np.eye(MEASUREMENT_SIZE)
        self._observation = np.eye(MEASUREMENT_SIZE, STATE_SIZE)

    def _position_std(self, height: float) -> np.ndarray:
        n = self.noise
        return np.array([n.position_weight * height, n.position_weight * height, n.aspect_std,
                         n.position_weight * height])

    def _velocity_std(self, height: float) -> np.ndarray:
        n = self.noise
        return np.array([n.velocity_weight * height, n.velocity_weight * height, n.aspect_velocity_std,
                         n.velocity_weight * height])

    def initiate(self, measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A new track at `measurement` (cx, cy, a, h) with zero velocity and a wide covariance."""
        measurement = np.asarray(measurement, dtype=np.float64)
        mean = np.concatenate([measurement, np.zeros(MEASUREMENT_SIZE)])
        height = measurement[3]
        std = np.concatenate([self._position_std(height) * self.noise.initial_position_scale,
                              self._velocity_std(height) * self.noise.initial_velocity_scale])
        # The aspect entries keep their own absolute scale rather than the initial multipliers.
        std[2] = self.noise.aspect_std
        std[6] = self.noise.aspect_velocity_std
        return mean, np.diag(std**2)

    def predict(self, mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One frame ahead: x' = F x, P' = F P F^T + Q, Q scaled by the current height."""
        height = mean[3]
        process = np.diag(np.concatenate([self._position_std(height), self._velocity_std(height)]) ** 2)
        mean = self._transition @ mean
        covariance = self._transition @ covariance @ self._transition.T + process
        return mean, covariance

    def project(self, mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The state's distribution in measurement space: H x and H P H^T + R."""
        height = mean[3]
        n = self.noise
        measurement_std = np.array([n.position_weight * height, n.position_weight * height,
                                    n.aspect_measurement_std, n.position_weight * height])
        projected_mean = self._observation @ mean
        projected_cov = self._observation @ covariance @ self._observation.T + np.diag(measurement_std**2)
        return projected_mean, projected_cov

    def update(self, mean: np.ndarray, covariance: np.ndarray,
               measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correct the prediction with a measured box (cx, cy, a, h)."""
        projected_mean, projected_cov = self.project(mean, covariance)
        cross = covariance @ self._observation.T  # P H^T
        # Kalman gain K = P H^T S^-1, solved rather than inverted (S is symmetric positive definite).
        gain = np.linalg.solve(projected_cov, cross.T).T
        innovation = np.asarray(measurement, dtype=np.float64) - projected_mean
        new_mean = mean + gain @ innovation
        new_covariance = covariance - gain @ projected_cov @ gain.T
        return new_mean, new_covariance
