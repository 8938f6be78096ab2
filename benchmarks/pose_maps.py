"""Pose heat-maps: streid's closed form against the original's per-keypoint Gaussian filtering.

The original (ST-ReIDNet preprocessor) renders each joint as a delta image, runs
scipy.ndimage.gaussian_filter (sigma 5, truncate 4, reflect borders) and divides by the maximum.
streid evaluates exp(-d^2 / 2 sigma^2) over the whole K x H x W block at once. This script times
both on realistic COCO-17 poses on a 256x128 canvas and compares the maps: away from the borders
(joints at least the filter radius from every edge) they must agree to 1e-3; near a border the
reflected mass of the original is a known difference and is reported separately.

Run: .venv/bin/python benchmarks/pose_maps.py [--poses 200] [--repeats 3]
Writes reports/bench/pose_maps.json.
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from streid_core.atomic import write_json
from streid_core.data.pose import canvas_pixels, pose_maps

HEIGHT, WIDTH, SIGMA = 256, 128, 5.0
RADIUS = int(4 * SIGMA + 0.5)  # scipy's kernel half-width at truncate=4

# A standing person filling a 256x128 crop, COCO-17 order, (x, y).
TEMPLATE = np.array([
    [64, 28], [69, 23], [59, 23], [75, 26], [53, 26],
    [82, 55], [46, 55], [90, 90], [38, 90], [94, 122], [34, 122],
    [76, 128], [52, 128], [78, 178], [50, 178], [80, 228], [48, 228],
], dtype=np.float64)


def realistic_poses(count: int, seed: int = 0) -> np.ndarray:
    """Template poses moved, scaled and jittered like detector output; ~8 % joints missing."""
    rng = np.random.default_rng(seed)
    poses = np.empty((count, len(TEMPLATE), 2), dtype=np.float32)
    for i in range(count):
        scale = rng.uniform(0.85, 1.05)
        shift = rng.normal(0.0, [6.0, 5.0])
        pose = (TEMPLATE - [64, 128]) * scale + [64, 128] + shift + rng.normal(0.0, 4.0, TEMPLATE.shape)
        pose[rng.random(len(TEMPLATE)) < 0.08] = np.nan
        poses[i] = pose
    return poses


def reference_maps(keypoints: np.ndarray) -> np.ndarray:
    """The original's way, joint by joint."""
    rows, cols, present = canvas_pixels(keypoints, HEIGHT, WIDTH)
    maps = np.zeros((len(rows), HEIGHT, WIDTH))
    for j in np.flatnonzero(present):
        delta = np.zeros((HEIGHT, WIDTH))
        delta[rows[j], cols[j]] = 1.0
        blurred = ndimage.gaussian_filter(delta, sigma=SIGMA, truncate=4.0)
        maps[j] = blurred / blurred.max()
    return maps


def best_time(fn, poses: np.ndarray, repeats: int) -> float:
    """Best wall time over `repeats` passes of fn over all poses, per pose."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for pose in poses:
            fn(pose)
        best = min(best, time.perf_counter() - start)
    return best / len(poses)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--poses", type=int, default=200, help="number of poses timed and compared")
    parser.add_argument("--repeats", type=int, default=3, help="timing passes; the best is kept")
    parser.add_argument("--out", default="reports/bench/pose_maps.json", help="JSON result file")
    args = parser.parse_args()

    poses = realistic_poses(args.poses)
    ours_s = best_time(lambda p: pose_maps(p, HEIGHT, WIDTH, SIGMA), poses, args.repeats)
    ref_s = best_time(reference_maps, poses, args.repeats)

    interior_diff = border_diff = 0.0
    interior_channels = border_channels = 0
    for pose in poses:
        ours, ref = pose_maps(pose, HEIGHT, WIDTH, SIGMA), reference_maps(pose)
        rows, cols, present = canvas_pixels(pose, HEIGHT, WIDTH)
        interior = present & (rows >= RADIUS) & (rows < HEIGHT - RADIUS) & (cols >= RADIUS) & (cols < WIDTH - RADIUS)
        diff = np.abs(ours - ref).reshape(len(rows), -1).max(axis=1)
        interior_diff = max(interior_diff, float(diff[interior].max(initial=0.0)))
        border_diff = max(border_diff, float(diff[present & ~interior].max(initial=0.0)))
        interior_channels += int(interior.sum())
        border_channels += int((present & ~interior).sum())
        if (diff[~present] != 0).any():
            raise AssertionError("a missing joint produced a non-zero map")

    speedup = ref_s / ours_s
    result = {
        "canvas": [HEIGHT, WIDTH],
        "sigma": SIGMA,
        "joints": len(TEMPLATE),
        "poses": args.poses,
        "reference_ms_per_pose": ref_s * 1e3,
        "ours_ms_per_pose": ours_s * 1e3,
        "speedup": speedup,
        "max_abs_diff_interior": interior_diff,
        "interior_channels": interior_channels,
        "max_abs_diff_near_border": border_diff,
        "near_border_channels": border_channels,
        "meets_speedup_10x": speedup >= 10.0,
        "meets_interior_diff_1e-3": interior_diff <= 1e-3,
        "machine": {"python": platform.python_version(), "numpy": np.__version__, "cpu": platform.processor() or platform.machine()},
    }
    rows = [
        ("scipy gaussian_filter per joint (original)", f"{ref_s * 1e3:9.3f}", "1.0x"),
        ("closed form, vectorised (streid)", f"{ours_s * 1e3:9.3f}", f"{speedup:.1f}x"),
    ]
    print(f"pose maps, {len(TEMPLATE)} joints, {HEIGHT}x{WIDTH}, sigma {SIGMA:g}, {args.poses} poses")
    print(f"{'method':<44} {'ms/pose':>9}  speed")
    for name, ms, ratio in rows:
        print(f"{name:<44} {ms}  {ratio}")
    print(f"max |diff|, joints >= {RADIUS} px from every border: {interior_diff:.2e} over {interior_channels} maps")
    print(f"max |diff|, joints nearer a border (reflect padding): {border_diff:.2e} over {border_channels} maps")
    write_json(Path(args.out), result)
    print(f"wrote {args.out}")
    return 0 if result["meets_speedup_10x"] and result["meets_interior_diff_1e-3"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
