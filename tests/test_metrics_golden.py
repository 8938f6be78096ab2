"""Hand-computed CMC / AP / INP cases for every AP convention and tie policy, and the edge
cases users hit (gallery smaller than max_rank, a single gallery image, no valid query, bad
input)."""
import numpy as np
import pytest

from streid_core.errors import StreidError
from streid_core.evaluation import evaluate_rank

# Gallery of 7: index   0    1    2    3    4    5    6
G_PIDS = np.array([1, 2, 1, 3, 1, 0, 1])
G_CAMS = np.array([0, 1, 1, 1, 0, 1, 2])
Q_PIDS = np.array([1, 3, 2])
Q_CAMS = np.array([0, 1, 0])
DIST = np.array([
    # query 0 (pid 1, cam 0): g0 and g4 are junk (pid 1, cam 0). Kept ranking:
    #   g1 neg (rank 1), g2 POS (rank 2), g3 neg (3), g5 distractor (4), g6 POS (5)
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
    # query 1 (pid 3, cam 1): its only gallery image g3 is in camera 1 -> junk: skipped
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
    # query 2 (pid 2, cam 0): g1 (pid 2, cam 1) is the positive, 5 negatives before it:
    #   g2 .1, g3 .2, g0 .3, g4 .4, g5 .5, g1 .6 -> rank 6
    [0.3, 0.6, 0.1, 0.2, 0.4, 0.5, 0.7],
])


def test_market_rules_non_interpolated():
    res = evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=10, ap="non_interpolated")
    assert res.num_valid == 2
    np.testing.assert_array_equal(res.valid_queries, [0, 2])
    # query 0: positives at ranks 2 and 5 -> AP = (1/2 + 2/5) / 2 = 0.45; query 2: AP = 1/6
    np.testing.assert_allclose(res.ap, [0.45, 1 / 6])
    assert res.mAP == pytest.approx((0.45 + 1 / 6) / 2)
    # INP = #positives / rank of the last positive: 2/5 and 1/6
    np.testing.assert_allclose(res.inp, [0.4, 1 / 6])
    assert res.mINP == pytest.approx((0.4 + 1 / 6) / 2)
    # first positives at ranks 2 and 6; max_rank 10 > 7 gallery images: padded with the last
    # value (open-reid's convention; torchreid/fast-reid would truncate to 7 entries)
    np.testing.assert_allclose(res.cmc, [0, 0.5, 0.5, 0.5, 0.5, 1, 1, 1, 1, 1])
    assert res.rank1 == 0.0
    assert res.as_dict() == {"R1": 0.0, "R5": 0.5, "R10": 1.0, "mAP": pytest.approx(0.30833333333),
                             "mINP": pytest.approx(0.28333333333), "num_valid": 2}


def test_market_rules_trapezoid():
    res = evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, ap="trapezoid")
    # query 0: hit 1 at rank 2: (precision before 0/1 + at 1/2)/2 = 0.25
    #          hit 2 at rank 5: (1/4 + 2/5)/2 = 0.325           -> AP = (0.25 + 0.325)/2 = 0.2875
    # query 2: hit 1 at rank 6: (0/5 + 1/6)/2 = 1/12
    np.testing.assert_allclose(res.ap, [0.2875, 1 / 12])
    # the precision before rank 1 counts as 1: a single positive at rank 1 gives AP 1
    top = evaluate_rank([[0.1, 0.5]], [1], [1, 2], [0], [1, 1], ap="trapezoid")
    np.testing.assert_allclose(top.ap, [(1.0 + 1 / 1) / 2])


def test_market_rules_sklearn_equals_non_interpolated_without_ties():
    res = evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, ap="sklearn")
    np.testing.assert_allclose(res.ap, [0.45, 1 / 6])


# One query (pid 1, cam 0). g0 neg .1 | g1 POS .2, g2 neg .2, g3 neg .2 (tied) | g4 POS .5
TIE_G_PIDS = np.array([2, 1, 3, 4, 1])
TIE_G_CAMS = np.array([1, 1, 1, 1, 1])
TIE_DIST = np.array([[0.1, 0.2, 0.2, 0.2, 0.5]])


def tied(ties, ap="non_interpolated", reverse=False):
    order = slice(None, None, -1) if reverse else slice(None)
    return evaluate_rank(TIE_DIST[:, order], [1], TIE_G_PIDS[order], [0], TIE_G_CAMS[order],
                         max_rank=5, ap=ap, ties=ties)


def test_ties_optimistic_and_pessimistic():
    # optimistic: g1 at rank 2 -> AP = (1/2 + 2/5)/2 = 0.45, R1 0, R2 1
    opt = tied("optimistic")
    assert opt.mAP == pytest.approx(0.45)
    np.testing.assert_allclose(opt.cmc, [0, 1, 1, 1, 1])
    # pessimistic: g1 at rank 4 -> AP = (1/4 + 2/5)/2 = 0.325, first match at rank 4
    pes = tied("pessimistic")
    assert pes.mAP == pytest.approx(0.325)
    np.testing.assert_allclose(pes.cmc, [0, 0, 0, 1, 1])
    # the last positive (g4, rank 5) is not tied: INP = 2/5 either way
    assert opt.mINP == pytest.approx(0.4) and pes.mINP == pytest.approx(0.4)


def test_ties_stable_follows_gallery_order():
    # g1 comes before g2, g3 in the gallery: ranked first among the tied -> optimistic here
    assert tied("stable").mAP == pytest.approx(0.45)
    # reverse the gallery and g1 comes after them -> pessimistic
    assert tied("stable", reverse=True).mAP == pytest.approx(0.325)


def test_ties_expected_is_the_average_over_orders():
    res = tied("expected")
    # g1 is equally likely at ranks 2, 3, 4: E[1/rank] = (1/2 + 1/3 + 1/4)/3 = 13/36
    # AP = (13/36 + 2/5)/2 = 137/360
    assert res.mAP == pytest.approx(137 / 360)
    # P(first match at rank 2) = P(rank 3) = P(rank 4) = 1/3
    np.testing.assert_allclose(res.cmc, [0, 1 / 3, 2 / 3, 1, 1])
    assert res.mINP == pytest.approx(0.4)
    # same numbers whatever the gallery order
    assert tied("expected", reverse=True).mAP == pytest.approx(137 / 360)
    # trapezoid: hit 1 at rank r in {2,3,4} scores (0 + 1/r)/2, mean 13/72; hit 2 scores
    # (1/4 + 2/5)/2 = 0.325 -> AP = (13/72 + 0.325)/2
    assert tied("expected", ap="trapezoid").mAP == pytest.approx((13 / 72 + 0.325) / 2)


def test_ties_sklearn_groups_tied_items():
    # steps at distinct distances: .1 (neg) | .2: 1 pos + 2 neg -> precision 1/4 | .5 -> 2/5
    # AP = (1/4 + 2/5)/2 = 0.325 under every tie policy
    for ties in ("expected", "stable", "optimistic", "pessimistic"):
        assert tied(ties, ap="sklearn").mAP == pytest.approx(0.325)


def test_ties_expected_with_two_tied_positives_at_the_top():
    # g0 POS, g1 neg, g2 POS all at .3: the negative is equally likely 1st, 2nd or 3rd
    #   neg 1st: positives at 2, 3 -> AP (1/2 + 2/3)/2 = 7/12, INP 2/3, first match rank 2
    #   neg 2nd: positives at 1, 3 -> AP (1 + 2/3)/2 = 5/6,  INP 2/3, first match rank 1
    #   neg 3rd: positives at 1, 2 -> AP 1,                INP 1,   first match rank 1
    res = evaluate_rank([[0.3, 0.3, 0.3]], [1], [1, 2, 1], [0], [1, 1, 2], max_rank=3)
    assert res.mAP == pytest.approx((7 / 12 + 5 / 6 + 1) / 3)
    assert res.mINP == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    np.testing.assert_allclose(res.cmc, [2 / 3, 1, 1])
    # sklearn: one step, precision 2/3 for both positives
    assert evaluate_rank([[0.3, 0.3, 0.3]], [1], [1, 2, 1], [0], [1, 1, 2], ap="sklearn").mAP == pytest.approx(2 / 3)


def test_single_gallery_image():
    res = evaluate_rank([[0.7], [0.2]], [1, 5], [1], [0, 0], [1], max_rank=50)
    # query 0 matches the one image (rank 1); query 1 has no match and is skipped
    assert res.num_valid == 1
    assert res.mAP == 1.0 and res.mINP == 1.0
    assert res.cmc.shape == (50,) and np.all(res.cmc == 1.0)
    assert res.as_dict() == {"R1": 1.0, "R5": 1.0, "R10": 1.0, "mAP": 1.0, "mINP": 1.0, "num_valid": 1}


def test_small_max_rank_keeps_only_available_ranks_in_summary():
    res = evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=3)
    assert res.cmc.shape == (3,)
    assert set(res.as_dict()) == {"R1", "mAP", "mINP", "num_valid"}
    with pytest.raises(StreidError, match="max_rank"):
        res.rank(5)


def test_no_valid_query_is_a_clear_error():
    # every gallery image of the query's identity is in the query's own camera
    with pytest.raises(StreidError, match="no valid query"):
        evaluate_rank([[0.1, 0.2]], [1], [1, 2], [0], [0, 0])


@pytest.mark.parametrize("args, message", [
    (([[0.1, 0.2]], [1], [1], [0], [1, 1]), "g_pids has 1 entries"),
    (([[0.1, 0.2]], [1, 2], [1, 2], [0, 0], [1, 1]), "q_pids has 2 entries"),
    (([[0.1, 0.2]], [1], [1, 2], [0], [1]), "g_camids has 1 entries"),
    (([[0.1, np.nan]], [1], [1, 2], [0], [1, 1]), "row 0 contains NaN"),
    ((np.zeros((0, 3)), [], [1, 2, 3], [], [0, 0, 0]), "empty"),
    (([0.1, 0.2], [1], [1, 2], [0], [1, 1]), "2-D"),
    (([[0.1, 0.2]], [1.5], [1, 2], [0], [1, 1]), "integer ids"),
])
def test_bad_input_is_one_clear_line(args, message):
    with pytest.raises(StreidError, match=message) as info:
        evaluate_rank(*args)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"ap": "interpolated"}, "unknown AP convention"),
    ({"ties": "random"}, "unknown tie policy"),
    ({"max_rank": 0}, "max_rank"),
])
def test_bad_options(kwargs, message):
    with pytest.raises(StreidError, match=message):
        evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, **kwargs)


def test_nan_in_a_later_chunk_names_its_row():
    dist = np.random.default_rng(0).random((9, 4))
    dist[7, 2] = np.nan
    with pytest.raises(StreidError, match="row 7"):
        evaluate_rank(dist, np.zeros(9, int), [0, 1, 0, 1], np.zeros(9, int), np.ones(4, int), chunk_size=3)
