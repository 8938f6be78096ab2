"""streid's CLEAR-MOT and IDF1 on hand-built sequences, checked against hand arithmetic and
against TrackEval (which also gives HOTA, checked by hand on the same scene)."""
import math

import numpy as np
import pytest

from streid_core.tracking.comparison import compare_trackers
from streid_core.tracking.mot_eval import score_sequence
from streid_core.data.formats.mot import SeqInfo, write_ground_truth, write_results, write_seqinfo

A, B, FAR = (0, 0, 10, 20), (100, 0, 10, 20), (300, 0, 10, 20)

# Two people for 4 frames. Tracker: id 1 follows A but misses it in frame 4; B is followed by
# id 2 in frames 1-2 and by id 3 in frames 3-4 (one ID switch); id 4 is a false alarm in frame 2.
SWITCH_GT = np.array([[f, gid, *box, 1, 1, 1] for f in range(1, 5) for gid, box in ((1, A), (2, B))], float)
SWITCH_RESULTS = np.array(
    [[f, 1, *A, 1] for f in (1, 2, 3)] + [[f, 2, *B, 1] for f in (1, 2)] + [[f, 3, *B, 1] for f in (3, 4)]
    + [[2, 4, *FAR, 1]], float)


def test_one_id_switch_scene_by_hand():
    scores = score_sequence(SWITCH_GT, SWITCH_RESULTS, seq_length=4)
    clear, identity = scores.clear, scores.identity
    # 8 gt boxes; 7 matched exactly; 1 miss (A, frame 4); 1 false alarm (id 4); 1 switch (B: 2 -> 3).
    assert (clear.num_gt, clear.true_positives, clear.misses, clear.false_positives) == (8, 7, 1, 1)
    assert clear.id_switches == 1
    assert clear.mota == pytest.approx(1 - (1 + 1 + 1) / 8)  # 0.625
    assert clear.motp == pytest.approx(1.0)
    # Trajectory pairs overlapping: (A,1) 3 frames, (B,2) 2, (B,3) 2. Best one-to-one: A-1, B-2 -> IDTP 5.
    # IDFP = 8 tracker boxes - 5 = 3; IDFN = 8 gt boxes - 5 = 3; IDF1 = 10 / (10 + 3 + 3).
    assert (identity.idtp, identity.idfp, identity.idfn) == (5, 3, 3)
    assert identity.idf1 == pytest.approx(10 / 16)


def _box(x):
    return (x, 0, 10, 10)


# One person at x=0 for 3 frames. Frame 1: id 1 at x=1 (IoU 90/110). Frame 2: id 1 at x=3
# (IoU 70/130 = 0.54) and id 2 exactly on the person (IoU 1). Frame 3: id 1 at x=6 (IoU 40/160
# = 0.25, no longer a match) and id 2 exact.
CARRY_GT = np.array([[f, 1, *_box(0), 1, 1, 1] for f in (1, 2, 3)], float)
CARRY_RESULTS = np.array([[1, 1, *_box(1), 1], [2, 1, *_box(3), 1], [2, 2, *_box(0), 1],
                          [3, 1, *_box(6), 1], [3, 2, *_box(0), 1]], float)


def test_previous_match_is_kept_while_it_still_overlaps():
    clear = score_sequence(CARRY_GT, CARRY_RESULTS, seq_length=3).clear
    # Frame 2 keeps id 1 (matched in frame 1, IoU 0.54 >= 0.5) although id 2 overlaps better: no
    # switch, id 2 a false positive. Frame 3: id 1 drops below 0.5, id 2 takes over: 1 switch.
    assert clear.id_switches == 1
    assert (clear.true_positives, clear.false_positives, clear.misses) == (3, 2, 0)
    assert clear.motp == pytest.approx((90 / 110 + 70 / 130 + 1.0) / 3)


# Frame 1: a pedestrian (class 1), a reflection (class 12, a distractor) and a pedestrian marked
# not to be scored (flag 0). The tracker covers all three.
DISTRACTOR_GT = np.array([[1, 1, *A, 1, 1, 1], [1, 2, *B, 1, 12, 1], [1, 3, *FAR, 0, 1, 1]], float)
DISTRACTOR_RESULTS = np.array([[1, 5, *A, 1], [1, 6, *B, 1], [1, 7, *FAR, 1]], float)


def test_boxes_on_distractors_are_ignored_and_unscored_people_are_not_counted():
    clear = score_sequence(DISTRACTOR_GT, DISTRACTOR_RESULTS, seq_length=1).clear
    # The box on the reflection is removed; the flag-0 person is not ground truth, so the box on
    # it is a false positive (MOTChallenge's rule).
    assert (clear.num_gt, clear.true_positives, clear.false_positives, clear.misses) == (1, 1, 1, 0)


def _benchmark(tmp_path, sequences):
    """Write <tmp>/gt/<seq>/... and one results folder per tracker; return (gt_root, results)."""
    results = {}
    for seq, (gt, trackers, length) in sequences.items():
        write_ground_truth(tmp_path / "gt" / seq / "gt" / "gt.txt", gt)
        write_seqinfo(tmp_path / "gt" / seq / "seqinfo.ini", SeqInfo(name=seq, seq_length=length))
        for name, rows in trackers.items():
            write_results(tmp_path / name / f"{seq}.txt", rows)
            results[name] = tmp_path / name
    return tmp_path / "gt", results


def test_streid_scores_agree_with_trackeval_and_hota_matches_hand_value(tmp_path):
    perfect = SWITCH_GT[:, :7].copy()
    perfect[:, 6] = 1.0
    gt_root, results = _benchmark(tmp_path, {
        "switch": (SWITCH_GT, {"switchy": SWITCH_RESULTS, "perfect": perfect}, 4),
        "carry": (CARRY_GT, {"switchy": CARRY_RESULTS, "perfect": CARRY_GT[:, :7]}, 3),
        "distractor": (DISTRACTOR_GT, {"switchy": DISTRACTOR_RESULTS, "perfect": DISTRACTOR_RESULTS[:1]}, 1),
    })
    comparison = compare_trackers(gt_root, results)
    assert comparison["evaluators"]["trackeval"] is not None
    for tracker in comparison["trackers"]:
        assert tracker["disagreements"] == []
        for seq, entry in tracker["per_sequence"].items():
            for key in ("IDF1", "MOTA", "IDSW", "FP", "FN", "IDTP", "IDFP", "IDFN"):
                assert entry["streid"][key] == pytest.approx(entry["trackeval"][key]), (tracker["name"], seq, key)

    by_name = {t["name"]: t for t in comparison["trackers"]}
    switch = by_name["switchy"]["per_sequence"]["switch"]["trackeval"]
    assert switch["IDSW"] == 1 and switch["MOTA"] == pytest.approx(0.625)
    # HOTA on the switch scene (all matched boxes exact, so every IoU threshold gives the same):
    # DetA = TP / (TP + FN + FP) = 7 / 9. AssA averages, over the 7 matches, TPA / (TPA + FNA + FPA)
    # of the match's (gt, tracker) pair: (A,1): 3 / (3 + 1 + 0) for 3 matches; (B,2) and (B,3):
    # 2 / (2 + 2 + 0) for 2 matches each -> AssA = (3 * 0.75 + 4 * 0.5) / 7 = 17/28.
    assert switch["DetA"] == pytest.approx(7 / 9)
    assert switch["AssA"] == pytest.approx(17 / 28)
    assert switch["HOTA"] == pytest.approx(math.sqrt(7 / 9 * 17 / 28))
    perfect_scores = by_name["perfect"]["trackeval"]
    assert perfect_scores["HOTA"] == pytest.approx(1.0) and perfect_scores["IDF1"] == pytest.approx(1.0)
    # Combined over sequences = counts summed: IDSW 1 + 1 + 0.
    assert by_name["switchy"]["streid"]["IDSW"] == 2


def test_frames_outside_the_sequence_are_a_user_error():
    from streid_core.errors import StreidError

    with pytest.raises(StreidError, match="tracker results has frame 4 outside 1..3; check seqLength"):
        score_sequence(CARRY_GT, np.vstack([CARRY_RESULTS, [[4, 1, *_box(0), 1]]]), seq_length=3, sequence="carry")
