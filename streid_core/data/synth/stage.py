"""The video a group dances in: venue (back wall and floor), camera and lighting, all of which
drift slowly over the video.

Drift is what makes temporally distant views of a dancer harder positives than neighbouring
frames: by then the camera has zoomed, the light has changed colour and brightness, and the
dancer stands somewhere else in front of a different part of the wall.

Camera model: a pinhole camera `distance` metres in front of the stage front, `height` metres
above the floor, looking horizontally. A point at stage depth Z is drawn at
scale(Z) = zoom * distance / (distance + Z) pixels per metre.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .smooth import SmoothCurve

TEX_RES = 30.0  # texture pixels per metre
WALL_X, WALL_H = 15.0, 8.0  # the wall texture covers X in [-15, 15] m, heights [0, 8] m
FLOOR_Z0, FLOOR_Z1 = -4.0, 12.0
VENUES = ("studio", "stage", "street", "hall")
FRAME_SIZES = ((1920, 1080), (1280, 720), (854, 480))


def _random_color(rng: np.random.Generator, lo: int, hi: int) -> np.ndarray:
    return rng.uniform(lo, hi, 3)


def _wall_texture(rng: np.random.Generator, venue: str) -> np.ndarray:
    h, w = int(WALL_H * TEX_RES), int(2 * WALL_X * TEX_RES)
    if venue == "studio":
        base = np.array([230, 225, 215]) * rng.uniform(0.8, 1.05) + rng.normal(0, 8, 3)
    elif venue == "stage":
        base = _random_color(rng, 10, 60)
    elif venue == "street":
        base = rng.choice([[150, 150, 150], [150, 80, 60], [190, 180, 160]]) * rng.uniform(0.7, 1.1)
    else:
        base = _random_color(rng, 90, 200)
    tex = np.empty((h, w, 3), np.float32)
    tex[:] = base
    # Vertical light falloff so the wall is never perfectly flat.
    tex *= np.linspace(0.85, 1.05, h, dtype=np.float32)[:, None, None]
    for _ in range(int(rng.integers(4, 12))):  # panels, windows, mirrors, posters, speakers
        pw, ph = rng.uniform(0.5, 3.0), rng.uniform(0.5, 3.0)
        px, py = rng.uniform(-WALL_X, WALL_X), rng.uniform(0.0, 4.0)
        color = base * rng.uniform(0.6, 1.3) if rng.random() < 0.6 else _random_color(rng, 20, 235)
        x0, x1 = int((px + WALL_X) * TEX_RES), int((px + pw + WALL_X) * TEX_RES)
        y0, y1 = int((WALL_H - py - ph) * TEX_RES), int((WALL_H - py) * TEX_RES)
        cv2.rectangle(tex, (x0, y0), (x1, y1), tuple(float(c) for c in np.clip(color, 0, 255)), -1)
    if venue == "stage":  # LED bars
        for _ in range(int(rng.integers(3, 9))):
            x = int((rng.uniform(-WALL_X, WALL_X) + WALL_X) * TEX_RES)
            cv2.rectangle(tex, (x, 0), (x + int(0.15 * TEX_RES), h), tuple(float(c) for c in _random_color(rng, 120, 255)), -1)
    if venue == "studio":  # a ballet barre
        y = int((WALL_H - 1.0) * TEX_RES)
        cv2.line(tex, (0, y), (w, y), (120, 100, 80), max(1, int(0.04 * TEX_RES)))
    tex = cv2.GaussianBlur(tex, (0, 0), 1.5)  # the wall is out of focus
    return np.clip(tex, 0, 255).astype(np.uint8)


def _floor_texture(rng: np.random.Generator, venue: str) -> np.ndarray:
    h, w = int((FLOOR_Z1 - FLOOR_Z0) * TEX_RES), int(2 * WALL_X * TEX_RES)
    if venue in ("studio", "hall"):
        base = np.array([150, 105, 65]) * rng.uniform(0.7, 1.3)
    elif venue == "stage":
        base = _random_color(rng, 20, 70)
    else:
        base = np.array([110, 110, 110]) * rng.uniform(0.7, 1.2)
    tex = np.empty((h, w, 3), np.float32)
    tex[:] = base
    if venue in ("studio", "hall"):  # floor boards running away from the camera
        board = int(rng.uniform(0.1, 0.2) * TEX_RES)
        shades = rng.uniform(0.85, 1.1, w // board + 1).repeat(board)[:w]
        tex *= shades[None, :, None].astype(np.float32)
    tex += rng.normal(0, 4, (h, w, 1)).astype(np.float32)
    return np.clip(tex, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class CameraPose:
    zoom: float  # pixels per metre at the stage front
    x: float  # stage X at the frame centre
    horizon: float  # frame row of the camera's height (eye level)


@dataclass(frozen=True)
class Stage:
    venue: str
    frame_size: tuple[int, int]  # (width, height) of the source video
    distance: float
    height: float
    wall_depth: float
    wall: np.ndarray
    floor: np.ndarray
    base_zoom: float
    zoom_drift: SmoothCurve
    pan: SmoothCurve
    gain: SmoothCurve  # log brightness
    cast: SmoothCurve  # log colour balance per channel
    spot: SmoothCurve  # spotlight centre, fraction of the frame (x, y)
    spot_strength: float
    flashes: np.ndarray  # (n, 4): raw frame, r, g, b of short coloured light flashes
    exposure: float  # fraction of a frame the shutter is open (motion blur)
    focus: SmoothCurve  # defocus blur sigma in output pixels (clipped at 0)
    noise: float  # sensor noise sigma, grey levels
    jpeg_quality: int

    def camera(self, t: float) -> CameraPose:
        """Where the camera looks and how far it is zoomed at raw frame t."""
        w, h = self.frame_size
        zoom = self.base_zoom * float(np.exp(self.zoom_drift(t)[0]))
        zoom = min(zoom, 0.8 * h / 1.95)  # keep front-row heads inside the frame
        return CameraPose(zoom=zoom, x=float(self.pan(t)[0]), horizon=0.9 * h - zoom * self.height)

    def scale_at(self, cam: CameraPose, z: np.ndarray | float) -> np.ndarray:
        return cam.zoom * self.distance / (self.distance + np.asarray(z))

    def to_frame(self, cam: CameraPose, x: np.ndarray, y: np.ndarray, z: np.ndarray | float) -> np.ndarray:
        """Frame pixels (..., 2) of stage points at X = x, height y, depth z."""
        s = self.scale_at(cam, z)
        return np.stack([self.frame_size[0] / 2 + s * (x - cam.x), cam.horizon + s * (self.height - y)], -1)

    def background(self, cam: CameraPose, offset: np.ndarray, factor: float, size: tuple[int, int]) -> np.ndarray:
        """Wall and floor seen through a crop whose top-left corner is `offset` (frame pixels),
        magnified by `factor`, of `size` = (height, width) output pixels."""
        out_h, out_w = size
        s_wall = float(self.scale_at(cam, self.wall_depth))
        fx0, fy0 = offset
        a = TEX_RES / (factor * s_wall)
        wall_map = np.array(
            [[a, 0, TEX_RES * ((fx0 - self.frame_size[0] / 2) / s_wall + cam.x + WALL_X)],
             [0, a, TEX_RES * (WALL_H - self.height + (fy0 - cam.horizon) / s_wall)]],
            dtype=np.float64,
        )
        img = cv2.warpAffine(self.wall, wall_map, (out_w, out_h), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        rows = fy0 + (np.arange(out_h) + 0.5) / factor
        floor_rows = rows > cam.horizon + s_wall * self.height
        if floor_rows.any():
            r0 = int(np.argmax(floor_rows))
            fy = rows[r0:]
            scale = (fy - cam.horizon) / self.height  # scale of the floor point seen on this row
            z = cam.zoom * self.distance / scale - self.distance
            fx = fx0 + (np.arange(out_w) + 0.5) / factor
            x = (fx[None, :] - self.frame_size[0] / 2) / scale[:, None] + cam.x
            map_x = ((x + WALL_X) * TEX_RES).astype(np.float32)
            map_y = np.broadcast_to(((z - FLOOR_Z0) * TEX_RES)[:, None], map_x.shape).astype(np.float32)
            img[r0:] = cv2.remap(self.floor, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        return img

    def light(self, t: float, offset: np.ndarray, factor: float, size: tuple[int, int]) -> np.ndarray:
        """(H, W, 3) multiplicative light over a crop, and any flash colour added on top."""
        out_h, out_w = size
        w, h = self.frame_size
        gh, gw = 8, 4  # the light is smooth: evaluate on a coarse grid, then resize
        ys = offset[1] + (np.arange(gh) + 0.5) / gh * out_h / factor
        xs = offset[0] + (np.arange(gw) + 0.5) / gw * out_w / factor
        sx, sy = self.spot(t)
        d2 = ((xs[None, :] - sx * w) ** 2 + (ys[:, None] - sy * h) ** 2) / (0.45 * h) ** 2
        spot = 1 - self.spot_strength + self.spot_strength * np.exp(-d2)
        gain = np.exp(self.gain(t)[0]) * np.exp(self.cast(t))
        grid = (spot[..., None] * gain).astype(np.float32)
        light = cv2.resize(grid, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        if len(self.flashes):
            near = np.abs(self.flashes[:, 0] - t) < 4
            if near.any():
                light = light * (1 + self.flashes[near][0, 1:].astype(np.float32) / 255 * 0.6)
        return light


def make_stage(rng: np.random.Generator, duration: float, group_width: float) -> Stage:
    venue = VENUES[int(rng.integers(len(VENUES)))]
    w, h = FRAME_SIZES[int(rng.choice(len(FRAME_SIZES), p=[0.4, 0.45, 0.15]))]
    distance, cam_h = rng.uniform(6.0, 9.0), rng.uniform(1.2, 1.7)
    base_zoom = w / (group_width + rng.uniform(1.5, 3.5))
    flashes = np.zeros((0, 4))
    if venue == "stage":
        n = int(rng.poisson(duration / 150))
        flashes = np.column_stack([rng.uniform(0, duration, n), rng.uniform(0, 255, (n, 3))])
    return Stage(
        venue=venue,
        frame_size=(w, h),
        distance=distance,
        height=cam_h,
        wall_depth=rng.uniform(3.0, 5.0),
        wall=_wall_texture(rng, venue),
        floor=_floor_texture(rng, venue),
        base_zoom=base_zoom,
        zoom_drift=SmoothCurve.random(rng, duration, spacing=100.0, std=0.18),
        pan=SmoothCurve.random(rng, duration, spacing=120.0, std=0.35),
        gain=SmoothCurve.random(rng, duration, spacing=80.0, std=0.18, mean=rng.normal(0, 0.1)),
        cast=SmoothCurve.random(rng, duration, spacing=90.0, std=0.07, channels=3, mean=rng.normal(0, 0.06, 3)),
        spot=SmoothCurve.random(rng, duration, spacing=70.0, std=np.array([0.25, 0.1]), channels=2, mean=np.array([0.5, 0.4])),
        spot_strength={"stage": 0.55, "street": 0.15}.get(venue, 0.25) * rng.uniform(0.6, 1.2),
        flashes=flashes,
        exposure=rng.uniform(0.2, 0.7),
        focus=SmoothCurve.random(rng, duration, spacing=60.0, std=0.7, mean=-0.3),
        noise=rng.uniform(1.0, 4.0),
        jpeg_quality=int(rng.integers(72, 96)),
    )
