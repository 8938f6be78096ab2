"""The one query/gallery evaluation of a re-ID encoder, used by `streid evaluate`, the training
loop, notebook 05's report and the ST-ReIDNet-vs-baseline scoring.

Every image of query ∪ gallery is embedded once (from the feature cache when `cache_dir` is
given), then ranked under each protocol and AP convention asked for: by the chunked feature
distance, or by the k-reciprocal re-ranked matrix.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..data.protocols import Protocol, resolve_protocol
from ..data.records import Record
from ..errors import StreidError
from ..models.loading import load_encoder
from .distance import PairwiseDistance, evaluate_features
from .feature_cache import CachedFeatures, cached_features
from .features import extract_features
from .metrics import RankResult
from .protocols import evaluate_protocol
from .reranking import re_rank


@dataclass(frozen=True)
class ReRanking:
    """k-reciprocal re-ranking (Zhong et al. 2017) settings."""

    k1: int = 20
    k2: int = 6
    lambda_value: float = 0.3


@dataclass
class ReidEvaluation:
    """Descriptors of query ∪ gallery and the metrics computed from them.

    results[protocol][ap]: the RankResult under that protocol (as given: a preset name, or a
    Protocol's name) and AP convention (None: the protocol's own)."""

    query: list[Record]
    gallery: list[Record]
    images: list[Record]  # query ∪ gallery, each image once, in order of first appearance
    features: np.ndarray  # (len(images), D) float32
    distances: PairwiseDistance | np.ndarray  # query x gallery; the full matrix when re-ranked
    results: dict[str, dict[str | None, RankResult]]
    cache: CachedFeatures | None  # where the features came from, when a cache was used

    @property
    def result(self) -> RankResult:
        """The result under the first protocol and AP convention asked for."""
        return next(iter(next(iter(self.results.values())).values()))

    def _rows(self, records: Sequence[Record]) -> np.ndarray:
        index = {r: i for i, r in enumerate(self.images)}
        return np.array([index[r] for r in records])

    def query_features(self) -> np.ndarray:
        return self.features[self._rows(self.query)]

    def gallery_features(self) -> np.ndarray:
        return self.features[self._rows(self.gallery)]

    def labels(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(query pids, gallery pids, query camids, gallery camids)."""
        return (np.array([r.pid for r in self.query]), np.array([r.pid for r in self.gallery]),
                np.array([r.camid for r in self.query]), np.array([r.camid for r in self.gallery]))


def _key(protocol: str | Protocol | Mapping) -> str:
    return protocol if isinstance(protocol, str) else resolve_protocol(protocol).name


def _embed(encoder: nn.Module | str | os.PathLike, images: list[Record], cache_dir, height, width, flip, dtype,
           batch_size, device, num_workers, full_hash) -> tuple[np.ndarray, CachedFeatures | None]:
    if cache_dir is not None:
        cache = cached_features(encoder, images, cache_dir, height=height, width=width, flip=flip, dtype=dtype,
                                batch_size=batch_size, device=device, num_workers=num_workers, full_hash=full_hash)
        return cache.features, cache
    if isinstance(encoder, nn.Module):
        model, trained = encoder, (256, 128)
    else:
        model, trained = load_encoder(encoder, device)
    height, width = (height, width) if height else trained
    feats, _, _ = extract_features(model, images, batch_size, device, dtype, flip, num_workers, height, width)
    return feats.numpy(), None


def evaluate_reid(
    encoder: nn.Module | str | os.PathLike,
    query: Sequence[Record],
    gallery: Sequence[Record],
    protocols: str | Protocol | Mapping | Sequence[str | Protocol | Mapping] = "market1501",
    ap_conventions: Sequence[str | None] = (None,),
    *,
    metric: str = "sqeuclidean",
    rerank: ReRanking | None = None,
    max_rank: int = 50,
    seed: int = 0,
    flip: bool = False,
    dtype: torch.dtype | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str | torch.device = "cpu",
    height: int | None = None,
    width: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    full_hash: bool = False,
) -> ReidEvaluation:
    """Embed query ∪ gallery with `encoder` and rank under every protocol x AP convention.

    encoder: a module already on `device` (its eval forward returns the descriptor; input
        256x128 unless `height`/`width` say otherwise) or a streid checkpoint path (input: the
        size it was trained at; loaded only when the features are not cached).
    flip, dtype, batch_size, num_workers: as `features.extract_features` (bf16 on the CPU passes
        its self-check first). cache_dir: read and write the features through
        `feature_cache.cached_features` (`full_hash`: key a checkpoint on its whole content).
    metric, max_rank, seed: as `distance.evaluate_features`; with `rerank` the ranking uses the
        re-ranked distance matrix instead of `metric`.
    """
    if not query or not gallery:
        raise StreidError(f"cannot evaluate: {len(query)} query and {len(gallery)} gallery images; both must be non-empty")
    if isinstance(protocols, (str, Protocol, Mapping)):
        protocols = [protocols]
    images = list(dict.fromkeys([*query, *gallery]))
    features, cache = _embed(encoder, images, cache_dir, height, width, flip, dtype, batch_size, device, num_workers,
                             full_hash)
    evaluation = ReidEvaluation(list(query), list(gallery), images, features, None, {}, cache)
    q, g = evaluation.query_features(), evaluation.gallery_features()
    labels = evaluation.labels()
    if rerank is not None:
        evaluation.distances = re_rank(q, g, rerank.k1, rerank.k2, rerank.lambda_value)
    else:
        evaluation.distances = PairwiseDistance(q, g, metric)
    for protocol in protocols:
        evaluation.results[_key(protocol)] = {
            ap: (evaluate_protocol(evaluation.distances, *labels, protocol, max_rank=max_rank, ap=ap, seed=seed)
                 if rerank is not None else
                 evaluate_features(q, g, *labels, protocol=protocol, metric=metric, max_rank=max_rank, ap=ap,
                                   seed=seed))
            for ap in ap_conventions
        }
    return evaluation
