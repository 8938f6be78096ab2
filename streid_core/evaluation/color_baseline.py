"""A colour-only re-ID matcher: the floor any learned model must clear, and the check that a
dataset cannot be solved by clothing colour alone.

Each image becomes a stack of horizontal stripes, each described by a joint hue-saturation-value
histogram (stripes keep "red top, blue trousers" apart from "blue top, red trousers"). The
histograms are L1-normalised and square-rooted, so the squared Euclidean distance between two
descriptors is (twice) the squared Hellinger distance, the usual choice for histograms.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..data.records import Record
from .protocols import evaluate_protocol


@dataclass(frozen=True)
class ColorHistogram:
    stripes: int = 6
    hue_bins: int = 8
    sat_bins: int = 4
    val_bins: int = 4
    size: tuple[int, int] = (128, 64)  # (height, width) every image is resized to first

    @property
    def dim(self) -> int:
        return self.stripes * self.hue_bins * self.sat_bins * self.val_bins


def color_descriptor(image: np.ndarray, hist: ColorHistogram = ColorHistogram()) -> np.ndarray:
    """(stripes * bins,) float32 descriptor of an RGB uint8 image (H, W, 3)."""
    import cv2

    h, w = hist.size
    img = cv2.resize(np.ascontiguousarray(image), (w, h), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV_FULL).astype(np.int64)  # every channel in 0..255
    bins = hist.hue_bins * hist.sat_bins * hist.val_bins
    code = (
        (hsv[..., 0] * hist.hue_bins >> 8) * hist.sat_bins * hist.val_bins
        + (hsv[..., 1] * hist.sat_bins >> 8) * hist.val_bins
        + (hsv[..., 2] * hist.val_bins >> 8)
    )
    stripe = (np.arange(h) * hist.stripes // h)[:, None]
    counts = np.bincount((stripe * bins + code).ravel(), minlength=hist.stripes * bins).reshape(hist.stripes, bins)
    counts = counts / counts.sum(axis=1, keepdims=True)
    return np.sqrt(counts).ravel().astype(np.float32)


def describe_records(records: Sequence[Record], hist: ColorHistogram = ColorHistogram()) -> np.ndarray:
    """(N, dim) descriptors of the records' images."""
    from ..data.images import load_image

    out = np.empty((len(records), hist.dim), np.float32)
    for i, record in enumerate(records):
        out[i] = color_descriptor(np.asarray(load_image(record.path)), hist)
    return out


def color_distances(query: Sequence[Record], gallery: Sequence[Record],
                    hist: ColorHistogram = ColorHistogram()) -> np.ndarray:
    """(Q, G) squared distances of the records' colour descriptors; a gallery equal to the query
    set is described once."""
    q = describe_records(query, hist)
    g = q if [r.path for r in gallery] == [r.path for r in query] else describe_records(gallery, hist)
    dist = (q * q).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2.0 * q @ g.T
    np.maximum(dist, 0.0, out=dist)  # rounding can make a self-distance slightly negative
    return dist


def rank_by_color(query: Sequence[Record], gallery: Sequence[Record], protocol: str = "dancereid",
                  hist: ColorHistogram = ColorHistogram(), seed: int = 0):
    """Rank the gallery for every query by colour descriptor distance and evaluate under
    `protocol` (docs/original-system.md §7). Returns the RankResult (`.rank1`, `.mAP`, `.cmc`)."""
    return evaluate_protocol(
        color_distances(query, gallery, hist),
        np.array([r.pid for r in query]), np.array([r.pid for r in gallery]),
        np.array([r.camid for r in query]), np.array([r.camid for r in gallery]),
        protocol=protocol, seed=seed,
    )
