"""Pose transfer measured against the truth: the same dancer, in the same video, in another frame.

A dance set holds what a pose-transfer model should draw: the frame t of the dancer whose frame s
it was given, with t's keypoints as the pose. On the held-out test dancers (query ∪ gallery),
`evaluate_pose_transfer` samples, with a seed, N pairs (s, t) of one dancer in one video whose
poses differ, and scores a drawing function `draw(sources, poses) -> images` (E and G of an
ST-ReIDNet: `generator_draw`; any callable, e.g. an oracle, in tests):

    body L1        mean |drawn - real t| over the 3 channels of the pixels of t's body mask, in
                   [0, 1] RGB. The mask is the training's `--mask`: `skeleton_mask` of t's
                   keypoints on the canvas (discs on the joints, 20/30 px wide limbs at 256x128,
                   scaled with the canvas), with no further dilation.
    SSIM           skimage's structural_similarity of the drawn and the real t over the whole
                   image (Wang et al. 2004: Gaussian window sigma 1.5, population covariances,
                   data range 1, per channel then averaged).
    body SSIM      the same local SSIM map, averaged over the body-mask pixels only.
    pose accuracy  the fraction of pairs where draw(s, pose t) is closer (body L1 in t's mask)
                   to the real t than draw(s, pose u), u the dancer's frame whose pose is the
                   farthest from t's (frames other than s and t). Chance 0.5.
    identity acc.  the fraction where draw(s, pose t) is closer to the real t than draw(o, pose t),
                   o another dancer of the same video (same choreography) at s's frame number (the
                   nearest frame number it has), so o's pose is s's pose up to the personal
                   deviation. A video with no other test dancer takes o from another test video
                   (counted in `other_video_pairs`). Chance 0.5.
    E rank-1       draw(s, pose t) embedded by E as a query against the real gallery of the test
                   set; a hit when the nearest gallery image (squared Euclidean, the evaluation's
                   default; ties to the first in gallery order) is the dancer. Following
                   protocols.py, the gallery loses the query's "camera": under a protocol with
                   separate_camera_set (DanceReID, whose camera slot holds the frame number) every
                   image with t's or s's frame number, else the dancer's own images from t's or s's
                   camera. s is dropped too, so a copy of the source cannot find itself. Plain
                   nearest neighbour on the whole remaining gallery: no single-gallery-shot draws.
                   Chance: the dancer's share of the remaining gallery, averaged over the pairs.

Ties: a comparison whose two body L1 values are equal (within 1e-9) counts 0.5, so a drawing that
ignores the pose (or the identity) scores exactly 0.5.

Every score is also given for two trivial drawings: the source image unchanged (draw(s, p) = s)
and the mean image (the per-pixel mean of the training images, trainval, or of the test images
when the dataset has none).

Pairs: every ordered (s, t) of one dancer's test frames in one video with pose distance >=
`min_pose_distance` is a candidate (dancers with at least 3 usable frames, so that u exists); N of
them are drawn without replacement (all of them when fewer). Pose distance: the mean, over joints
present in both frames, of the canvas distance between the two positions, divided by the mean body
height (the vertical extent of the present joints) of the two frames. A usable frame has at least
two joints on the canvas and a body height > 0.

Cost: E runs once per test frame (gallery and sources) and once per drawing of the G row; G draws
3N images; all in eval mode under torch.inference_mode, in batches. SSIM needs scikit-image.
With `amp` bf16 (or fp16 on CUDA) E and the drawing run under autocast (numerics.Precision: on the
CPU each one's first batch is checked against float32, falling back to float32 with one line);
features and drawings are float32 either way.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor, nn

from ..data.images import load_image
from ..data.keypoints import KeypointConvention, convention, load_keypoints
from ..data.pose import pose_maps, skeleton_mask, snap_to_canvas
from ..data.records import LoadedDataset, Record
from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD, resize
from ..errors import StreidError
from ..numerics import Precision
from .protocols import resolve_protocol

if TYPE_CHECKING:
    from ..models.pose_transfer import PoseTransfer

Draw = Callable[[Tensor, Tensor], Tensor]
"""draw(sources (N, 3, H, W) in [0, 1], pose heat-maps (N, K, H, W)) -> images (N, 3, H, W) in [0, 1]."""
Embed = Callable[[Tensor], Tensor]
"""E in eval mode: ImageNet-normalised images (N, 3, H, W) -> descriptors (N, D)."""

TIE_TOLERANCE = 1e-9
DEFAULT_MIN_POSE_DISTANCE = 0.05
ROWS = {"generator": "G(s, pose t)", "source": "source s unchanged", "mean": "mean image"}
METRICS = ("body_l1", "ssim", "ssim_body", "pose_accuracy", "identity_accuracy", "rank1")
_HEADERS = ("body L1 (lower)", "SSIM", "body SSIM", "pose acc.", "identity acc.", "E rank-1")


# ---------------------------------------------------------------- frames and measures


@dataclass
class TestFrames:
    """Images of records at the canvas size (kept as bytes: a test set of 256x128 frames fits in
    memory), with their keypoints on the canvas."""

    records: list[Record]
    pixels: Tensor  # (N, 3, H, W) uint8
    keypoints: np.ndarray  # (N, K, 2) canvas pixels, NaN where missing
    conv: KeypointConvention

    @property
    def size(self) -> tuple[int, int]:
        return int(self.pixels.shape[2]), int(self.pixels.shape[3])

    def images(self, indices: Sequence[int] | slice = slice(None)) -> Tensor:
        """(n, 3, H, W) float32 images in [0, 1] of the frames `indices`."""
        return self.pixels[indices].float().div_(255.0)

    def poses(self, indices: Sequence[int]) -> Tensor:
        """(n, K, H, W) heat-maps (the training's canvas-scaled sigma) of the frames `indices`."""
        height, width = self.size
        return torch.from_numpy(np.stack([pose_maps(self.keypoints[i], height, width) for i in indices]))

    def masks(self, indices: Sequence[int]) -> Tensor:
        """(n, 1, H, W) skeleton masks of the frames `indices` (the training's --mask)."""
        height, width = self.size
        return torch.from_numpy(np.stack([skeleton_mask(self.keypoints[i], height, width, self.conv) for i in indices]))


def _canvas_image(record: Record, height: int, width: int, conv: KeypointConvention | None
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    image = load_image(record.path)
    kps = None
    if conv is not None:
        if record.pose_path is None:
            raise StreidError(f"{record.path}: no pose file for this test image; pose transfer needs keypoints "
                              "for every test image (add its poses/ file)")
        kps = load_keypoints(record.pose_path, conv)
    image, kps = resize(image, kps, height, width)
    pixels = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
    return pixels, None if kps is None else snap_to_canvas(kps, height, width)


def load_test_frames(records: Sequence[Record], height: int, width: int, conv: KeypointConvention | str) -> TestFrames:
    """Load `records` as the test transform does (bilinear resize to the canvas, keypoints scaled
    and truncated to whole pixels)."""
    conv = convention(conv) if isinstance(conv, str) else conv
    pixels = np.empty((len(records), 3, height, width), dtype=np.uint8)
    keypoints = np.empty((len(records), conv.num_joints, 2), dtype=np.float32)
    for i, record in enumerate(records):
        pixels[i], keypoints[i] = _canvas_image(record, height, width, conv)
    return TestFrames(list(records), torch.from_numpy(pixels), keypoints, conv)


def mean_image(records: Sequence[Record], height: int, width: int) -> Tensor:
    """(3, H, W) per-pixel mean, in [0, 1], of `records` resized to the canvas."""
    if not records:
        raise StreidError("no images to average for the mean-image reference")
    total = np.zeros((3, height, width), dtype=np.float64)
    for record in records:
        total += _canvas_image(record, height, width, None)[0]
    return torch.from_numpy((total / (255.0 * len(records))).astype(np.float32))


def records_to_draw(dataset: LoadedDataset) -> list[Record]:
    """The test images pose transfer draws from: query then gallery, each image once."""
    return list(dict.fromkeys([*dataset.query, *dataset.gallery]))


def reference_mean_image(dataset: LoadedDataset, height: int, width: int) -> tuple[Tensor, str]:
    """The mean-image reference on the canvas: the mean of the training images (trainval, else
    train), or of the test images when there are none; and where it came from, for the report."""
    train = dataset.trainval or dataset.train
    if train:
        return mean_image(train, height, width), f"{len(train)} training images"
    records = records_to_draw(dataset)
    return mean_image(records, height, width), f"{len(records)} test images (no training images)"


def body_l1(drawn: Tensor, real: Tensor, mask: Tensor) -> Tensor:
    """(N,) mean absolute difference over the 3 channels of the mask's pixels; images (N, 3, H, W)
    in [0, 1], masks (N, 1, H, W) binary. Computed in float64."""
    mask = mask.double()
    area = 3.0 * mask.sum(dim=(1, 2, 3))
    if bool((area == 0).any()):
        raise StreidError("an empty body mask: the target frame has no joint on the canvas")
    return ((drawn.double() - real.double()).abs() * mask).sum(dim=(1, 2, 3)) / area


def ssim_scores(drawn: Tensor, real: Tensor, mask: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(whole-image SSIM, body SSIM) per image pair: skimage's structural_similarity with Wang et
    al.'s settings, and its local SSIM map averaged over the mask's pixels."""
    try:
        from skimage.metrics import structural_similarity
    except ImportError:
        raise StreidError("SSIM needs scikit-image, which is not installed; pip install scikit-image "
                          "(or reinstall streid: it is one of its dependencies)") from None

    whole, body = np.empty(len(drawn)), np.empty(len(drawn))
    a = drawn.double().permute(0, 2, 3, 1).numpy()
    b = real.double().permute(0, 2, 3, 1).numpy()
    m = mask.double()[:, 0].numpy()
    for i in range(len(a)):
        whole[i], local = structural_similarity(a[i], b[i], data_range=1.0, channel_axis=2, gaussian_weights=True,
                                                sigma=1.5, use_sample_covariance=False, full=True)
        body[i] = (local * m[i][:, :, None]).sum() / (3.0 * m[i].sum())
    return whole, body


def closer_score(closer: Tensor, farther: Tensor) -> np.ndarray:
    """1 where `closer` < `farther`, 0.5 on a tie (within TIE_TOLERANCE), 0 otherwise."""
    a, b = closer.double().numpy(), farther.double().numpy()
    return np.where(np.abs(a - b) <= TIE_TOLERANCE, 0.5, (a < b).astype(np.float64))


def body_height(keypoints: np.ndarray) -> float:
    """Vertical extent of the present joints (0 with fewer than two)."""
    ys = keypoints[np.isfinite(keypoints).all(axis=1), 1]
    return float(ys.max() - ys.min()) if len(ys) >= 2 else 0.0


def pose_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(m, n) pose distances between poses a (m, K, 2) and b (n, K, 2): the mean distance between
    the joints present in both, over the mean body height of the two (inf when they share no
    joint or have no height)."""
    heights_a = np.array([body_height(k) for k in a])
    heights_b = np.array([body_height(k) for k in b])
    present_a, present_b = np.isfinite(a).all(axis=2), np.isfinite(b).all(axis=2)
    both = present_a[:, None, :] & present_b[None, :, :]
    gap = np.linalg.norm(np.nan_to_num(a)[:, None] - np.nan_to_num(b)[None, :], axis=3)
    count = both.sum(axis=2)
    scale = 0.5 * (heights_a[:, None] + heights_b[None, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (gap * both).sum(axis=2) / count / scale
    return np.where((count > 0) & (scale > 0), d, np.inf)


def pose_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The pose distance of two (K, 2) poses (see pose_distances)."""
    return float(pose_distances(np.asarray(a, dtype=np.float64)[None], np.asarray(b, dtype=np.float64)[None])[0, 0])


# ---------------------------------------------------------------- pairs


@dataclass(frozen=True)
class TransferPair:
    """Indices into the test frames: source s, target t, other pose u (same dancer), other dancer o."""

    source: int
    target: int
    other_pose: int
    other_dancer: int
    pose_change: float  # pose distance s -> t
    other_pose_change: float  # pose distance t -> u
    other_video: bool  # o comes from another video (the dancer's video has no other test dancer)


def _usable(kps: np.ndarray) -> bool:
    return int(np.isfinite(kps).all(axis=1).sum()) >= 2 and body_height(kps) > 0


def sample_pairs(frames: TestFrames, count: int, seed: int, min_pose_distance: float = DEFAULT_MIN_POSE_DISTANCE
                 ) -> list[TransferPair]:
    """Draw `count` (s, t) pairs (fewer when fewer exist) and their u and o (see the module doc)."""
    if count < 1:
        raise StreidError(f"--pairs {count}: must be >= 1")
    groups: dict[tuple[int, str], list[int]] = {}
    for i, record in enumerate(frames.records):
        if _usable(frames.keypoints[i]):
            groups.setdefault((record.pid, record.video), []).append(i)
    for members in groups.values():
        members.sort(key=lambda i: (frames.records[i].frame, i))
    keys = [key for key in sorted(groups) if len(groups[key]) >= 3]
    distances = {}
    candidates = {}  # the (s, t) positions within a group's frames, flattened row-major
    for key in keys:
        kps = frames.keypoints[groups[key]].astype(np.float64)
        d = pose_distances(kps, kps)
        distances[key] = d
        candidates[key] = np.flatnonzero((d >= min_pose_distance) & ~np.eye(len(d), dtype=bool))
    counts = np.array([len(candidates[key]) for key in keys], dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        raise StreidError(f"no test dancer has two frames with pose distance >= {min_pose_distance} and a third one; "
                          "lower --min-pose-distance or use a dataset with more frames per test dancer")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(total, size=min(count, total), replace=False)
    ends = np.cumsum(counts)
    pairs = []
    for c in chosen:
        g = int(np.searchsorted(ends, c, side="right"))
        key = keys[g]
        members, d = groups[key], distances[key]
        a, b = divmod(int(candidates[key][c - (ends[g] - counts[g])]), len(members))
        away = d[b].copy()
        away[[a, b]] = -np.inf
        far = int(np.argmax(away))  # the farthest pose from t (not s or t); ties: the earliest frame
        same_video = sorted(k for k in groups if k[1] == key[1] and k[0] != key[0]) if key[1] else []
        pool = same_video or sorted(k for k in groups if k[0] != key[0])
        if not pool:
            raise StreidError("the test set has a single dancer; identity accuracy needs another test dancer")
        other = pool[int(rng.integers(len(pool)))]
        frame = frames.records[members[a]].frame
        o = min(groups[other], key=lambda i: (abs(frames.records[i].frame - frame), frames.records[i].frame, i))
        pairs.append(TransferPair(members[a], members[b], members[far], o, float(d[a, b]), float(d[b, far]),
                                  not same_video))
    return pairs


# ---------------------------------------------------------------- drawing with E and G


_MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def normalise(images: Tensor) -> Tensor:
    """[0, 1] images -> ImageNet-normalised (E's input)."""
    return (images - _MEAN.to(images)) / _STD.to(images)


class GeneratorDraw:
    """ST-ReIDNet's drawing: E's pre-BN feature of the source, G(pose maps, feature), G's output
    mapped back to [0, 1] as in training. `from_features` skips E: the evaluation feeds it the
    features it already has of the test frames (E runs once per frame, not once per drawing).
    A G whose painting reads the source's limbs (--paint-from source-limbs) also needs the
    sources' own heat-maps (`source_poses`). Both networks are used in their current mode (the
    evaluation puts them in eval mode)."""

    def __init__(self, encoder: nn.Module, generator: nn.Module, imagenet_targets: bool = False) -> None:
        self.encoder, self.generator, self.imagenet_targets = encoder, generator, imagenet_targets

    @property
    def modules(self) -> tuple[nn.Module, nn.Module]:
        return self.encoder, self.generator

    @property
    def reads_source_limbs(self) -> bool:
        return bool(getattr(self.generator, "reads_source_limbs", False))

    def from_features(self, features: Tensor, poses: Tensor, parts: Tensor | None = None) -> Tensor:
        from ..models.image_range import generated_to_unit

        return generated_to_unit(self.generator(poses, features, parts=parts).float(), self.imagenet_targets)

    def __call__(self, sources: Tensor, poses: Tensor, source_poses: Tensor | None = None) -> Tensor:
        if not self.reads_source_limbs:
            return self.from_features(self.encoder(normalise(sources)), poses)
        if source_poses is None:
            raise ValueError("this G paints the source's limbs: pass the sources' heat-maps (source_poses)")
        features, feature_map = self.encoder(normalise(sources), map_layer=self.generator.part_layer)
        return self.from_features(features, poses, self.generator.part_features(feature_map, source_poses))


def generator_draw(encoder: nn.Module, generator: nn.Module, imagenet_targets: bool = False) -> GeneratorDraw:
    """The `Draw` of an ST-ReIDNet's E and G (see GeneratorDraw)."""
    return GeneratorDraw(encoder, generator, imagenet_targets)


# ---------------------------------------------------------------- the evaluation


@dataclass
class PoseTransferReport:
    """Scores per drawing ("generator", "source", "mean"), each a dict of METRICS; rates in [0, 1]."""

    pairs: int
    seed: int
    image_size: tuple[int, int]
    dataset: str
    dancers: int  # dancers in the drawn pairs
    scores: dict[str, dict[str, float]]
    chance: dict[str, float]
    mean_image_from: str
    other_video_pairs: int
    min_pose_distance: float
    mean_pose_change: float  # mean pose distance s -> t
    mean_other_pose_change: float  # mean pose distance t -> u
    per_pair: list[dict[str, Any]] = field(default_factory=list)
    examples: Tensor | None = None  # (k, 5, 3, H, W): s | real t | G(s,pose t) | G(s,pose u) | G(o,pose t)
    amp: str = "off"  # the precision E and the drawing ran in (off after a bf16 fallback)
    drawn_from: str = "test"  # whose frames: "test" dancers, or "training" ones (on_training_dancers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs, "seed": self.seed, "image_size": list(self.image_size), "dataset": self.dataset,
            "dancers": self.dancers, "scores": self.scores, "chance": self.chance,
            "rows": dict(ROWS), "mean_image_from": self.mean_image_from,
            "other_video_pairs": self.other_video_pairs, "min_pose_distance": self.min_pose_distance,
            "mean_pose_change": self.mean_pose_change, "mean_other_pose_change": self.mean_other_pose_change,
            "amp": self.amp, "drawn_from": self.drawn_from,
            "definitions": {
                "body_l1": "mean |drawn - real t| in [0,1] RGB over t's skeleton mask (the training's --mask, undilated)",
                "ssim": "skimage structural_similarity, whole image, Gaussian sigma 1.5, data range 1",
                "ssim_body": "the local SSIM map averaged over t's skeleton mask",
                "pose_accuracy": "share of pairs with body L1(draw(s, pose t), t) < body L1(draw(s, pose u), t); ties 0.5",
                "identity_accuracy": "share of pairs with body L1(draw(s, pose t), t) < body L1(draw(o, pose t), t); ties 0.5",
                "rank1": "E's nearest real gallery image of draw(s, pose t) is the dancer (frames of s and t removed)",
            },
            "per_pair": self.per_pair,
        }

    def format(self) -> str:
        """A markdown table: one row per drawing, and chance."""
        lines = ["| drawing | " + " | ".join(_HEADERS) + " |", "|---|" + "---:|" * len(_HEADERS)]
        for key, label in ROWS.items():
            row = self.scores[key]
            lines.append(f"| {label} | " + " | ".join(f"{row[m]:.3f}" for m in METRICS) + " |")
        lines.append("| chance | | | | " + " | ".join(f"{self.chance[m]:.3f}" for m in METRICS[3:]) + " |")
        height, width = self.image_size
        lines.append("")
        lines.append(f"{self.pairs} pairs (s, t) of {self.dancers} {self.drawn_from} dancers of {self.dataset}, seed {self.seed}, "
                     f"{height}x{width} canvas; pose distance s->t {self.mean_pose_change:.2f}, t->u "
                     f"{self.mean_other_pose_change:.2f} (body heights); mean image of {self.mean_image_from}; "
                     f"{self.other_video_pairs} pair(s) took o from another video")
        return "\n".join(lines)


def _in_batches(fn: Callable[..., Tensor], batch_size: int, device: torch.device, *tensors: Tensor) -> Tensor:
    out = []
    for start in range(0, len(tensors[0]), batch_size):
        out.append(fn(*(t[start:start + batch_size].to(device) for t in tensors)).float().cpu())
    return torch.cat(out)


def _frame_features(embed: Callable[[Tensor], Tensor], frames: TestFrames, batch_size: int, device: torch.device
                    ) -> Tensor:
    """E's descriptors of every test frame, converting one batch of bytes to [0, 1] at a time."""
    out = []
    for start in range(0, len(frames.records), batch_size):
        out.append(embed(frames.images(slice(start, start + batch_size)).to(device)).float().cpu())
    return torch.cat(out)


def _nearest_hits(query: Tensor, gallery: Tensor, g_pids: np.ndarray, allowed: np.ndarray, pids: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Rank-1 hit of each query among its allowed gallery rows, and the chance of a hit."""
    d = torch.cdist(query.double(), gallery.double()).pow(2).numpy()
    d = np.where(allowed, d, np.inf)
    hits = g_pids[d.argmin(axis=1)] == pids
    hits &= allowed.any(axis=1)
    chance = (allowed & (g_pids[None, :] == pids[:, None])).sum(axis=1) / np.maximum(allowed.sum(axis=1), 1)
    return hits.astype(np.float64), chance


def evaluate_pose_transfer(
    encoder: Embed,
    draw: Draw,
    dataset: LoadedDataset,
    image_size: tuple[int, int],
    *,
    pairs: int = 64,
    seed: int = 0,
    min_pose_distance: float = DEFAULT_MIN_POSE_DISTANCE,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    mean: Tensor | None = None,
    examples: int = 6,
    amp: str = "off",
    frames: TestFrames | None = None,
) -> PoseTransferReport:
    """Score `draw` on `pairs` sampled (s, t) pairs of the test dancers of `dataset` (see the module
    doc). `encoder` embeds ImageNet-normalised images (E in eval mode: its pre-BN descriptor);
    `draw(sources, poses)` takes [0, 1] images and heat-maps on the `image_size` = (height, width)
    canvas. `mean`: the mean-image reference (3, H, W); None = the mean of the training images.
    nn.Modules among encoder/draw (and generator_draw's) are run in eval mode, then restored.
    amp: off (float32), bf16 or fp16 (CUDA) autocast for E and the drawing (see the module doc).
    frames: the test frames already loaded (`load_test_frames` of the test records on this canvas),
    e.g. by a caller that evaluates again and again while training; None = load them."""
    height, width = image_size
    if dataset.keypoints == "none":
        raise StreidError(f"{dataset.root}: the dataset has no pose files; pose transfer needs keypoints of the test images")
    if batch_size < 1:
        raise StreidError(f"--batch-size {batch_size}: must be >= 1")
    device = torch.device(device)
    precision = Precision(amp, device, "transfer-eval")
    conv = convention(dataset.keypoints)
    records = records_to_draw(dataset)
    if not records:
        raise StreidError(f"{dataset.root}: the split has no query/gallery (test) images")
    if frames is None:
        frames = load_test_frames(records, height, width, conv)
    elif frames.records != records or frames.size != (height, width):
        raise ValueError("the given test frames are not this dataset's test images on this canvas")
    chosen = sample_pairs(frames, pairs, seed, min_pose_distance)
    if mean is None:
        mean, mean_from = reference_mean_image(dataset, height, width)
    else:
        mean_from = "the given image"
    s = [p.source for p in chosen]
    t = [p.target for p in chosen]
    u = [p.other_pose for p in chosen]
    o = [p.other_dancer for p in chosen]
    n = len(chosen)

    modules = [m for m in (encoder, draw, *getattr(draw, "modules", ())) if isinstance(m, nn.Module)]
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        with torch.inference_mode():
            embed = lambda x: precision.run(lambda: encoder(normalise(x)), "E")  # noqa: E731
            # E once per test frame: the gallery, and the sources s and o (which are test frames)
            frame_feats = _frame_features(embed, frames, batch_size, device)
            real_t = frames.images(t)
            mask_t = frames.masks(t)
            pose_t, pose_u = frames.poses(t), frames.poses(u)
            who = s + s + o
            sources = frames.images(who)
            poses = torch.cat([pose_t, pose_u, pose_t])
            if isinstance(draw, GeneratorDraw) and draw.reads_source_limbs:  # E again, for its maps
                drawn = _in_batches(lambda x, p, i: precision.run(
                    lambda: draw(x, p, frames.poses(i.tolist()).to(x.device)), "drawing"),
                    batch_size, device, sources, poses, torch.tensor(who))
            elif isinstance(draw, GeneratorDraw) and draw.encoder is encoder:
                drawn = _in_batches(lambda f, p: precision.run(lambda: draw.from_features(f, p), "G"), batch_size,
                                    device, frame_feats[who], poses)
            else:
                drawn = _in_batches(lambda x, p: precision.run(lambda: draw(x, p), "drawing"), batch_size,
                                    device, sources, poses)
            del poses
            in_gallery = set(dataset.gallery)
            gallery = [i for i, r in enumerate(records) if r in in_gallery]
            g_feats = frame_feats[gallery]
            mean = mean.float()
            scored = {
                "generator": _score(drawn, n, real_t, mask_t, _in_batches(embed, batch_size, device, drawn[:n])),
                "source": _score(sources, n, real_t, mask_t, frame_feats[s]),
                "mean": _score(mean.expand(3 * n, -1, -1, -1), n, real_t, mask_t,
                               embed(mean[None].to(device)).float().cpu().expand(n, -1)),
            }
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)

    g_records = [records[i] for i in gallery]
    g_pids = np.array([r.pid for r in g_records])
    g_cams = np.array([r.camid for r in g_records])
    q_pids = np.array([records[i].pid for i in t])
    protocol = resolve_protocol(dataset.protocol)
    gallery_index = np.array(gallery)
    allowed = np.ones((n, len(g_records)), dtype=bool)
    for k, p in enumerate(chosen):
        cams = [records[p.source].camid, records[p.target].camid]
        same_cam = np.isin(g_cams, cams)
        allowed[k] = ~same_cam if protocol.separate_camera_set else ~(same_cam & (g_pids == q_pids[k]))
        allowed[k] &= (gallery_index != p.source) & (gallery_index != p.target)
    chance_rank1 = None
    scores: dict[str, dict[str, float]] = {}
    per_pair: list[dict[str, Any]] = [{
        "source_image": records[p.source].path, "target_image": records[p.target].path,
        "other_pose_image": records[p.other_pose].path, "other_dancer_image": records[p.other_dancer].path,
        "pid": records[p.target].pid, "video": records[p.target].video,
        "pose_change": p.pose_change, "other_pose_change": p.other_pose_change, "other_video": p.other_video,
    } for p in chosen]
    for key, values in scored.items():
        hits, chance_rank1 = _nearest_hits(values.pop("query_features"), g_feats, g_pids, allowed, q_pids)
        values["rank1"] = hits
        scores[key] = {m: float(np.mean(values[m])) for m in METRICS}
        for k, row in enumerate(per_pair):
            row[key] = {m: float(values[m][k]) for m in METRICS}

    kept = min(examples, n)
    gen = drawn
    example_images = torch.stack([frames.images(s[:kept]), real_t[:kept], gen[:kept], gen[n:n + kept],
                                  gen[2 * n:2 * n + kept]], dim=1) if kept else None
    return PoseTransferReport(
        pairs=n, seed=seed, image_size=(height, width), dataset=dataset.name,
        dancers=len({(records[i].pid, records[i].video) for i in t}), scores=scores,
        chance={"pose_accuracy": 0.5, "identity_accuracy": 0.5, "rank1": float(np.mean(chance_rank1))},
        mean_image_from=mean_from, other_video_pairs=sum(p.other_video for p in chosen),
        min_pose_distance=min_pose_distance, mean_pose_change=float(np.mean([p.pose_change for p in chosen])),
        mean_other_pose_change=float(np.mean([p.other_pose_change for p in chosen])), per_pair=per_pair,
        examples=example_images, amp=precision.amp,
        drawn_from="training" if set(records) <= set(dataset.trainval or dataset.train) else "test")


def _score(images: Tensor, n: int, real_t: Tensor, mask_t: Tensor, query_features: Tensor) -> dict[str, Any]:
    """Per-pair measures of one drawing: images = [draw(s, pose t); draw(s, pose u); draw(o, pose t)],
    query_features = E's descriptors of draw(s, pose t)."""
    if tuple(images.shape) != (3 * n, *real_t.shape[1:]):
        raise StreidError(f"the drawing returned images of shape {tuple(images.shape)}; expected "
                          f"{(3 * n, *real_t.shape[1:])} ([0, 1] RGB on the canvas)")
    drawn_t, drawn_u, drawn_o = images[:n], images[n:2 * n], images[2 * n:]
    l1_t = body_l1(drawn_t, real_t, mask_t)
    whole, body = ssim_scores(drawn_t, real_t, mask_t)
    return {
        "body_l1": l1_t.numpy(), "ssim": whole, "ssim_body": body,
        "pose_accuracy": closer_score(l1_t, body_l1(drawn_u, real_t, mask_t)),
        "identity_accuracy": closer_score(l1_t, body_l1(drawn_o, real_t, mask_t)),
        "query_features": query_features,
    }


# ---------------------------------------------------------------- from a checkpoint, and a figure


def on_training_dancers(dataset: LoadedDataset) -> LoadedDataset:
    """`dataset` with its training dancers in the test dancers' place (`streid transfer-eval
    --identities train`): the training frames (train, else trainval) taken in turn as query and
    gallery. Scored there, a G that draws far better than on the test dancers has learnt the
    training identities by heart instead of reading the appearance from E's feature."""
    records = dataset.train or dataset.trainval
    if not records:
        raise StreidError(f"{dataset.root}: the split has no training images to draw from; use --identities test")
    return replace(dataset, query=records[0::2], gallery=records[1::2])


def evaluate_checkpoint(checkpoint: "str | os.PathLike | PoseTransfer", dataset: LoadedDataset, *, pairs: int = 64,
                        seed: int = 0, min_pose_distance: float = DEFAULT_MIN_POSE_DISTANCE, batch_size: int = 64,
                        device: str = "cpu", examples: int = 6, amp: str | None = None
                        ) -> PoseTransferReport:
    """`evaluate_pose_transfer` with E and G of a `streid train` run's checkpoint.pth.tar (read as
    `PoseTransfer` reads it; a baseline run or model_best.pth.tar, without G, is a StreidError), or
    of an already loaded PoseTransfer (then `device` is the one it was loaded on).
    amp: off, bf16 or fp16 (CUDA) for E and G; None = the loaded PoseTransfer's mode (off for a path)."""
    from ..models.pose_transfer import PoseTransfer

    model = checkpoint if isinstance(checkpoint, PoseTransfer) else PoseTransfer(checkpoint, device, amp or "off")
    amp = model.precision.amp if amp is None else amp
    if dataset.keypoints != "none" and convention(dataset.keypoints).num_joints != model.convention.num_joints:
        raise StreidError(f"{dataset.root}: keypoints in {dataset.keypoints}, but the model was trained on "
                          f"{model.convention.name}; evaluate on a dataset of its convention")
    draw = generator_draw(model.encoder, model.generator, model.config.imagenet_targets)
    return evaluate_pose_transfer(model.encoder, draw, dataset, model.image_size, pairs=pairs, seed=seed,
                                  min_pose_distance=min_pose_distance, batch_size=batch_size, device=model.device,
                                  examples=examples, amp=amp)


FIGURE_COLUMNS = ("source s", "real t", "G(s,pose t)", "G(s,pose u)", "G(o,pose t)")


def example_grid(report: PoseTransferReport, scale: int = 2) -> Image.Image:
    """The report's examples as one RGB image: a row per pair, columns FIGURE_COLUMNS, a header line."""
    if report.examples is None or len(report.examples) == 0:
        raise StreidError("the report keeps no example pairs (examples=0); evaluate with examples >= 1")
    rows, cols = report.examples.shape[:2]
    height, width = (scale * v for v in report.image_size)
    gap, header = 4, 14
    grid = Image.new("RGB", (cols * width + (cols + 1) * gap, header + rows * (height + gap) + gap), "white")
    pen = ImageDraw.Draw(grid)
    for c, name in enumerate(FIGURE_COLUMNS):
        pen.text((gap + c * (width + gap), 2), name, fill="black")
    pixels = (report.examples.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 1, 3, 4, 2).numpy()
    for r in range(rows):
        for c in range(cols):
            tile = Image.fromarray(pixels[r, c]).resize((width, height), Image.NEAREST)
            grid.paste(tile, (gap + c * (width + gap), header + gap + r * (height + gap)))
    return grid
