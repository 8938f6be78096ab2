"""The original system's protocols: open-reid's CMC flags and presets, hand-computed."""
import itertools

import numpy as np
import pytest

from streid_core.errors import StreidError
from streid_core.evaluation import PROTOCOLS, evaluate_protocol, evaluate_rank, resolve_protocol

# open-reid's defaults when a test passes no ids/cameras: query i matches gallery i, all
# queries in camera 0 and all gallery images in camera 1 (no junk).


def openreid_defaults(n):
    return np.arange(n), np.arange(n), np.zeros(n, int), np.ones(n, int)


def test_openreid_golden_only_distmat():
    # open-reid's own unit test, no flag set (= allshots). Each query has one match at
    # position 0, 0, 2, 3, 0 among the negatives -> CMC [3, 3, 4, 5, 5] / 5
    distmat = np.array([[0, 1, 2, 3, 4], [1, 0, 2, 3, 4], [0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [1, 2, 3, 4, 0]],
                       dtype=float)
    q, g, qc, gc = openreid_defaults(5)
    res = evaluate_protocol(distmat, q, g, qc, gc, protocol={}, max_rank=5)
    np.testing.assert_allclose(res.cmc, [0.6, 0.6, 0.8, 1.0, 1.0])


def test_openreid_golden_duplicate_ids():
    # ids [0, 0, 1, 1] both sides, distances 0..3 in every row. allshots: queries of id 0 find
    # both matches with no negative before them (2 x 1/2 at position 0); queries of id 1 find
    # theirs after the 2 negatives (1 at position 2) -> [2, 0, 2, 0] / 4 cumulated
    distmat = np.tile(np.arange(4.0), (4, 1))
    ids = np.array([0, 0, 1, 1])
    res = evaluate_protocol(distmat, ids, ids, np.zeros(4, int), np.ones(4, int), "allshots", max_rank=4)
    np.testing.assert_allclose(res.cmc, [0.5, 0.5, 1, 1])


def test_openreid_golden_duplicate_cams():
    # ids [0,0,0,1,1], query cameras all 0, gallery cameras [0,1,1,1,1], distances 0..4.
    # id-0 queries: g0 is junk, positives g1, g2 at position 0; id-1 queries: positives g3, g4
    # after the negatives g0, g1, g2 (position 3) -> [3, 0, 0, 2, 0] / 5 cumulated
    distmat = np.tile(np.arange(5.0), (5, 1))
    ids = np.array([0, 0, 0, 1, 1])
    res = evaluate_protocol(distmat, ids, ids, np.zeros(5, int), np.array([0, 1, 1, 1, 1]), "allshots", max_rank=5)
    np.testing.assert_allclose(res.cmc, [0.6, 0.6, 0.6, 1, 1])


# One query (pid 1, cam 0). Gallery:   pid  cam  dist
#   g0  1  0  .01   junk (same pid, same camera)
#   g1  3  0  .05   same camera as the query: dropped by separate_camera_set
#   g2  2  1  .10
#   g3  2  2  .15
#   g4  1  1  .20   the positive
#   g5  3  1  .50
CAM_DIST = np.array([[0.01, 0.05, 0.10, 0.15, 0.20, 0.50]])
CAM_G_PIDS, CAM_G_CAMS = np.array([1, 3, 2, 2, 1, 3]), np.array([0, 0, 1, 2, 1, 1])


def cam_case(protocol, **kw):
    return evaluate_protocol(CAM_DIST, [1], CAM_G_PIDS, [0], CAM_G_CAMS, protocol, max_rank=5, **kw)


def test_presets_on_one_query():
    # market1501: junk g0 removed, ranking g1 g2 g3 g4 -> first match at rank 4
    np.testing.assert_allclose(cam_case("market1501").cmc, [0, 0, 0, 1, 1])
    # allshots: the positive has 3 negatives before it -> position 3
    np.testing.assert_allclose(cam_case("allshots").cmc, [0, 0, 0, 1, 1])
    # separate camera set, no sampling: g1 dropped too -> g2 g3 g4: rank 3
    np.testing.assert_allclose(cam_case("separate_camera_set+first_match_break").cmc, [0, 0, 1, 1, 1])
    # cuhk03: g1 dropped, one image per id: pid 2 gives g2 or g3 (both closer than g4),
    # pid 3 gives g5 (farther) -> rank 2 in every repeat
    np.testing.assert_allclose(cam_case("cuhk03").cmc, [0, 1, 1, 1, 1])
    # mAP is the same for all: the ranking with junk only removed, positive at rank 4
    for name in ("market1501", "allshots", "cuhk03"):
        assert cam_case(name).mAP == pytest.approx(0.25)
        assert cam_case(name).ap_convention == "sklearn"


def test_single_shot_probability_and_seed():
    # pid 2 has one image closer (.1) and one farther (.5) than the positive (.3): each repeat
    # the positive is first with probability 1/2
    dist = np.array([[0.3, 0.1, 0.5]])
    args = (dist, [1], [1, 2, 2], [0], [1, 1, 1], "cuhk03")
    res = evaluate_protocol(*args, max_rank=2, repeats=4000, seed=3)
    assert res.cmc[0] == pytest.approx(0.5, abs=0.05) and res.cmc[1] == pytest.approx(1.0)
    small = evaluate_protocol(*args, max_rank=2, repeats=10, seed=3)
    assert small.cmc[0] * 10 == pytest.approx(round(small.cmc[0] * 10))  # k of 10 repeats
    assert evaluate_protocol(*args, max_rank=2, repeats=10, seed=3).cmc[0] == small.cmc[0]


def exact_single_shot_cmc(distmat, q_pids, g_pids, q_cams, g_cams, separate, max_rank):
    """Exact expectation over every way of picking one image per identity."""
    total, valid = np.zeros(max_rank), 0
    for i in range(len(q_pids)):
        allowed = ~((g_pids == q_pids[i]) & (g_cams == q_cams[i]))
        if separate:
            allowed &= g_cams != q_cams[i]
        if not np.any(allowed & (g_pids == q_pids[i])):
            continue
        valid += 1
        choices = [np.flatnonzero(allowed & (g_pids == p)) for p in np.unique(g_pids[allowed])]
        picks = list(itertools.product(*choices))
        for pick in picks:
            pick = np.array(pick)
            pos = pick[g_pids[pick] == q_pids[i]][0]
            before = np.sum(distmat[i, pick] < distmat[i, pos])
            if before < max_rank:
                total[before:] += 1.0 / len(picks)
    return total / valid


@pytest.mark.parametrize("separate", [True, False])
def test_single_shot_converges_to_the_exact_expectation(separate):
    rng = np.random.default_rng(11)
    q_pids, g_pids = rng.integers(0, 3, 6), rng.integers(0, 3, 9)
    q_cams, g_cams = rng.integers(0, 3, 6), rng.integers(0, 3, 9)
    distmat = rng.random((6, 9))
    want = exact_single_shot_cmc(distmat, q_pids, g_pids, q_cams, g_cams, separate, 3)
    flags = "separate_camera_set+single_gallery_shot" if separate else "single_gallery_shot"
    got = evaluate_protocol(distmat, q_pids, g_pids, q_cams, g_cams, flags, max_rank=3, repeats=3000, seed=1)
    np.testing.assert_allclose(got.cmc, want, atol=0.04)


def test_single_shot_with_first_match_break_stays_a_rate():
    # open-reid adds 1 per repeat here (curve up to 10); every repeat weighs 1/repeats instead
    res = cam_case("single_gallery_shot+first_match_break")
    assert res.cmc[-1] == pytest.approx(1.0)


def test_sampling_is_seeded_and_independent_of_chunking():
    rng = np.random.default_rng(5)
    q_pids, g_pids = rng.integers(0, 20, 60), rng.integers(0, 20, 200)
    q_cams, g_cams = rng.integers(0, 4, 60), rng.integers(0, 4, 200)
    distmat = rng.random((60, 200))
    args = (distmat, q_pids, g_pids, q_cams, g_cams, "cuhk03")
    a = evaluate_protocol(*args, seed=7, chunk_size=7)
    b = evaluate_protocol(*args, seed=7, chunk_size=60)
    c = evaluate_protocol(*args, seed=8)
    np.testing.assert_allclose(a.cmc, b.cmc, atol=1e-12)  # same draws; only float sums reorder
    assert np.abs(a.cmc - c.cmc).max() > 0.01


# DanceReID: query set = gallery set, frame index in the camera slot.
#        a      b      c      d      e
PIDS = np.array([0, 0, 1, 1, 0])
FRAMES = np.array([0, 5, 0, 5, 10])
DANCE = np.array([
    [0.0, 0.3, 0.1, 0.2, 0.6],  # a: mAP ranking (self excluded) c- d- b+ e+ -> AP (1/3 + 2/4)/2
    [0.3, 0.0, 0.4, 0.1, 0.2],  # b: d- e+ a+ c-                              -> AP (1/2 + 2/3)/2
    [0.1, 0.4, 0.0, 0.5, 0.3],  # c: a- e- b- d+                              -> AP 1/4
    [0.2, 0.1, 0.5, 0.0, 0.4],  # d: b- a- e- c+                              -> AP 1/4
    [0.6, 0.2, 0.3, 0.4, 0.0],  # e: b+ c- d- a+                              -> AP (1 + 2/4)/2
])


def test_dancereid_preset():
    res = evaluate_protocol(DANCE, PIDS, PIDS, FRAMES, FRAMES, "dancereid", repeats=10, seed=0, max_rank=3)
    np.testing.assert_allclose(res.ap, [5 / 12, 7 / 12, 1 / 4, 1 / 4, 3 / 4])
    assert res.mAP == pytest.approx(27 / 60)
    # INP: 2/4, 2/3, 1/4, 1/4, 2/4
    assert res.mINP == pytest.approx((0.5 + 2 / 3 + 0.25 + 0.25 + 0.5) / 5)
    # CMC drops every image of the query's frame number, then one image per dancer:
    #   a: frame 0 drops a, c; positive b or e (.3/.6) vs d (.2): rank 2
    #   b: frame 5 drops b, d; positive a or e (.3/.2) vs c (.4): rank 1
    #   c: positive d (.5) vs b or e (.4/.3): rank 2;  d: c (.5) vs a or e (.2/.4): rank 2
    #   e: positive a (.6, rank 2) or b (.2, rank 1), each with probability 1/2
    # -> R1 = (1 + share of e's repeats that drew b) / 5, R2 = 1
    assert 0.2 <= res.cmc[0] <= 0.4
    assert res.cmc[0] * 5 * 10 == pytest.approx(round(res.cmc[0] * 5 * 10))
    np.testing.assert_allclose(res.cmc[1:], [1, 1])
    long = evaluate_protocol(DANCE, PIDS, PIDS, FRAMES, FRAMES, "dancereid", repeats=4000, max_rank=3)
    assert long.cmc[0] == pytest.approx(1.5 / 5, abs=0.02)


def test_dancereid_needs_query_equal_gallery():
    with pytest.raises(StreidError, match="query set = gallery set"):
        evaluate_protocol(DANCE[:4], PIDS[:4], PIDS, FRAMES[:4], FRAMES, "dancereid")


def openreid_cmc_loop(distmat, q_pids, g_pids, q_cams, g_cams, separate, first_match_break, topk):
    """open-reid's cmc without sampling, as a plain loop over each query's sorted gallery."""
    ret, valid = np.zeros(topk), 0
    for i in range(len(q_pids)):
        order = np.argsort(distmat[i], kind="stable")
        keep = ~((g_pids[order] == q_pids[i]) & (g_cams[order] == q_cams[i]))
        if separate:
            keep &= g_cams[order] != q_cams[i]
        matches = g_pids[order][keep] == q_pids[i]
        if not matches.any():
            continue
        valid += 1
        hits = np.flatnonzero(matches)
        for j, k in enumerate(hits):
            if k - j >= topk:
                break
            if first_match_break:
                ret[k - j] += 1
                break
            ret[k - j] += 1.0 / len(hits)
    return np.cumsum(ret) / valid


@pytest.mark.parametrize("flags", [{}, {"separate_camera_set": True},
                                   {"first_match_break": True},
                                   {"separate_camera_set": True, "first_match_break": True}])
def test_flag_combinations_match_openreid_loop(flags):
    rng = np.random.default_rng(21)
    q_pids, g_pids = rng.integers(0, 10, 50), rng.integers(0, 10, 120)
    q_cams, g_cams = rng.integers(0, 3, 50), rng.integers(0, 3, 120)
    distmat = rng.random((50, 120))
    want = openreid_cmc_loop(distmat, q_pids, g_pids, q_cams, g_cams,
                             flags.get("separate_camera_set", False), flags.get("first_match_break", False), 20)
    got = evaluate_protocol(distmat, q_pids, g_pids, q_cams, g_cams, flags, max_rank=20, chunk_size=9)
    np.testing.assert_allclose(got.cmc, want, atol=1e-12)
    # mAP ignores the flags: open-reid's mean_ap on the junk-removed ranking
    assert got.mAP == pytest.approx(evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams).mAP, abs=1e-12)


def test_allshots_with_ties_spreads_over_tied_positions():
    # positive tied with one negative at the top: position 0 or 1 with probability 1/2 each;
    # the stable policy follows gallery order (positive first here)
    args = ([[0.2, 0.2, 0.9]], [1], [1, 2, 3], [0], [1, 1, 1], "allshots")
    np.testing.assert_allclose(evaluate_protocol(*args, max_rank=3).cmc, [0.5, 1, 1])
    np.testing.assert_allclose(evaluate_protocol(*args, max_rank=3, ties="stable").cmc, [1, 1, 1])
    np.testing.assert_allclose(evaluate_protocol(*args, max_rank=3, ties="pessimistic").cmc, [0, 1, 1])


def test_single_shot_ties():
    # positive .2 tied with pid 2's only image: one sampled negative tied with the positive
    args = ([[0.2, 0.2]], [1], [1, 2], [0], [1, 1], "single_gallery_shot")
    np.testing.assert_allclose(evaluate_protocol(*args, max_rank=2).cmc, [0.5, 1])
    np.testing.assert_allclose(evaluate_protocol(*args, max_rank=2, ties="optimistic").cmc, [1, 1])
    np.testing.assert_allclose(evaluate_protocol(*args, max_rank=2, ties="pessimistic").cmc, [0, 1])
    np.testing.assert_allclose(evaluate_protocol(*args, max_rank=2, ties="stable").cmc, [1, 1])


def test_protocol_forms_and_errors():
    assert set(PROTOCOLS) == {"market1501", "cuhk03", "dancereid", "allshots"}
    cuhk = resolve_protocol("cuhk03")
    flags = resolve_protocol("single_gallery_shot+separate_camera_set")
    mapping = resolve_protocol({"separate_camera_set": True, "single_gallery_shot": True})
    for p in (flags, mapping):
        assert (p.separate_camera_set, p.single_gallery_shot, p.first_match_break) == (True, True, False)
    assert (cuhk.separate_camera_set, cuhk.single_gallery_shot, cuhk.first_match_break) == (True, True, False)
    a = evaluate_protocol(CAM_DIST, [1], CAM_G_PIDS, [0], CAM_G_CAMS, "cuhk03", seed=4)
    b = evaluate_protocol(CAM_DIST, [1], CAM_G_PIDS, [0], CAM_G_CAMS, flags, seed=4)
    np.testing.assert_allclose(a.cmc, b.cmc, atol=1e-12)
    with pytest.raises(StreidError, match="unknown protocol"):
        resolve_protocol("market")
    with pytest.raises(StreidError, match="unknown protocol flag"):
        resolve_protocol({"first_match": True})
    with pytest.raises(StreidError, match="repeats"):
        evaluate_protocol(CAM_DIST, [1], CAM_G_PIDS, [0], CAM_G_CAMS, "cuhk03", repeats=0)


def test_ap_override_and_default():
    tied = ([[0.1, 0.2, 0.2, 0.2, 0.5]], [1], [2, 1, 3, 4, 1], [0], [1, 1, 1, 1, 1])
    # sklearn groups the tie (0.325, see test_metrics_golden); non_interpolated averages it
    assert evaluate_protocol(*tied, "market1501").mAP == pytest.approx(0.325)
    assert evaluate_protocol(*tied, "market1501", ap="non_interpolated").mAP == pytest.approx(137 / 360)
