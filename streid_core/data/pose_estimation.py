"""Estimate COCO-17 keypoints for a user's own images with MediaPipe Pose (an optional extra).

MediaPipe's legacy `solutions.pose` (the last release that has it is 0.10.21) ships its
detector and its complexity-1 landmark model inside the wheel, so it runs offline. It finds at
most one person per image and returns 33 landmarks with coordinates normalised by the image
size and a visibility score in [0, 1]. `mediapipe_to_coco17` keeps the 17 that COCO also has,
converts them to pixels and marks a joint missing (NaN) when MediaPipe itself doubts it
(visibility below the threshold) or places it outside the image (it extrapolates the whole body
even for a head-and-shoulders portrait).

Visibility threshold: 0.5 by default. On matplotlib's Grace Hopper portrait MediaPipe gives the
joints in view visibilities of 0.999 and more and the guessed ones below the frame at most 0.35
(elbows; hips 0.007), so 0.5 separates the two with room on both sides; raise it to keep only
confident joints, lower it to keep occluded guesses. An image where no joint passes counts as
one with nobody in it.
"""
from __future__ import annotations

import importlib.metadata
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import StreidError
from .images import load_image
from .keypoints import COCO17, write_keypoints

MEDIAPIPE_VERSION = "0.10.21"
DEFAULT_MIN_VISIBILITY = 0.5
DEFAULT_MIN_DETECTION_CONFIDENCE = 0.5
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

# MediaPipe's 33 pose landmarks that are COCO-17 joints, listed in COCO-17 order: nose, eyes
# (MediaPipe 2 and 5 are the eye centres; 1/3 and 4/6 are the inner/outer corners), ears,
# shoulders, elbows, wrists, hips, knees, ankles. Both name the person's own left/right.
MEDIAPIPE_TO_COCO17: tuple[int, ...] = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
NUM_MEDIAPIPE_LANDMARKS = 33

# --no-deps because mediapipe 0.10.21 declares numpy<2 and jax, which the pose solution does not
# need (it runs beside numpy 2); what it does need is protobuf below 5.
MEDIAPIPE_PACKAGES = (f"mediapipe=={MEDIAPIPE_VERSION}", "flatbuffers", "absl-py", "attrs", "protobuf>=4.25.3,<5")

# Installed packages whose releases from a given (major, minor) on fail under protobuf<5, with
# the pins that bring them back: tensorboard 2.20+ and onnx 1.23+ import protobuf 6 APIs;
# tensorboard 2.19 still imports pkg_resources (gone in setuptools 81) and needs six.
PROTOBUF5_DEPENDENTS: tuple[tuple[str, tuple[int, int], tuple[str, ...]], ...] = (
    ("tensorboard", (2, 20), ("tensorboard<2.20", "setuptools<81", "six")),
    ("onnx", (1, 23), ("onnx<1.23",)),
)


def _installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _major_minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def install_command() -> str:
    """The one shell line that installs the pose extra into the running interpreter, with the
    downgrades that keep this environment's tensorboard and onnx working beside protobuf<5."""
    packages = list(MEDIAPIPE_PACKAGES)
    for distribution, first_incompatible, pins in PROTOBUF5_DEPENDENTS:
        version = _installed_version(distribution)
        if version is not None and _major_minor(version) >= first_incompatible:
            packages += pins
    return shlex.join([sys.executable, "-m", "pip", "install", "--no-deps", *packages])


def mediapipe_to_coco17(
    landmarks33: np.ndarray | Sequence[Sequence[float]],
    width: int,
    height: int,
    min_visibility: float = DEFAULT_MIN_VISIBILITY,
) -> np.ndarray:
    """MediaPipe's 33 landmarks -> (17, 2) float32 COCO-17 (x, y) pixels, NaN where missing.

    `landmarks33` is (33, 3): x and y normalised by the image width and height (MediaPipe's
    convention, pixel = x * width), then visibility. A joint is kept when its visibility is
    at least `min_visibility` and its pixel position lies inside [0, width) x [0, height).
    """
    lms = np.asarray(landmarks33, dtype=np.float64)
    if lms.shape != (NUM_MEDIAPIPE_LANDMARKS, 3):
        raise ValueError(f"expected landmarks of shape (33, 3) (x, y, visibility), got {lms.shape}")
    picked = lms[list(MEDIAPIPE_TO_COCO17)]
    xy = picked[:, :2] * np.array([width, height], dtype=np.float64)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)
    keep = inside & (picked[:, 2] >= min_visibility)
    out = np.full((COCO17.num_joints, 2), np.nan, dtype=np.float32)
    out[keep] = xy[keep]
    return out


def _import_mediapipe_pose():
    """The `mediapipe.solutions.pose` module, or a StreidError saying how to install it."""
    if _installed_version("mediapipe") is not None:  # checked first: the import itself complains
        check_protobuf_version(_installed_version("protobuf") or "0")
    try:
        from mediapipe.python.solutions import pose
    except ImportError as exc:
        raise StreidError(
            f"pose estimation needs the optional mediapipe extra ({exc}); install it with: {install_command()}"
        ) from None
    except Exception as exc:  # installed but broken, e.g. a binary built against other libraries
        reason = (str(exc).splitlines() or [""])[0]
        raise StreidError(
            f"mediapipe is installed but fails to import ({type(exc).__name__}: {reason}); "
            f"reinstall the pose extra with: {install_command()}"
        ) from None
    return pose


def check_protobuf_version(version: str) -> None:
    """mediapipe 0.10.21 still imports under protobuf 5+ (printing an AttributeError), then fails
    setting up its graph deep inside; say so up front instead."""
    if int(version.split(".")[0]) >= 5:
        raise StreidError(
            f"protobuf {version} is installed, but mediapipe {MEDIAPIPE_VERSION} needs protobuf<5; "
            f"reinstall the pose extra with: {install_command()}"
        )


class MediaPipePoseEstimator:
    """One MediaPipe Pose graph (static-image mode, the in-wheel complexity-1 model) reused
    for every image; call it on an RGB uint8 (H, W, 3) array. Use it as a context manager."""

    def __init__(
        self,
        min_visibility: float = DEFAULT_MIN_VISIBILITY,
        min_detection_confidence: float = DEFAULT_MIN_DETECTION_CONFIDENCE,
    ) -> None:
        pose = _import_mediapipe_pose()
        self.min_visibility = min_visibility
        # Complexity 0 and 2 are downloaded on first use; only 1 ships inside the wheel.
        self._graph = pose.Pose(
            static_image_mode=True, model_complexity=1, min_detection_confidence=min_detection_confidence
        )

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        """(17, 2) COCO-17 keypoints of the person found, or None when nobody is found (or
        none of the 17 joints passes the visibility and inside-the-image tests)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {rgb.dtype} {rgb.shape}")
        result = self._graph.process(np.ascontiguousarray(rgb))
        if result.pose_landmarks is None:
            return None
        lms = np.array([(lm.x, lm.y, lm.visibility) for lm in result.pose_landmarks.landmark])
        height, width = rgb.shape[:2]
        kps = mediapipe_to_coco17(lms, width, height, self.min_visibility)
        return None if np.isnan(kps).all() else kps

    def close(self) -> None:
        self._graph.close()

    def __enter__(self) -> MediaPipePoseEstimator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The images directly inside `folder`, sorted by name; their stems must be unique because
    each names its pose file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StreidError(f"{folder}: images folder not found; pass a folder of .jpg/.png images (--images)")
    images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise StreidError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder; pass the folder holding them")
    by_stem: dict[str, Path] = {}
    for path in images:
        if path.stem in by_stem:
            raise StreidError(
                f"{path} and {by_stem[path.stem].name} would both write {path.stem}.txt; rename one of them"
            )
        by_stem[path.stem] = path
    return images


def pose_file_for(image: Path, out_dir: Path) -> Path:
    return out_dir / f"{image.stem}.txt"


def check_outputs(images: Sequence[Path], out_dir: Path, overwrite: bool) -> None:
    """Refuse an --out that is a file (or under one, or not writable), or existing pose files of
    these images unless `overwrite`."""
    from ..atomic import check_output_dir

    check_output_dir(out_dir, "--out")
    existing = [pose_file_for(p, out_dir) for p in images if pose_file_for(p, out_dir).exists()]
    if existing and not overwrite:
        raise StreidError(
            f"{existing[0]}: pose file exists ({len(existing)} of {len(images)} images already have one); "
            f"pass --overwrite to replace them or choose another --out"
        )


def check_images(images: Sequence[Path]) -> None:
    """Refuse a damaged image before MediaPipe loads and any pose file is written (header and
    end marker only, as the dataset check does: a tenth of a decode)."""
    from .validation import image_problem

    problems = [problem for problem in map(image_problem, map(str, images)) if problem]
    if problems:
        more = f" (and {len(problems) - 1} more bad image(s))" if len(problems) > 1 else ""
        raise StreidError(f"{problems[0]}{more}")


@dataclass
class PoseRunSummary:
    written: list[Path] = field(default_factory=list)  # pose files written
    no_person: list[Path] = field(default_factory=list)  # images where nobody was found
    removed: list[Path] = field(default_factory=list)  # old pose files of those images, deleted (--overwrite)
    seconds: float = 0.0  # time spent estimating (image decoding included)


def estimate_folder(
    images: Sequence[Path],
    out_dir: str | os.PathLike,
    estimate: Callable[[np.ndarray], np.ndarray | None],
    overwrite: bool = False,
    progress: Callable[[Sequence[Path]], Sequence[Path]] = lambda items: items,
) -> PoseRunSummary:
    """Write `<out_dir>/<image stem>.txt` (COCO-17, DanceReID format) for every image where
    `estimate` finds a person.

    Existing pose files are refused (before any work) unless `overwrite`; with `overwrite` an
    image where nobody is found now loses its old pose file, so the folder never pairs an
    image with a pose that no longer describes it. Each file is written atomically.
    """
    out = Path(out_dir)
    check_outputs(images, out, overwrite)
    summary = PoseRunSummary()
    start = time.perf_counter()
    for image_path in progress(images):
        rgb = np.asarray(load_image(str(image_path)))
        kps = estimate(rgb)
        target = pose_file_for(image_path, out)
        if kps is None:
            summary.no_person.append(image_path)
            if target.exists():
                target.unlink()
                summary.removed.append(target)
            continue
        write_keypoints(target, kps, COCO17)
        summary.written.append(target)
    summary.seconds = time.perf_counter() - start
    return summary
