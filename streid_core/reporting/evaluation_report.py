"""Notebook 05's evaluation: several checkpoints on one test split, under several protocols and
AP conventions, from features embedded once per checkpoint (and cached on disk).

    report = evaluate_checkpoints({"baseline": ckpt1, "ST-ReIDNet": ckpt2}, dataset, cache_dir)
    report.results["ST-ReIDNet"]["dancereid"]["sklearn"].mAP
    show_table(report.rows(), METRIC_COLUMNS)     # reporting.notebook_output
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..data.records import LoadedDataset, Record
from ..evaluation.distance import PairwiseDistance
from ..evaluation.metrics import AP_CONVENTIONS, RankResult

if TYPE_CHECKING:  # the pipeline imports torch; load it only when evaluating
    from ..evaluation.pipeline import ReidEvaluation

METRIC_COLUMNS = ("R1", "R5", "R10", "mAP", "mINP")


@dataclass
class EvaluationReport:
    """Each model's evaluation on one query/gallery split (features of query ∪ gallery, and
    results[protocol][ap] per model)."""

    checkpoints: dict[str, Path]
    evaluations: dict[str, ReidEvaluation]

    @property
    def query(self) -> list[Record]:
        return next(iter(self.evaluations.values())).query

    @property
    def gallery(self) -> list[Record]:
        return next(iter(self.evaluations.values())).gallery

    @property
    def features(self) -> dict[str, np.ndarray]:
        return {label: e.features for label, e in self.evaluations.items()}

    @property
    def cache_hits(self) -> dict[str, bool]:
        return {label: e.cache.hit for label, e in self.evaluations.items()}

    @property
    def results(self) -> dict[str, dict[str, dict[str, RankResult]]]:
        return {label: e.results for label, e in self.evaluations.items()}

    def query_features(self, label: str) -> np.ndarray:
        return self.evaluations[label].query_features()

    def gallery_features(self, label: str) -> np.ndarray:
        return self.evaluations[label].gallery_features()

    def distances(self, label: str) -> PairwiseDistance:
        """Query-chunked squared Euclidean distances of one model (rows on demand)."""
        return self.evaluations[label].distances

    def labels(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(query pids, gallery pids, query camids, gallery camids)."""
        return next(iter(self.evaluations.values())).labels()

    def headline(self, label: str) -> RankResult:
        """The result under the first protocol and first AP convention evaluated."""
        return self.evaluations[label].result

    def rows(self) -> list[dict]:
        """One row per (model, protocol, AP convention) with R1/R5/R10/mAP/mINP."""
        out = []
        for label, by_protocol in self.results.items():
            for protocol, by_ap in by_protocol.items():
                for ap, result in by_ap.items():
                    summary = result.as_dict()
                    out.append({"model": label, "protocol": protocol, "ap": ap,
                                **{c: summary[c] for c in METRIC_COLUMNS if c in summary}})
        return out

    def as_dict(self) -> dict:
        """JSON-ready metrics: model -> {checkpoint, protocol -> ap -> metrics and the CMC}."""
        out = {}
        for label, by_protocol in self.results.items():
            out[label] = {"checkpoint": str(self.checkpoints[label])}
            for protocol, by_ap in by_protocol.items():
                out[label][protocol] = {ap: r.as_dict() for ap, r in by_ap.items()}
                first = next(iter(by_ap.values()))
                out[label][protocol]["cmc"] = [float(v) for v in first.cmc[:20]]
        return out


def default_protocols(dataset: LoadedDataset) -> list[str]:
    """The dataset's own protocol, then the standard first-match CMC (market1501)."""
    return list(dict.fromkeys([dataset.protocol, "market1501"]))


def evaluate_checkpoints(checkpoints: Mapping[str, str | os.PathLike], dataset: LoadedDataset,
                         cache_dir: str | os.PathLike, protocols: Sequence[str] | None = None,
                         ap_conventions: Sequence[str] = AP_CONVENTIONS, device: str = "cpu",
                         batch_size: int = 64, seed: int = 0) -> EvaluationReport:
    """Embed the test images with each checkpoint (cached in `cache_dir`, keyed by checkpoint and
    images) and evaluate every (protocol, AP convention)."""
    from ..device import resolve_device
    from ..evaluation.pipeline import evaluate_reid

    paths = {k: Path(v) for k, v in checkpoints.items()}
    torch_device = resolve_device(device)
    evaluations = {label: evaluate_reid(path, dataset.query, dataset.gallery, protocols or default_protocols(dataset),
                                        ap_conventions, seed=seed, batch_size=batch_size, device=torch_device,
                                        cache_dir=cache_dir)
                   for label, path in paths.items()}
    return EvaluationReport(paths, evaluations)


def sample_valid_queries(report: EvaluationReport, label: str, count: int, seed: int = 0) -> np.ndarray:
    """`count` random query indices that have a correct match in the gallery, sorted."""
    from ..viz.ranked import first_match_ranks

    valid = np.flatnonzero(first_match_ranks(report.distances(label), *report.labels()) > 0)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(valid, size=min(count, len(valid)), replace=False))


def worst_failures(report: EvaluationReport, label: str, count: int) -> np.ndarray:
    """Query indices whose rank-1 image is the wrong person, worst first."""
    from ..viz.ranked import failure_cases

    return failure_cases(report.distances(label), *report.labels(), limit=count)


def subsample(records: Sequence[Record], max_points: int, seed: int = 0) -> np.ndarray:
    """Indices of at most `max_points` records, drawn without replacement, sorted."""
    if len(records) <= max_points:
        return np.arange(len(records))
    return np.sort(np.random.default_rng(seed).choice(len(records), size=max_points, replace=False))
