"""Features in, metrics out: distances as the original computes them, chunking that does not
change a number, and memory that stays bounded."""
import tracemalloc

import numpy as np
import pytest

from streid_core.errors import StreidError
from streid_core.evaluation import PairwiseDistance, evaluate_features, evaluate_protocol, evaluate_rank
from streid_core.evaluation.metrics import BYTES_PER_ELEMENT, BYTES_PER_ID_PAIR, rows_per_chunk


def problem(seed=0, num_q=40, num_g=150, dim=8, dtype=np.float64):
    rng = np.random.default_rng(seed)
    q_pids, g_pids = rng.integers(0, 10, num_q), rng.integers(0, 10, num_g)
    q_cams, g_cams = rng.integers(0, 3, num_q), rng.integers(0, 3, num_g)
    centres = rng.normal(size=(10, dim))
    q = (centres[q_pids] + rng.normal(scale=0.8, size=(num_q, dim))).astype(dtype)
    g = (centres[g_pids] + rng.normal(scale=0.8, size=(num_g, dim))).astype(dtype)
    return q, g, q_pids, g_pids, q_cams, g_cams


def test_squared_euclidean_is_the_default_distance():
    q, g, *labels = problem()
    # the original: ||q||^2 + ||g||^2 - 2 q.g, no normalisation
    want = ((q[:, None, :] - g[None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(PairwiseDistance(q, g)(0, len(q)), want, atol=1e-10)
    via_features = evaluate_features(q, g, *labels, protocol="market1501", ap="non_interpolated")
    via_matrix = evaluate_rank(want, *labels)
    np.testing.assert_allclose(via_features.cmc, via_matrix.cmc, atol=1e-12)
    assert via_features.mAP == pytest.approx(via_matrix.mAP, abs=1e-12)
    assert via_features.mINP == pytest.approx(via_matrix.mINP, abs=1e-12)


def test_euclidean_and_cosine():
    q, g, *labels = problem(1)
    sq = PairwiseDistance(q, g)(0, len(q))
    np.testing.assert_allclose(PairwiseDistance(q, g, "euclidean")(0, len(q)), np.sqrt(np.maximum(sq, 0)), atol=1e-10)
    cos = 1 - (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (g / np.linalg.norm(g, axis=1, keepdims=True)).T
    np.testing.assert_allclose(PairwiseDistance(q, g, "cosine")(0, len(q)), cos, atol=1e-12)
    # the square root keeps the ranking: same metrics
    a = evaluate_features(q, g, *labels, metric="sqeuclidean")
    b = evaluate_features(q, g, *labels, metric="euclidean")
    assert a.mAP == pytest.approx(b.mAP, abs=1e-12)
    c = evaluate_features(q, g, *labels, metric="cosine")
    assert c.mAP == pytest.approx(evaluate_protocol(cos, *labels, "market1501").mAP, abs=1e-12)


@pytest.mark.parametrize("protocol", ["market1501", "cuhk03", "allshots"])
def test_chunk_size_does_not_change_results(protocol):
    q, g, *labels = problem(2, num_q=57)
    whole = evaluate_features(q, g, *labels, protocol=protocol, chunk_size=57)
    for chunk in (1, 8, None):
        part = evaluate_features(q, g, *labels, protocol=protocol, chunk_size=chunk)
        np.testing.assert_allclose(part.cmc, whole.cmc, atol=1e-12)
        np.testing.assert_allclose(part.ap, whole.ap, atol=1e-12)
        assert part.mINP == pytest.approx(whole.mINP, abs=1e-12)


def test_float32_features_stay_float32():
    q, g, *labels = problem(3, dtype=np.float32)
    assert PairwiseDistance(q, g)(0, 4).dtype == np.float32
    res = evaluate_features(q, g, *labels)
    assert 0 <= res.mAP <= 1 and res.num_valid > 0


def peak_extra_bytes(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("protocol, per_row", [("market1501", None), ("cuhk03", "ids")])
def test_memory_per_chunk_stays_within_the_sizing_constants(protocol, per_row):
    # 600 queries x 20,000 gallery, 50 rows a chunk; unchunked, the same run peaks at ~4x
    # the bound. Positives are random, so each query's last positive is deep in the ranking:
    # the worst case for the per-row candidate pass.
    rng = np.random.default_rng(4)
    num_q, num_g, chunk = 600, 20000, 50
    q_pids, g_pids = rng.integers(0, 500, num_q), rng.integers(0, 500, num_g)
    q_cams, g_cams = rng.integers(0, 6, num_q), rng.integers(0, 6, num_g)
    q = rng.normal(size=(num_q, 16)).astype(np.float32)
    g = rng.normal(size=(num_g, 16)).astype(np.float32)
    peak = peak_extra_bytes(lambda: evaluate_features(q, g, q_pids, g_pids, q_cams, g_cams,
                                                      protocol=protocol, chunk_size=chunk))
    bound = chunk * num_g * BYTES_PER_ELEMENT + (chunk * 500 * BYTES_PER_ID_PAIR if per_row else 0)
    assert peak < bound


def test_a_10k_by_100k_problem_fits_in_one_gigabyte():
    # the default budget picks the chunk; its temporaries are bounded by the constants the
    # test above checks against measured peaks (plus per-query results: a few floats each)
    for num_ids in (0, 1501):  # market1501-like, and with single-gallery-shot sampling
        rows = rows_per_chunk(100_000, num_ids)
        chunk_bytes = rows * (100_000 * BYTES_PER_ELEMENT + num_ids * BYTES_PER_ID_PAIR)
        per_query_results = 10_000 * 8 * 4
        assert chunk_bytes + per_query_results < 2**30
        assert rows >= 100  # still large chunks: few Python iterations


def test_feature_errors():
    q, g, *labels = problem()
    with pytest.raises(StreidError, match="dimension"):
        evaluate_features(q, g[:, :4], *labels)
    bad = q.copy()
    bad[3, 1] = np.nan
    with pytest.raises(StreidError, match="q_feats contains NaN"):
        evaluate_features(bad, g, *labels)
    with pytest.raises(StreidError, match="unknown metric"):
        evaluate_features(q, g, *labels, metric="manhattan")
    with pytest.raises(StreidError, match="chunk_size"):
        evaluate_features(q, g, *labels, chunk_size=0)
    with pytest.raises(StreidError, match="non-empty 2-D"):
        evaluate_features(q[:0], g, [], labels[1], [], labels[3])
