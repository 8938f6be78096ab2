"""Cross-check the fast evaluator against deliberately simple per-query loops.

The references below sort each row, walk the ranking and apply the textbook definitions.
For ties they enumerate every ordering of tied items (tiny galleries only) and average, which
is what the "expected" policy must equal exactly.
"""
import itertools

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from streid_core.evaluation import evaluate_rank


def kept_ranking(d_row, g_pids, g_cams, q_pid, q_cam, order):
    """Gallery indices in `order`, junk (same pid and camera) removed; match flags."""
    keep = [g for g in order if not (g_pids[g] == q_pid and g_cams[g] == q_cam)]
    return keep, np.array([g_pids[g] == q_pid for g in keep], dtype=bool)


def ap_of(matches, convention):
    hits, total = 0, 0.0
    for i, m in enumerate(matches):
        if not m:
            continue
        rank = i + 1
        hits += 1
        at = hits / rank
        if convention == "non_interpolated":
            total += at
        else:
            before = 1.0 if rank == 1 else (hits - 1) / (rank - 1)
            total += (before + at) / 2
    return total / matches.sum()


def metrics_of(matches, convention, max_rank):
    cmc = np.zeros(max_rank)
    first = int(np.flatnonzero(matches)[0])
    cmc[first:] = 1.0 if first < max_rank else 0.0
    last = int(np.flatnonzero(matches)[-1])
    return cmc, ap_of(matches, convention), matches.sum() / (last + 1)


def orderings(d_row, policy):
    """Every gallery order the policy allows, as (weight, order) pairs."""
    g = len(d_row)
    if policy == "stable":
        return [(1.0, list(np.argsort(d_row, kind="stable")))]
    values = sorted(set(d_row.tolist()))
    groups = [[j for j in range(g) if d_row[j] == v] for v in values]
    perms = [list(itertools.permutations(grp)) for grp in groups]
    combos = list(itertools.product(*perms))
    return [(1.0 / len(combos), [j for part in combo for j in part]) for combo in combos]


def reference(distmat, q_pids, g_pids, q_cams, g_cams, max_rank, convention, policy):
    cmc_sum, aps, inps = np.zeros(max_rank), [], []
    for i in range(len(q_pids)):
        d = distmat[i]
        if policy in ("optimistic", "pessimistic"):
            # positives before (after) every negative at the same distance
            is_pos = (g_pids == q_pids[i]) & (g_cams != q_cams[i])
            key = is_pos.astype(float) * (-1 if policy == "optimistic" else 1)
            pairs = [(1.0, list(np.lexsort((key, d))))]
        else:
            pairs = orderings(d, policy)
        c, a, n, valid = np.zeros(max_rank), 0.0, 0.0, True
        for weight, order in pairs:
            _, matches = kept_ranking(d, g_pids, g_cams, q_pids[i], q_cams[i], order)
            if not matches.any():
                valid = False
                break
            mc, ma, mn = metrics_of(matches, convention, max_rank)
            c += weight * mc
            a += weight * ma
            n += weight * mn
        if valid:
            cmc_sum += c
            aps.append(a)
            inps.append(n)
    return cmc_sum / len(aps), np.array(aps), np.array(inps)


def random_problem(rng, num_q, num_g, num_ids, num_cams, levels=None):
    q_pids = rng.integers(0, num_ids, num_q)
    g_pids = rng.integers(0, num_ids, num_g)
    q_cams = rng.integers(0, num_cams, num_q)
    g_cams = rng.integers(0, num_cams, num_g)
    if levels is None:
        distmat = rng.random((num_q, num_g))
    else:  # few distinct values: many ties
        distmat = rng.integers(0, levels, (num_q, num_g)).astype(np.float32)
    return distmat, q_pids, g_pids, q_cams, g_cams


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("convention", ["non_interpolated", "trapezoid"])
def test_tie_free_random_matches_simple_loop(seed, convention):
    rng = np.random.default_rng(seed)
    problem = random_problem(rng, 40, 300, 12, 4)
    want_cmc, want_ap, want_inp = reference(*problem, 30, convention, "stable")
    for ties in ("expected", "stable", "optimistic", "pessimistic"):
        got = evaluate_rank(*problem, max_rank=30, ap=convention, ties=ties, chunk_size=7)
        np.testing.assert_allclose(got.cmc, want_cmc, atol=1e-12)
        np.testing.assert_allclose(got.ap, want_ap, atol=1e-12)
        np.testing.assert_allclose(got.inp, want_inp, atol=1e-12)
        assert got.mAP == pytest.approx(want_ap.mean(), abs=1e-12)
        assert got.mINP == pytest.approx(want_inp.mean(), abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("policy", ["expected", "stable", "optimistic", "pessimistic"])
@pytest.mark.parametrize("convention", ["non_interpolated", "trapezoid"])
def test_tied_random_matches_enumeration(seed, policy, convention):
    # 6 gallery items with 3 distance levels: every query has tie groups of several items.
    rng = np.random.default_rng(100 + seed)
    problem = random_problem(rng, 12, 6, 3, 2, levels=3)
    want_cmc, want_ap, want_inp = reference(*problem, 6, convention, policy)
    got = evaluate_rank(*problem, max_rank=6, ap=convention, ties=policy, chunk_size=5)
    np.testing.assert_allclose(got.cmc, want_cmc, atol=1e-12)
    np.testing.assert_allclose(got.ap, want_ap, atol=1e-12)
    np.testing.assert_allclose(got.inp, want_inp, atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_sklearn_convention_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(200 + seed)
    distmat, q_pids, g_pids, q_cams, g_cams = random_problem(rng, 30, 80, 5, 3, levels=6)
    got = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, ap="sklearn")
    want = []
    for i in range(len(q_pids)):
        keep = ~((g_pids == q_pids[i]) & (g_cams == q_cams[i]))
        y_true = g_pids[keep] == q_pids[i]
        if y_true.any():
            want.append(average_precision_score(y_true, -distmat[i][keep]))
    np.testing.assert_allclose(got.ap, want, atol=1e-12)


def test_expected_policy_is_order_independent():
    rng = np.random.default_rng(7)
    distmat, q_pids, g_pids, q_cams, g_cams = random_problem(rng, 50, 200, 8, 3, levels=4)
    perm = rng.permutation(200)
    a = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, ties="expected")
    b = evaluate_rank(distmat[:, perm], q_pids, g_pids[perm], q_cams, g_cams[perm], ties="expected")
    np.testing.assert_allclose(a.cmc, b.cmc, atol=1e-12)
    assert a.mAP == pytest.approx(b.mAP, abs=1e-12)
    assert a.mINP == pytest.approx(b.mINP, abs=1e-12)
    # whereas gallery order moves the stable policy on the same data
    s1 = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, ties="stable")
    s2 = evaluate_rank(distmat[:, perm], q_pids, g_pids[perm], q_cams, g_cams[perm], ties="stable")
    assert s1.mAP != pytest.approx(s2.mAP, abs=1e-9)


def test_policies_are_ordered_and_bracket_the_expectation():
    rng = np.random.default_rng(8)
    problem = random_problem(rng, 60, 150, 6, 3, levels=5)
    res = {t: evaluate_rank(*problem, ties=t) for t in ("optimistic", "expected", "pessimistic")}
    assert res["pessimistic"].mAP < res["expected"].mAP < res["optimistic"].mAP
    assert np.all(res["pessimistic"].cmc <= res["expected"].cmc + 1e-12)
    assert np.all(res["expected"].cmc <= res["optimistic"].cmc + 1e-12)
    assert res["pessimistic"].mINP < res["expected"].mINP < res["optimistic"].mINP


def test_float16_and_integer_distances_are_accepted():
    rng = np.random.default_rng(9)
    distmat, q_pids, g_pids, q_cams, g_cams = random_problem(rng, 20, 50, 5, 2, levels=20)
    base = evaluate_rank(distmat.astype(np.float64), q_pids, g_pids, q_cams, g_cams)
    for cast in (np.float16, np.int32):
        other = evaluate_rank(distmat.astype(cast), q_pids, g_pids, q_cams, g_cams)
        assert other.mAP == pytest.approx(base.mAP, abs=1e-12)
