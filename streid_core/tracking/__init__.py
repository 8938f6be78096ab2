"""Multi-person tracking with re-ID appearance, and its MOTChallenge evaluation.

config            TrackerConfig, the tracker's settings
kalman            constant-velocity Kalman filter on box centre, aspect ratio and height
association       IoU, cosine distance, gates, Hungarian assignment
tracker           the tracker and its association cascade; run_sequence
reid_embedder     make_reid_embedder: a re-ID model as the tracker's embedder (imports torch)
mot_eval          streid's own CLEAR-MOT (MOTA, IDSW) and IDF1
trackeval_runner  the same plus HOTA through TrackEval, when installed
comparison        a table of several trackers on one benchmark

The MOTChallenge files themselves are read and written by `streid_core.data.formats.mot`.

The names below are imported on first use, so that `import streid_core.tracking.config` (the
command line's --help) loads neither scipy nor torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrackerConfig": "config",
    "Embedder": "tracker",
    "TrackedBox": "tracker",
    "Tracker": "tracker",
    "run_sequence": "tracker",
    "make_reid_embedder": "reid_embedder",
    "compare_trackers": "comparison",
    "score_sequence": "mot_eval",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
