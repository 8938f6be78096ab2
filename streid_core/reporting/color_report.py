"""The colour-histogram baseline with its distances kept, so a report can show where clothing
colour alone fails (outfit twins, themed groups) next to its CMC curve."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..data.records import Record
from ..evaluation.color_baseline import ColorHistogram, color_distances
from ..evaluation.metrics import RankResult


@dataclass
class ColorBaseline:
    query: list[Record]
    gallery: list[Record]
    result: RankResult
    distances: np.ndarray  # (Q, G) squared distances of the colour descriptors

    def failures(self, limit: int) -> np.ndarray:
        """Query indices whose nearest (non-junk) gallery image is another person, worst first."""
        from ..viz.ranked import failure_cases

        return failure_cases(self.distances, [r.pid for r in self.query], [r.pid for r in self.gallery],
                             [r.camid for r in self.query], [r.camid for r in self.gallery], limit=limit)


def color_baseline(query: Sequence[Record], gallery: Sequence[Record], protocol: str,
                   hist: ColorHistogram = ColorHistogram(), seed: int = 0) -> ColorBaseline:
    """Rank the gallery by colour descriptors (as `evaluation.color_baseline.rank_by_color`) and
    keep the distance matrix."""
    from ..evaluation.protocols import evaluate_protocol

    dist = color_distances(query, gallery, hist)
    result = evaluate_protocol(dist, [r.pid for r in query], [r.pid for r in gallery], [r.camid for r in query],
                               [r.camid for r in gallery], protocol=protocol, seed=seed)
    return ColorBaseline(list(query), list(gallery), result, dist)
