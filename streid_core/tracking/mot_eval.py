"""CLEAR-MOT (MOTA, ID switches) and identity (IDF1) scores of tracker output against ground truth.

Definitions (the ones MOTChallenge and TrackEval use, so the numbers are comparable):

* A tracker box can match a ground-truth box of the same frame when their IoU is >= 0.5.
* Preparation, per frame: tracker boxes are first matched one-to-one to every ground-truth box
  (maximum total IoU); those that land on a distractor (classes 2, 7, 8, 12: person on vehicle,
  static person, distractor, reflection) are removed, since covering one is neither right nor
  wrong. Then only ground truth with consider_flag != 0 and class 1 (pedestrian) is kept.
* CLEAR-MOT, frame by frame: a one-to-one matching that first keeps every pair matched in the
  previous frame that still overlaps (IoU >= 0.5), then maximises total IoU (one Hungarian
  assignment on the score 1000 * [pair matched in previous frame] + IoU). Matched pairs are true
  positives, unmatched tracker boxes false positives, unmatched ground truth misses. An ID switch
  is a ground-truth object matched to a different tracker id than the last one it was matched
  to (in any earlier frame). MOTA = 1 - (misses + false positives + ID switches) / ground-truth
  boxes; MOTP = mean IoU of the matches.
  (TrackEval remembers the previous matches across a frame with no ground truth or no tracker
  boxes at all; here such a frame matches nothing, so nothing carries over it, as in the
  original definition. The two differ only when competing boxes follow an empty frame.)
* Identity: one global one-to-one matching between ground-truth trajectories and tracker
  trajectories over the whole sequence that maximises the number of frames where the paired
  boxes overlap (IoU >= 0.5); this is the min-cost matching of IDF1, whose cost IDFN + IDFP
  equals (all gt boxes + all tracker boxes - 2 * that number). IDTP = frames where matched
  trajectories overlap, IDFN = gt boxes - IDTP, IDFP = tracker boxes - IDTP, and
  IDF1 = 2 IDTP / (2 IDTP + IDFP + IDFN).

Scores of several sequences combine by summing the counts (then recomputing the ratios).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..errors import StreidError
from .association import iou_matrix

IOU_THRESHOLD = 0.5
PEDESTRIAN_CLASS = 1
DISTRACTOR_CLASSES = (2, 7, 8, 12)
# Scores this close below the threshold still count: an IoU of exactly 0.5 computed in floating
# point can come out a hair under it.
_TOLERANCE = np.finfo(np.float64).eps
# Outweighs any sum of IoUs, so keeping last frame's pairs comes first in the CLEAR matching.
_CARRY_OVER_BONUS = 1000.0


@dataclass(frozen=True)
class FrameBoxes:
    """The boxes of one frame: ids (n,) and boxes (n,4) x, y, w, h."""

    ids: np.ndarray
    boxes: np.ndarray


@dataclass(frozen=True)
class ClearMot:
    num_gt: int
    true_positives: int
    false_positives: int
    misses: int
    id_switches: int
    iou_sum: float

    @property
    def mota(self) -> float:
        return 1.0 - (self.misses + self.false_positives + self.id_switches) / max(self.num_gt, 1)

    @property
    def motp(self) -> float:
        return self.iou_sum / max(self.true_positives, 1)


@dataclass(frozen=True)
class IdentityScores:
    idtp: int
    idfp: int
    idfn: int

    @property
    def idf1(self) -> float:
        return 2 * self.idtp / max(2 * self.idtp + self.idfp + self.idfn, 1)

    @property
    def idp(self) -> float:
        return self.idtp / max(self.idtp + self.idfp, 1)

    @property
    def idr(self) -> float:
        return self.idtp / max(self.idtp + self.idfn, 1)


@dataclass(frozen=True)
class MotScores:
    clear: ClearMot
    identity: IdentityScores

    def as_dict(self) -> dict[str, float]:
        """Flat JSON-ready numbers, named as TrackEval names them."""
        return {
            "IDF1": self.identity.idf1, "IDP": self.identity.idp, "IDR": self.identity.idr,
            "IDTP": self.identity.idtp, "IDFP": self.identity.idfp, "IDFN": self.identity.idfn,
            "MOTA": self.clear.mota, "MOTP": self.clear.motp, "IDSW": self.clear.id_switches,
            "TP": self.clear.true_positives, "FP": self.clear.false_positives, "FN": self.clear.misses,
            "GT": self.clear.num_gt,
        }


def _best_matching(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the one-to-one matching with the largest total of positive scores."""
    if score.size == 0:
        return np.zeros(0, int), np.zeros(0, int)
    rows, cols = linear_sum_assignment(-score)
    keep = score[rows, cols] > _TOLERANCE
    return rows[keep], cols[keep]


def _overlap_scores(gt_boxes: np.ndarray, hyp_boxes: np.ndarray) -> np.ndarray:
    """IoU where it reaches the threshold, 0 elsewhere."""
    iou = iou_matrix(gt_boxes, hyp_boxes)
    return np.where(iou >= IOU_THRESHOLD - _TOLERANCE, iou, 0.0)


def _group_by_frame(rows: np.ndarray, seq_length: int) -> list[np.ndarray]:
    frames = rows[:, 0].astype(int)
    return [rows[frames == f] for f in range(1, seq_length + 1)]


def prepare_frames(gt_rows: np.ndarray, result_rows: np.ndarray, seq_length: int,
                   sequence: str = "sequence") -> list[tuple[FrameBoxes, FrameBoxes]]:
    """Per frame (1..seq_length): the scored ground truth and the tracker boxes after removing
    those on distractors. gt_rows as read_ground_truth returns them, result_rows as read_results."""
    for rows, what in ((gt_rows, "ground truth"), (result_rows, "tracker results")):
        outside = rows[(rows[:, 0] < 1) | (rows[:, 0] > seq_length), 0]
        if len(outside):
            raise StreidError(
                f"{sequence}: {what} has frame {int(outside[0])} outside 1..{seq_length}; "
                f"check seqLength in seqinfo.ini"
            )
    prepared = []
    for gt, hyp in zip(_group_by_frame(gt_rows, seq_length), _group_by_frame(result_rows, seq_length)):
        keep_hyp = np.ones(len(hyp), dtype=bool)
        if len(gt) and len(hyp):
            rows, cols = _best_matching(_overlap_scores(gt[:, 2:6], hyp[:, 2:6]))
            on_distractor = np.isin(gt[rows, 7].astype(int), DISTRACTOR_CLASSES)
            keep_hyp[cols[on_distractor]] = False
        scored_gt = (gt[:, 6] != 0) & (gt[:, 7].astype(int) == PEDESTRIAN_CLASS)
        prepared.append((
            FrameBoxes(gt[scored_gt, 1].astype(int), gt[scored_gt, 2:6]),
            FrameBoxes(hyp[keep_hyp, 1].astype(int), hyp[keep_hyp, 2:6]),
        ))
    return prepared


@dataclass(frozen=True)
class IdSwitch:
    """A ground-truth person matched to another tracker id than the one it was last matched to."""

    frame: int  # 1-based frame number
    gt_id: int
    previous_track: int
    track: int


@dataclass(frozen=True)
class _FrameMatch:
    """The CLEAR-MOT matching of one frame: box counts, IoU of each matched pair, ID switches."""

    num_gt: int
    num_hyp: int
    ious: np.ndarray
    switches: list[IdSwitch]


def _clear_matching(frames: list[tuple[FrameBoxes, FrameBoxes]]) -> Iterator[_FrameMatch]:
    """The frame-by-frame CLEAR-MOT matching (see the module docstring), frames numbered from 1."""
    last_match: dict[int, int] = {}  # gt id -> tracker id it was last matched to, ever
    previous_frame: dict[int, int] = {}  # gt id -> tracker id matched in the previous frame
    for number, (gt, hyp) in enumerate(frames, start=1):
        overlap = _overlap_scores(gt.boxes, hyp.boxes)
        kept_before = np.array([[previous_frame.get(g) == h for h in hyp.ids] for g in gt.ids],
                               dtype=bool).reshape(len(gt.ids), len(hyp.ids))
        score = np.where(overlap > 0, _CARRY_OVER_BONUS * kept_before + overlap, 0.0)
        rows, cols = _best_matching(score)
        current, switches = {}, []
        for r, c in zip(rows, cols):
            gt_id, hyp_id = int(gt.ids[r]), int(hyp.ids[c])
            if gt_id in last_match and last_match[gt_id] != hyp_id:
                switches.append(IdSwitch(number, gt_id, last_match[gt_id], hyp_id))
            last_match[gt_id] = hyp_id
            current[gt_id] = hyp_id
        previous_frame = current
        yield _FrameMatch(len(gt.ids), len(hyp.ids), overlap[rows, cols], switches)


def clear_mot(frames: list[tuple[FrameBoxes, FrameBoxes]]) -> ClearMot:
    """CLEAR-MOT counts over a sequence of (ground truth, tracker) frames."""
    num_gt = tp = fp = misses = switches = 0
    iou_sum = 0.0
    for match in _clear_matching(frames):
        num_gt += match.num_gt
        tp += len(match.ious)
        fp += match.num_hyp - len(match.ious)
        misses += match.num_gt - len(match.ious)
        switches += len(match.switches)
        for iou in match.ious:
            iou_sum += float(iou)
    return ClearMot(num_gt, tp, fp, misses, switches, iou_sum)


def id_switches(frames: list[tuple[FrameBoxes, FrameBoxes]]) -> list[IdSwitch]:
    """Every ID switch that `clear_mot` counts, in frame order: where identities were lost."""
    return [switch for match in _clear_matching(frames) for switch in match.switches]


def identity_scores(frames: list[tuple[FrameBoxes, FrameBoxes]]) -> IdentityScores:
    """IDTP/IDFP/IDFN from the global trajectory matching (see the module docstring)."""
    gt_ids = np.unique(np.concatenate([gt.ids for gt, _ in frames] + [np.zeros(0, int)]))
    hyp_ids = np.unique(np.concatenate([hyp.ids for _, hyp in frames] + [np.zeros(0, int)]))
    overlapping_frames = np.zeros((len(gt_ids), len(hyp_ids)))
    num_gt_boxes = num_hyp_boxes = 0
    for gt, hyp in frames:
        num_gt_boxes += len(gt.ids)
        num_hyp_boxes += len(hyp.ids)
        rows, cols = np.nonzero(_overlap_scores(gt.boxes, hyp.boxes) > 0)
        np.add.at(overlapping_frames,
                  (np.searchsorted(gt_ids, gt.ids[rows]), np.searchsorted(hyp_ids, hyp.ids[cols])), 1)
    match_rows, match_cols = _best_matching(overlapping_frames)
    idtp = int(overlapping_frames[match_rows, match_cols].sum())
    return IdentityScores(idtp=idtp, idfp=num_hyp_boxes - idtp, idfn=num_gt_boxes - idtp)


def score_sequence(gt_rows: np.ndarray, result_rows: np.ndarray, seq_length: int,
                   sequence: str = "sequence") -> MotScores:
    """CLEAR-MOT and identity scores of one sequence."""
    frames = prepare_frames(gt_rows, result_rows, seq_length, sequence)
    return MotScores(clear_mot(frames), identity_scores(frames))


def combine_scores(scores: list[MotScores]) -> MotScores:
    """Several sequences as one: counts summed."""
    if not scores:
        return MotScores(ClearMot(0, 0, 0, 0, 0, 0.0), IdentityScores(0, 0, 0))
    clear_totals = [sum(values) for values in zip(*(asdict(s.clear).values() for s in scores))]
    identity_totals = [sum(values) for values in zip(*(asdict(s.identity).values() for s in scores))]
    return MotScores(ClearMot(*clear_totals), IdentityScores(*identity_totals))
