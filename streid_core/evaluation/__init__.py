"""Evaluation: ranking metrics and protocols, feature-chunked evaluation, re-ranking.

    evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50, ap=..., ties=...)
    evaluate_protocol(distmat, ..., protocol="market1501" | "cuhk03" | "dancereid" | "allshots" | flags)
    evaluate_features(q_feats, g_feats, ..., protocol="market1501", metric="sqeuclidean")
    re_rank(q_feats, g_feats, k1=20, k2=6, lambda_value=0.3) -> re-ranked distmat

AP conventions, tie policies and what each peer does are documented in `metrics`; the
protocols in `data.protocols` (definitions) and `protocols` (scoring).
"""
from ..data.protocols import PRESETS, PROTOCOLS, Protocol, resolve_protocol
from .distance import METRICS, PairwiseDistance, evaluate_features
from .metrics import AP_CONVENTIONS, DEFAULT_TIES, TIE_POLICIES, RankResult, evaluate_rank
from .protocols import evaluate_protocol
from .reranking import re_rank, reciprocal_neighbours

__all__ = [
    "AP_CONVENTIONS", "DEFAULT_TIES", "METRICS", "PRESETS", "PROTOCOLS", "TIE_POLICIES",
    "PairwiseDistance", "Protocol", "RankResult", "evaluate_features", "evaluate_protocol",
    "evaluate_rank", "re_rank", "reciprocal_neighbours", "resolve_protocol",
]
