"""Features in, metrics out: query-chunked distances so memory stays bounded.

The distance of the original system (docs/original-system.md §7) is the squared Euclidean distance
||q||^2 + ||g||^2 - 2 q.g of the raw features, no normalisation, computed in the features'
precision (float32 for network features). "euclidean" is its square root and "cosine" is
1 - cosine similarity. The full (num_query, num_gallery) matrix is never built: each chunk
of query rows is computed, evaluated and dropped. With the default 256 MB budget a
10,000 x 100,000 problem runs in chunks of about 220 rows (`rows_per_chunk`), so extra
memory stays within that budget (plus a few floats per query) whatever the number of
queries; tests/test_metrics_features.py measures the peak against the sizing constants.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..data.protocols import Protocol, resolve_protocol
from ..errors import StreidError
from .metrics import (DEFAULT_MEMORY_BUDGET, DEFAULT_TIES, RankResult, check_chunk_size, check_labels, check_options,
                      rows_per_chunk)
from .protocols import run_protocol

METRICS = ("sqeuclidean", "euclidean", "cosine")


def _check_features(feats, name: str) -> np.ndarray:
    arr = np.asarray(feats)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise StreidError(f"{name} must be a non-empty 2-D array (num_images, dim), got shape {arr.shape}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float32)
    elif arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise StreidError(f"{name} contains NaN or inf; check the feature extractor")
    return arr


class PairwiseDistance:
    """Distances between query rows and a fixed gallery, one chunk of queries at a time."""

    def __init__(self, q_feats: np.ndarray, g_feats: np.ndarray, metric: str = "sqeuclidean") -> None:
        if metric not in METRICS:
            raise StreidError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
        if q_feats.shape[1] != g_feats.shape[1]:
            raise StreidError(f"query features have dimension {q_feats.shape[1]} but gallery features "
                              f"{g_feats.shape[1]}; extract both with the same model")
        dtype = np.result_type(q_feats.dtype, g_feats.dtype)
        self.q, self.g, self.metric = q_feats.astype(dtype, copy=False), g_feats.astype(dtype, copy=False), metric
        if metric == "cosine":
            self.q, self.g = self._unit(self.q), self._unit(self.g)
        else:
            self.g_sq = np.einsum("ij,ij->i", self.g, self.g)

    @staticmethod
    def _unit(x: np.ndarray) -> np.ndarray:
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.maximum(norm, np.finfo(x.dtype).tiny)

    def __call__(self, start: int, stop: int) -> np.ndarray:
        q = self.q[start:stop]
        out = q @ self.g.T
        if self.metric == "cosine":
            np.subtract(1.0, out, out=out)
            return out
        # In place to keep a single (chunk, gallery) buffer.
        out *= -2.0
        out += np.einsum("ij,ij->i", q, q)[:, None]
        out += self.g_sq[None, :]
        if self.metric == "euclidean":
            np.maximum(out, 0.0, out=out)
            np.sqrt(out, out=out)
        return out


def evaluate_features(q_feats, g_feats, q_pids, g_pids, q_camids, g_camids,
                      protocol: str | Protocol | Mapping = "market1501", metric: str = "sqeuclidean",
                      chunk_size: int | None = None, max_rank: int = 50, ap: str | None = None,
                      ties: str = DEFAULT_TIES, seed: int = 0, repeats: int = 10,
                      memory_budget: int = DEFAULT_MEMORY_BUDGET) -> RankResult:
    """Evaluate query/gallery features under a protocol without building the full matrix.

    `chunk_size` (query rows per chunk) defaults to what fits `memory_budget` bytes of
    temporaries. Other arguments as `evaluate_protocol`.
    """
    q = _check_features(q_feats, "q_feats")
    g = _check_features(g_feats, "g_feats")
    proto = resolve_protocol(protocol)
    ap = ap or proto.ap
    check_options(max_rank, ap, ties)
    check_chunk_size(chunk_size)
    labels = check_labels(q_pids, g_pids, q_camids, g_camids, q.shape[0], g.shape[0])
    if chunk_size is None:
        num_ids = len(np.unique(labels.g_pids)) if proto.single_gallery_shot else 0
        chunk_size = rows_per_chunk(labels.num_gallery, num_ids, memory_budget)
    source = PairwiseDistance(q, g, metric)
    return run_protocol(source, labels, proto, max_rank, ap, ties, seed, repeats, chunk_size)
