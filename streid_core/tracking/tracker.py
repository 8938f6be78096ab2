"""An online multi-person tracker: Kalman motion, IoU association, and re-ID appearance.

Every frame, each track's Kalman filter predicts its box, then detections are associated with
tracks in three stages; each stage is one Hungarian assignment over the pairs its gate allows,
and only the tracks and detections left unmatched move on to the next stage.

1. Active tracks (confirmed and matched in the previous frame) x all detections.
   Cost 1 - IoU(predicted box, detection) for motion only; with an embedder,
   (1 - appearance_weight) * (1 - IoU) + appearance_weight * cosine distance between the track's
   embedding and the detection's. Allowed: IoU >= min_iou and, with an embedder, cosine distance
   <= max_appearance_distance, which refuses to hand a track to another person whose box
   overlaps it (two dancers crossing).
2. Lost tracks (confirmed, unmatched for 1..max_age frames) x remaining detections, appearance
   only, and only with an embedder. Cost: cosine distance. Allowed: the detection's centre lies
   within relink_radius + relink_radius_growth * frames_lost track heights of the track's
   predicted centre or of its last seen centre. The gate widens the longer the track is lost,
   and the last seen centre covers a dancer who turned round while hidden (where the constant
   velocity prediction is wrong). A pair is kept only when the match is confident: cosine
   distance <= relink_threshold and smaller by relink_margin than every other allowed pair in
   the track's row and the detection's column.
3. Tentative tracks and lost tracks x remaining detections by 1 - IoU with IoU >= min_iou
   (SORT). With motion only, every lost track takes part: IoU with the predicted box is then
   the only way back. With an embedder, only tracks lost for at most iou_bridge_frames frames,
   and only for detections within max_appearance_distance of their embedding: this bridges
   detector misses and short occlusions, where stage 2 alone is too strict (without it a
   re-ID tracker lost more people than motion alone), while longer gaps, where constant
   velocity guesses wrong, still need a confident re-link.

Detections still unmatched start tentative tracks. A tentative track is confirmed (and given its
public id, counting from 1) after n_init consecutive hits and dropped at its first miss; a
confirmed track is dropped once it has been unmatched for more than max_age frames. A track
re-linked after a gap restarts its Kalman state at the detection (the velocity learnt before
the gap is stale) but keeps its id and embedding. Each match updates the track's embedding as
an exponential moving average, embedding = normalise(momentum * old + (1 - momentum) * new).

Only confirmed tracks matched in the current frame are reported, with their Kalman-filtered
box. Given the same inputs, the output is the same: there is no randomness anywhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from .association import (
    assign,
    centre_distance_in_heights,
    cosine_distance_matrix,
    iou_matrix,
    is_unambiguous,
    l2_normalize,
)
from .config import TrackerConfig
from .kalman import BoxKalmanFilter, KalmanNoise, xyah_to_xywh, xywh_to_xyah

# embedder(frame_image HxWx3 RGB uint8, boxes (N,4) x,y,w,h) -> (N, D) features (any scale).
Embedder = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class TrackedBox:
    """One reported track in one frame."""

    track_id: int
    box: tuple[float, float, float, float]  # x, y, w, h
    score: float


class _Track:
    """A track's mutable state; `track_id` stays None until the track is confirmed."""

    def __init__(self, mean: np.ndarray, covariance: np.ndarray, box: np.ndarray, score: float,
                 embedding: np.ndarray | None) -> None:
        self.mean = mean
        self.covariance = covariance
        self.last_box = box
        self.score = score
        self.embedding = embedding
        self.hits = 1
        self.frames_since_update = 0
        self.track_id: int | None = None

    @property
    def confirmed(self) -> bool:
        return self.track_id is not None

    def predicted_box(self) -> np.ndarray:
        return xyah_to_xywh(self.mean[:4])[0]


class Tracker:
    """Online tracker; call `update` once per frame, in order."""

    def __init__(self, config: TrackerConfig | None = None, embedder: Embedder | None = None,
                 noise: KalmanNoise | None = None) -> None:
        self.config = config or TrackerConfig()
        self.embedder = embedder
        self.kalman = BoxKalmanFilter(noise)
        self._tracks: list[_Track] = []
        self._next_id = 1

    @property
    def num_tracks(self) -> int:
        """Tracks alive (tentative, active or lost)."""
        return len(self._tracks)

    def update(self, boxes: np.ndarray, scores: np.ndarray | None = None,
               frame: np.ndarray | None = None) -> list[TrackedBox]:
        """Advance one frame with this frame's detections; returns the tracks seen in it.

        boxes: (N,4) x, y, w, h with w, h > 0. scores: (N,) detection confidences (default 1).
        frame: the HxWx3 RGB uint8 image, required when the tracker has an embedder and there
        are detections.
        """
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.ones(len(boxes)) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(scores) != len(boxes):
            raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
        if len(boxes) and not (np.all(np.isfinite(boxes)) and np.all(boxes[:, 2:] > 0)):
            raise ValueError("detection boxes need finite coordinates and positive width and height")
        embeddings = self._embed(frame, boxes)

        for track in self._tracks:
            track.mean, track.covariance = self.kalman.predict(track.mean, track.covariance)
            track.frames_since_update += 1

        unmatched = list(range(len(boxes)))
        active = [t for t in self._tracks if t.confirmed and t.frames_since_update == 1]
        lost = [t for t in self._tracks if t.confirmed and t.frames_since_update > 1]
        tentative = [t for t in self._tracks if not t.confirmed]

        matched_tracks, unmatched = self._match_active(active, boxes, embeddings, unmatched)
        if embeddings is not None:
            relinked, unmatched = self._relink_lost(lost, boxes, embeddings, unmatched)
            matched_tracks += relinked
            back = {id(t) for t, _ in relinked}
            lost = [t for t in lost if id(t) not in back
                    and t.frames_since_update - 1 <= self.config.iou_bridge_frames]
        matched_tracks += self._match_by_iou(tentative + lost, boxes, unmatched, embeddings)
        taken = {det for _, det in matched_tracks}
        unmatched = [d for d in unmatched if d not in taken]

        for track, det in matched_tracks:
            self._apply_match(track, boxes[det], scores[det], None if embeddings is None else embeddings[det])
        self._tracks = [t for t in self._tracks if self._survives(t)]
        for det in unmatched:
            self._start_track(boxes[det], scores[det], None if embeddings is None else embeddings[det])

        return [TrackedBox(t.track_id, tuple(float(v) for v in t.predicted_box()), float(t.score))
                for t in sorted(self._tracks, key=lambda t: t.track_id or 0)
                if t.confirmed and t.frames_since_update == 0]

    def _embed(self, frame: np.ndarray | None, boxes: np.ndarray) -> np.ndarray | None:
        if self.embedder is None:
            return None
        if len(boxes) == 0:
            return np.zeros((0, 0))
        if frame is None:
            raise ValueError("this tracker has an embedder: pass the frame image to update()")
        features = np.asarray(self.embedder(frame, boxes), dtype=np.float64)
        if features.ndim != 2 or features.shape[0] != len(boxes):
            raise ValueError(f"the embedder returned shape {features.shape} for {len(boxes)} boxes; expected (N, D)")
        return l2_normalize(features)

    def _match_active(self, tracks: list[_Track], boxes: np.ndarray, embeddings: np.ndarray | None,
                      dets: list[int]) -> tuple[list[tuple[_Track, int]], list[int]]:
        if not tracks or not dets:
            return [], dets
        iou = iou_matrix(np.stack([t.predicted_box() for t in tracks]), boxes[dets])
        cost = 1.0 - iou
        allowed = iou >= self.config.min_iou
        if embeddings is not None:
            appearance = cosine_distance_matrix(np.stack([t.embedding for t in tracks]), embeddings[dets])
            weight = self.config.appearance_weight
            cost = (1.0 - weight) * cost + weight * appearance
            allowed &= appearance <= self.config.max_appearance_distance
        pairs = [(tracks[r], dets[c]) for r, c in assign(cost, allowed)]
        taken = {det for _, det in pairs}
        return pairs, [d for d in dets if d not in taken]

    def _relink_lost(self, tracks: list[_Track], boxes: np.ndarray, embeddings: np.ndarray,
                     dets: list[int]) -> tuple[list[tuple[_Track, int]], list[int]]:
        if not tracks or not dets:
            return [], dets
        cfg = self.config
        distance = cosine_distance_matrix(np.stack([t.embedding for t in tracks]), embeddings[dets])
        from_prediction = centre_distance_in_heights(np.stack([t.predicted_box() for t in tracks]), boxes[dets])
        from_last_seen = centre_distance_in_heights(np.stack([t.last_box for t in tracks]), boxes[dets])
        frames_lost = np.array([t.frames_since_update - 1 for t in tracks], dtype=np.float64)
        radius = cfg.relink_radius + cfg.relink_radius_growth * frames_lost
        allowed = np.minimum(from_prediction, from_last_seen) <= radius[:, None]
        pairs = []
        for r, c in assign(distance, allowed):
            if distance[r, c] <= cfg.relink_threshold and is_unambiguous(distance, allowed, r, c, cfg.relink_margin):
                pairs.append((tracks[r], dets[c]))
        taken = {det for _, det in pairs}
        return pairs, [d for d in dets if d not in taken]

    def _match_by_iou(self, tracks: list[_Track], boxes: np.ndarray, dets: list[int],
                      embeddings: np.ndarray | None = None) -> list[tuple[_Track, int]]:
        if not tracks or not dets:
            return []
        iou = iou_matrix(np.stack([t.predicted_box() for t in tracks]), boxes[dets])
        allowed = iou >= self.config.min_iou
        if embeddings is not None:  # a lost track must still look like the detection
            lost = np.array([t.confirmed for t in tracks])
            if lost.any():
                appearance = cosine_distance_matrix(np.stack([t.embedding for t in tracks]), embeddings[dets])
                allowed &= ~lost[:, None] | (appearance <= self.config.max_appearance_distance)
        return [(tracks[r], dets[c]) for r, c in assign(1.0 - iou, allowed)]

    def _apply_match(self, track: _Track, box: np.ndarray, score: float, embedding: np.ndarray | None) -> None:
        measurement = xywh_to_xyah(box)[0]
        if track.frames_since_update > 1:
            track.mean, track.covariance = self.kalman.initiate(measurement)
        else:
            track.mean, track.covariance = self.kalman.update(track.mean, track.covariance, measurement)
        track.last_box = box.copy()
        track.score = float(score)
        track.hits += 1
        track.frames_since_update = 0
        if embedding is not None:
            momentum = self.config.embedding_momentum
            track.embedding = l2_normalize(momentum * track.embedding + (1.0 - momentum) * embedding)
        if not track.confirmed and track.hits >= self.config.n_init:
            self._confirm(track)

    def _survives(self, track: _Track) -> bool:
        if track.frames_since_update == 0:
            return True
        if not track.confirmed:
            return False
        return track.frames_since_update <= self.config.max_age

    def _start_track(self, box: np.ndarray, score: float, embedding: np.ndarray | None) -> None:
        mean, covariance = self.kalman.initiate(xywh_to_xyah(box)[0])
        track = _Track(mean, covariance, box.copy(), float(score), embedding)
        self._tracks.append(track)
        if self.config.n_init <= 1:
            self._confirm(track)

    def _confirm(self, track: _Track) -> None:
        track.track_id = self._next_id
        self._next_id += 1


def run_sequence(tracker: Tracker,
                 frames: Iterable[tuple[int, np.ndarray | None, np.ndarray, np.ndarray]]) -> np.ndarray:
    """Track a whole sequence; returns MOT result rows (M,7): frame, id, x, y, w, h, score.

    `frames` yields (frame_number, image or None, boxes (N,4) x,y,w,h, scores (N,)) for every
    frame in order, including frames without detections (the motion model must still advance).
    """
    rows = []
    for frame_number, image, boxes, scores in frames:
        for tracked in tracker.update(boxes, scores, image):
            rows.append((frame_number, tracked.track_id, *tracked.box, tracked.score))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 7)
