"""One synthetic dance video seen whole: every frame rendered in full, with the true box and
visible fraction of every dancer in it.

The dancers, their shared choreography, formations, venue, camera drift and lighting come from
the `streid synth` generator (streid_core.data.synth); this module adds what a tracking video
needs on top: whole frames instead of crops, and dancers walking out of the frame and back
(exits). Dancers are drawn far to near into an owner map (which dancer each pixel shows), so a
dancer's full silhouette is known right after it is drawn, and what is left of it once the
nearer ones are drawn is what the camera sees.

Everything is a function of (seed, sequence index) through its own random stream, and a frame's
pixels depend on its frame number only, so frames can be rendered in any order, in any process.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterator

import cv2
import numpy as np

from ..synth.appearance import Appearance, sample_appearance, sample_theme
from ..synth.choreography import STYLES, DanceStyle, Performer, make_choreography
from ..synth.formation import make_formation
from ..synth.render import PersonView, draw_shapes, person_shapes
from ..synth.skeleton import D, body_joints, turn
from ..synth.stage import CameraPose, make_stage
from .config import VideoConfig
from .exits import Exit, apply_exits, plan_exits

# Spawn keys of the random streams. `streid synth` draws from [seed, 0] and [seed, 1, video], so
# a video's dancers never repeat a re-ID training identity, whatever the two seeds.
SEQUENCE_STREAM = 7001
FRAME_STREAM = 7002
MIN_IN_FRAME = 0.25  # a dancer with less of its body inside the frame is not annotated


@dataclass(frozen=True)
class FrameTruth:
    """Ground truth of one frame: the annotated dancers' ids (dancer index + 1), their boxes
    (m, 4) x, y, w, h around the whole silhouette (clipped to the frame, not to occluders), and
    their visibility: the fraction of the body neither covered by a nearer dancer nor outside
    the frame."""

    frame: int  # 1-based, as in MOTChallenge
    ids: np.ndarray
    boxes: np.ndarray
    visibility: np.ndarray


@dataclass
class _Poses:
    """Everyone at some raw frame times: frame keypoints (T, n, 17, 2), joint depths (T, n, 17),
    yaw (T, n), pixels per metre (T, n), stage position (T, n, 2) and the camera per time."""

    keypoints: np.ndarray
    depth: np.ndarray
    yaw: np.ndarray
    scale: np.ndarray
    stage_position: np.ndarray
    cameras: list[CameraPose]


def sequence_name(index: int) -> str:
    return f"synthdance-{index + 1:02d}"


class DanceSequence:
    """Sequence `index` of the videos a `VideoConfig` describes."""

    def __init__(self, config: VideoConfig, index: int) -> None:
        self.config = config
        self.index = index
        self.name = sequence_name(index)
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, SEQUENCE_STREAM, index]))
        n = int(rng.integers(config.min_dancers, config.max_dancers + 1))
        self.themed = bool(rng.random() < config.theme_fraction)
        theme = sample_theme(rng) if self.themed else None
        self.looks: list[Appearance] = [sample_appearance(rng, theme) for _ in range(n)]
        self.raw_times = np.arange(config.frames, dtype=np.float64) * config.frame_step
        duration = float(self.raw_times[-1] + 1)
        self.style: DanceStyle = STYLES[int(rng.integers(len(STYLES)))]
        self.dance = make_choreography(rng, duration, self.style)
        self.performers = [Performer.random(rng, duration) for _ in self.looks]
        self.formation = make_formation(rng, n, duration)
        group_width = float(np.ptp(self.formation.slots[..., 0], axis=1).max()) + 1.0
        stage = make_stage(rng, duration, group_width)
        # The venue's camera, filming straight at our frame size: zoom scales with the width.
        width, height = config.width, config.height
        self.stage = replace(stage, frame_size=(width, height), base_zoom=stage.base_zoom * width / stage.frame_size[0])
        self.exits: tuple[Exit, ...] = plan_exits(rng, config, self.formation, self.stage, duration)
        # Sensor noise: one field twice the frame size, read at a random offset in each frame.
        self.noise = rng.standard_normal((2 * height, 2 * width, 3), dtype=np.float32) * np.float32(self.stage.noise)

    @property
    def num_dancers(self) -> int:
        return len(self.looks)

    def _poses(self, t: np.ndarray) -> _Poses:
        positions = apply_exits(self.formation.positions(t), t, self.exits, self.stage)
        cameras = [self.stage.camera(float(tf)) for tf in t]
        shape = (len(t), self.num_dancers)
        keypoints, depth = np.empty(shape + (17, 2)), np.empty(shape + (17,))
        yaw, scale = np.empty(shape), np.empty(shape)
        for i, (look, performer) in enumerate(zip(self.looks, self.performers)):
            angles = performer.angles(self.dance, t)
            joints = turn(body_joints(look.body, angles), angles[:, D["yaw"]])
            yaw[:, i] = angles[:, D["yaw"]]
            depth[:, i] = joints[..., 2]
            for k, camera in enumerate(cameras):
                x, z = positions[k, i]
                keypoints[k, i] = self.stage.to_frame(camera, x + joints[k, :, 0], joints[k, :, 1], z)
                scale[k, i] = float(self.stage.scale_at(camera, z))
        return _Poses(keypoints, depth, yaw, scale, positions, cameras)

    def render(self, frames: list[int] | None = None) -> Iterator[tuple[np.ndarray, FrameTruth]]:
        """(RGB uint8 image, truth) of each 1-based frame number in `frames` (default: all)."""
        frames = list(range(1, self.config.frames + 1)) if frames is None else list(frames)
        if not frames:
            return
        poses = self._poses(self.raw_times[np.asarray(frames) - 1])
        for k, frame in enumerate(frames):
            yield self._render_frame(frame, poses, k)

    def _render_frame(self, frame: int, poses: _Poses, k: int) -> tuple[np.ndarray, FrameTruth]:
        width, height = self.stage.frame_size
        t = float(self.raw_times[frame - 1])
        camera = poses.cameras[k]
        views = [PersonView(poses.keypoints[k, i], poses.depth[k, i], float(poses.scale[k, i]), float(poses.yaw[k, i]), look)
                 for i, look in enumerate(self.looks)]
        body_boxes = np.array([_body_box(v) for v in views])
        in_frame = _inside_fraction(body_boxes, width, height)
        order = sorted((int(i) for i in np.flatnonzero(in_frame > 0)), key=lambda i: (-poses.stage_position[k, i, 1], i))

        image = self.stage.background(camera, np.zeros(2), 1.0, (height, width))
        floor = self.stage.to_frame(camera, poses.stage_position[k, :, 0], np.zeros(self.num_dancers),
                                    poses.stage_position[k, :, 1])[:, 1]
        _draw_shadows(image, views, floor, order)
        owner = np.zeros((height, width), np.uint8)
        silhouettes: dict[int, tuple[int, tuple[int, int, int, int]]] = {}
        for i in order:
            draw_shapes(image, person_shapes(views[i]), views[i].scale, labels=owner, label=i + 1)
            mine = (owner == i + 1).astype(np.uint8)
            area = cv2.countNonZero(mine)
            if area:
                silhouettes[i] = (area, cv2.boundingRect(mine))

        ids, boxes, visibility = [], [], []
        for i in sorted(silhouettes):
            if in_frame[i] < MIN_IN_FRAME:
                continue
            area, box = silhouettes[i]
            ids.append(i + 1)
            boxes.append(box)
            visibility.append(in_frame[i] * np.count_nonzero(owner == i + 1) / area)
        truth = FrameTruth(frame, np.array(ids, dtype=np.int64), np.array(boxes, dtype=np.float64).reshape(-1, 4),
                           np.array(visibility, dtype=np.float64))
        return self._degrade(image, t, frame), truth

    def _degrade(self, image: np.ndarray, t: float, frame: int) -> np.ndarray:
        """The venue's light, the lens's drifting focus and sensor noise."""
        width, height = self.stage.frame_size
        img = cv2.multiply(image, self.stage.light(t, np.zeros(2), 1.0, (height, width)), dtype=cv2.CV_32F)
        sigma = float(self.stage.focus(t)[0])
        if sigma > 0.3:
            img = cv2.GaussianBlur(img, (0, 0), sigma)
        rng = np.random.default_rng(np.random.SeedSequence([self.config.seed, FRAME_STREAM, self.index, frame]))
        dy, dx = int(rng.integers(0, height)), int(rng.integers(0, width))
        img += self.noise[dy:dy + height, dx:dx + width]
        return cv2.convertScaleAbs(np.maximum(img, 0))  # rounds and saturates at 255


def _body_box(view: PersonView) -> np.ndarray:
    """x0, y0, x1, y1 around the joints, padded by hair (top), shoes (bottom) and limb width."""
    k, s = view.keypoints, view.scale
    return np.array([k[:, 0].min() - 0.07 * s, k[:, 1].min() - 0.2 * s, k[:, 0].max() + 0.07 * s, k[:, 1].max() + 0.07 * s])


def _inside_fraction(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Share of each x0, y0, x1, y1 box's area inside the frame."""
    w = np.clip(boxes[:, 2], 0, width) - np.clip(boxes[:, 0], 0, width)
    h = np.clip(boxes[:, 3], 0, height) - np.clip(boxes[:, 1], 0, height)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None) / area


def _draw_shadows(image: np.ndarray, views: list[PersonView], floor: np.ndarray, order: list[int]) -> None:
    """A soft dark ellipse on the floor under each dancer's feet."""
    shade = np.zeros(image.shape[:2], np.float32)
    for i in order:
        v = views[i]
        centre = (int((v.keypoints[15, 0] + v.keypoints[16, 0]) / 2), int(floor[i]))
        axes = (max(1, int(0.32 * v.scale)), max(1, int(0.06 * v.scale)))
        cv2.ellipse(shade, centre, axes, 0, 0, 360, 0.35, -1, cv2.LINE_AA)
    image[:] = (image * (1 - shade[..., None])).astype(np.uint8)
