"""One video: a group performing one choreography on one stage, seen through detector crops.

For every sampled frame and every dancer this produces what the DanceReID pipeline kept: a
crop around a jittered detector box, expanded to the output aspect ratio (as DanceReID expands
boxes to 2:1) and resized, with the neighbours that fall inside it drawn in depth order, the
video's drifting light, defocus, motion blur from the dancer's own movement, the resolution the
dancer had in the source video, and sensor noise. Its keypoints are the true joints moved into
the crop with pose-estimator noise; joints outside the crop, hidden behind a neighbour (often)
or on a face turned away are missing (NaN). Dancers mostly hidden or out of frame are dropped,
as an annotator would drop them (but every dancer keeps at least one image).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import cv2
import numpy as np

from .appearance import Appearance
from .choreography import STYLES, Choreography, Performer, make_choreography
from .formation import Formation, make_formation
from .render import PersonView, Shape, draw_shapes, person_shapes
from .skeleton import D, body_joints, turn
from .stage import CameraPose, Stage, make_stage

MIN_VISIBLE = 0.5  # below this fraction of the body visible, the detection is not annotated
MIN_IN_FRAME = 0.6  # nor when less than this part of the dancer is inside the video frame
OCCLUDED_JOINT_MISSING = 0.6  # chance that the pose estimator loses a joint hidden by someone


@dataclass(frozen=True)
class Dancer:
    pid: int
    look: Appearance


@dataclass(frozen=True)
class Detection:
    pid: int
    frame: int
    image: np.ndarray  # (H, W, 3) uint8 RGB
    keypoints: np.ndarray  # (17, 2) x, y in the crop, NaN where missing
    visible: float  # fraction of the dancer's pixels not covered by a neighbour
    in_frame: float  # fraction of the dancer's box inside the source video frame
    blurred: bool  # motion or defocus blur of at least about one output pixel

    @property
    def annotated(self) -> bool:
        """Whether an annotator would have kept this detection."""
        return self.visible >= MIN_VISIBLE and self.in_frame >= MIN_IN_FRAME

    @property
    def quality(self) -> float:
        return self.visible * min(1.0, self.in_frame / MIN_IN_FRAME)


@dataclass
class _Moment:
    """Everyone at one sampled frame, in the pixels of the source video frame."""

    t: float
    camera: CameraPose
    views: list[PersonView]
    boxes: list[np.ndarray]  # tight box (x0, y0, x1, y1) around each dancer
    depth: np.ndarray  # stage depth of each dancer: far ones are drawn first
    floor: np.ndarray  # frame row of the floor under each dancer (where the shadow falls)
    motion: np.ndarray  # (n, 2) mean joint velocity, frame pixels per raw frame
    cache: dict[int, list[Shape]] = field(default_factory=dict)

    def shapes(self, i: int) -> list[Shape]:
        """Dancer i's shapes, built once: a dancer appears in the crops of its neighbours too."""
        if i not in self.cache:
            self.cache[i] = person_shapes(self.views[i])
        return self.cache[i]


class VideoScene:
    """Everything about one synthetic video; `detections()` renders it frame by frame."""

    def __init__(self, rng: np.random.Generator, dancers: list[Dancer], frames: list[int], size: tuple[int, int]):
        self.rng = rng
        self.dancers = dancers
        self.frames = frames
        self.size = size  # (height, width) of every crop
        duration = float(frames[-1] + 1)
        self.style = STYLES[int(rng.integers(len(STYLES)))]
        self.dance: Choreography = make_choreography(rng, duration, self.style)
        self.performers = [Performer.random(rng, duration) for _ in dancers]
        self.formation: Formation = make_formation(rng, len(dancers), duration)
        width = float(np.ptp(self.formation.slots[..., 0], axis=1).max()) + 1.0
        self.stage: Stage = make_stage(rng, duration, width)
        # Sensor noise: one field twice the crop size per video, each crop reads it at a random
        # offset (drawing fresh normals for every crop would cost more than the drawing itself).
        h, w = size
        self.noise = rng.standard_normal((2 * h, 2 * w, 3), dtype=np.float32) * np.float32(self.stage.noise)

    def _keypoints(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """At raw frames t (T,): frame keypoints (T, n, 17, 2), joint depths (T, n, 17), yaw (T, n)
        and scale in pixels per metre (T, n)."""
        pos = self.formation.positions(t)
        kps, depth, yaw, scale = [], [], [], []
        cams = [self.stage.camera(float(tf)) for tf in t]
        for i, (dancer, performer) in enumerate(zip(self.dancers, self.performers)):
            angles = performer.angles(self.dance, t)
            joints = turn(body_joints(dancer.look.body, angles), angles[:, D["yaw"]])
            kps.append(np.stack([self.stage.to_frame(c, x + j[:, 0], j[:, 1], z)
                                 for c, (x, z), j in zip(cams, pos[:, i], joints)]))
            depth.append(joints[..., 2])
            yaw.append(angles[:, D["yaw"]])
            scale.append([float(self.stage.scale_at(c, z)) for c, z in zip(cams, pos[:, i, 1])])
        return (np.stack(kps, 1), np.stack(depth, 1), np.stack(yaw, 1), np.array(scale).T)

    def _moments(self) -> Iterator[_Moment]:
        t = np.asarray(self.frames, dtype=np.float64)
        kps, depth, yaw, scale = self._keypoints(t)
        kps_later = self._keypoints(t + 0.5)[0]  # half a frame later: how fast each dancer moves
        pos = self.formation.positions(t)
        for f, tf in enumerate(t):
            cam = self.stage.camera(float(tf))
            views = [PersonView(kps[f, i], depth[f, i], float(scale[f, i]), float(yaw[f, i]), d.look)
                     for i, d in enumerate(self.dancers)]
            yield _Moment(
                t=float(tf), camera=cam, views=views, boxes=[self._tight_box(v) for v in views],
                depth=pos[f, :, 1], floor=self.stage.to_frame(cam, pos[f, :, 0], np.zeros(len(views)), pos[f, :, 1])[:, 1],
                motion=2.0 * (kps_later[f] - kps[f]).mean(axis=1),
            )

    @staticmethod
    def _tight_box(view: PersonView) -> np.ndarray:
        # Joints are inside the body: pad by hands and hair (top), shoes (bottom), limb width (sides).
        k, s = view.keypoints, view.scale
        return np.array([k[:, 0].min() - 0.07 * s, k[:, 1].min() - 0.2 * s, k[:, 0].max() + 0.07 * s, k[:, 1].max() + 0.07 * s])

    def _detector_box(self, box: np.ndarray) -> tuple[np.ndarray, float, float]:
        """Jitter a tight box like a detector, expand it to the output aspect ratio and keep it in
        the frame; returns (top-left corner, crop height, part of the dancer inside the frame)."""
        fw, fh = self.stage.frame_size
        w, h = box[2] - box[0], box[3] - box[1]
        inside = (np.clip(box[[0, 2]], 0, fw) @ [-1, 1]) * (np.clip(box[[1, 3]], 0, fh) @ [-1, 1]) / (w * h)
        spread = 3.0 if self.rng.random() < 0.1 else 1.0  # now and then the detector is well off
        x0, x1 = box[[0, 2]] + self.rng.normal(0, 0.06 * w * spread, 2)
        y0, y1 = box[[1, 3]] + self.rng.normal(0, 0.04 * h * spread, 2)
        ratio = self.size[0] / self.size[1]
        ch = max(y1 - y0, 0.5 * h, ratio * max(x1 - x0, 0.2 * w))  # DanceReID: height = max(h, 2 w)
        cw = ch / ratio
        left = float(np.clip((x0 + x1 - cw) / 2, 0, max(fw - cw, 0)))
        top = float(np.clip((y0 + y1 - ch) / 2, 0, max(fh - ch, 0)))
        return np.array([left, top]), float(ch), float(inside)

    def _shadows(self, image: np.ndarray, moment: _Moment, order: list[int], offset: np.ndarray, factor: float) -> None:
        shade = np.zeros(image.shape[:2], np.float32)
        for i in order:
            v = moment.views[i]
            c = (np.array([(v.keypoints[15, 0] + v.keypoints[16, 0]) / 2, moment.floor[i]]) - offset) * factor
            axes = (max(1, int(0.32 * v.scale * factor)), max(1, int(0.06 * v.scale * factor)))
            cv2.ellipse(shade, (int(c[0]), int(c[1])), axes, 0, 0, 360, 0.35, -1, cv2.LINE_AA)
        image[:] = (image * (1 - shade[..., None])).astype(np.uint8)

    def _compose(self, moment: _Moment, target: int, offset: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray, float]:
        """Background, shadows and every dancer inside the crop, far to near. Returns the image,
        the owner label (dancer index + 1) of each pixel and the target's visible fraction."""
        out_h, out_w = self.size
        x0, y0 = offset
        x1, y1 = x0 + out_w / factor, y0 + out_h / factor
        near = [i for i, b in enumerate(moment.boxes) if b[0] < x1 and b[2] > x0 and b[1] < y1 and b[3] > y0]
        order = sorted(near, key=lambda i: (-moment.depth[i], i))
        image = self.stage.background(moment.camera, offset, factor, self.size)
        self._shadows(image, moment, order, offset, factor)
        labels = np.zeros(self.size, np.uint8)
        full = 1
        for i in order:
            draw_shapes(image, moment.shapes(i), moment.views[i].scale, offset, factor, labels, i + 1)
            if i == target:
                full = max(1, int(np.count_nonzero(labels == i + 1)))
        return image, labels, np.count_nonzero(labels == target + 1) / full

    def _degrade(self, image: np.ndarray, moment: _Moment, target: int, offset: np.ndarray, factor: float,
                 source_height: float) -> tuple[np.ndarray, bool]:
        """Light, defocus, motion blur, source resolution and noise; returns the pixels and
        whether they are noticeably blurred."""
        out_h, out_w = self.size
        img = cv2.multiply(image, self.stage.light(moment.t, offset, factor, self.size), dtype=cv2.CV_32F)
        sigma = float(self.stage.focus(moment.t)[0])
        if sigma > 0.3:
            img = cv2.GaussianBlur(img, (0, 0), sigma)
        streak = moment.motion[target] * self.stage.exposure * factor
        length = float(np.hypot(*streak))
        if length > 1.0:
            n = int(np.ceil(length)) | 1
            kernel = np.zeros((n, n), np.float32)
            d = streak / length * (n - 1) / 2
            c = n / 2 - 0.5
            cv2.line(kernel, (int(round(c - d[0])), int(round(c - d[1]))), (int(round(c + d[0])), int(round(c + d[1]))),
                     1.0, 1, cv2.LINE_AA)
            img = cv2.filter2D(img, -1, kernel / kernel.sum())
        if source_height < 0.95 * out_h:  # the dancer was smaller in the video than the crop: upsampled pixels
            small = (max(4, int(round(out_w * source_height / out_h))), max(8, int(round(source_height))))
            img = cv2.resize(cv2.resize(img, small, interpolation=cv2.INTER_AREA), (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        dy, dx = self.rng.integers(0, out_h), self.rng.integers(0, out_w)
        img += self.noise[dy:dy + out_h, dx:dx + out_w]
        blurred = sigma > 0.6 or length > 2.0 or source_height < 0.6 * out_h
        return cv2.convertScaleAbs(np.maximum(img, 0)), blurred  # rounds and saturates at 255

    def _estimated_pose(self, view: PersonView, labels: np.ndarray, target: int) -> np.ndarray:
        """True joints in the crop plus estimator noise; NaN outside the crop, often NaN where a
        neighbour covers the joint, and no nose or eyes on a face turned away."""
        out_h, out_w = self.size
        kps = view.keypoints + self.rng.normal(0, 0.01 * view.scale, view.keypoints.shape)
        outside = (kps[:, 0] < 0) | (kps[:, 1] < 0) | (kps[:, 0] >= out_w) | (kps[:, 1] >= out_h)
        owner = labels[np.clip(np.floor(kps[:, 1]).astype(int), 0, out_h - 1), np.clip(np.floor(kps[:, 0]).astype(int), 0, out_w - 1)]
        hidden = ~outside & (owner != 0) & (owner != target + 1)
        lost = hidden & (self.rng.random(17) < OCCLUDED_JOINT_MISSING)
        if np.cos(view.yaw) < -0.3:
            lost[[0, 1, 2]] = True
        kps[outside | lost] = np.nan
        return kps.astype(np.float32)

    def _crop(self, moment: _Moment, target: int) -> Detection:
        offset, source_height, in_frame = self._detector_box(moment.boxes[target])
        factor = self.size[0] / source_height
        image, labels, visible = self._compose(moment, target, offset, factor)
        pixels, blurred = self._degrade(image, moment, target, offset, factor, source_height)
        return Detection(
            pid=self.dancers[target].pid,
            frame=int(round(moment.t)),
            image=pixels,
            keypoints=self._estimated_pose(moment.views[target].transformed(offset, factor), labels, target),
            visible=float(visible),
            in_frame=in_frame,
            blurred=blurred,
        )

    def detections(self) -> Iterator[Detection]:
        """All annotated detections, frame by frame, dancers in pid order within a frame. A dancer
        never annotated in the whole video still gets its least hidden view, at the end, so every
        identity has at least one image."""
        best: dict[int, Detection] = {}
        seen: set[int] = set()
        for moment in self._moments():
            for i in range(len(self.dancers)):
                det = self._crop(moment, i)
                if det.annotated:
                    seen.add(i)
                    yield det
                elif i not in seen and (i not in best or det.quality > best[i].quality):
                    best[i] = det
        for i in sorted(set(best) - seen):
            yield best[i]
