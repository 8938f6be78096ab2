"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) in bounded memory.

The algorithm, over the N = Q + G query and gallery features together:
  1. d(i, j) = squared Euclidean distance, each row divided by its maximum (the reference
     implementations divide column j of the symmetric matrix by its maximum, then transpose:
     the same thing).
  2. N(i, k): i itself followed by its k nearest other items, by (distance, index).
  3. k-reciprocal set R(i, k) = {j in N(i, k) : i in N(j, k)}; i belongs to it.
  4. Expansion: R*(i) = R(i, k1) united with every R(c, round(k1/2)), c in R(i, k1), that
     shares more than 2/3 of its members with R(i, k1).
  5. V(i, j) = exp(-d(i, j)) / sum over R*(i), for j in R*(i); zero elsewhere.
  6. Query expansion: V(i) <- mean of V over N(i, k2 - 1), i.e. the k2 first ranked items.
  7. Jaccard distance J(i, j) = 1 - S / (2 - S), S = sum_k min(V(i, k), V(j, k)).
  8. Result (Q, G): (1 - lambda) J + lambda d, for query rows and gallery columns.

Notes on the definition. N(i, k) holds k items besides i, as in the paper (the ranking of a
probe does not contain the probe) and in the reference code, whose `initial_rank[i, :k1+1]`
has i at position 0. The code relies on i sorting first; here it is placed first explicitly,
so duplicates or rounding (a tiny non-zero self distance) cannot push it out. fast-reid
issue #446 reports "wrong reciprocal sets" on a 5-item example with k1 = 4: there N(j, 4) is
the whole set for every j, so every item is reciprocal to every other and the reported output
is the right one; the fix proposed there (`initial_rank[i, :k1]`) would keep only k1 - 1
neighbours besides i. Ties are broken by index (the reference code uses NumPy's unstable
argsort, so its tie order is arbitrary). round(k1/2) rounds half to even, as np.around does.

Memory. No (N, N) array is built: distances are computed in row chunks that fit
`memory_budget`, only each row's max(k1 + 1, k2) nearest neighbours are kept, V and its
query expansion are sparse (at most (k1+1)(round(k1/2)+2) and k2 times that non-zeros per
row), and the Jaccard sums run over query chunks of (query, gallery) pairs that share a
support item. Peak memory is the (Q, G) float32 result + the features + those sparse
structures + `memory_budget` of temporaries.
"""
from __future__ import annotations

import numpy as np
from scipy import sparse

from ..errors import StreidError
from .metrics import DEFAULT_MEMORY_BUDGET, concat_ranges, iter_row_chunks

# Temporaries per element of a distance chunk (float32 distances, int64 argpartition output,
# masks) and per (query, gallery) element or shared-support pair of a Jaccard chunk.
_BYTES_PER_DISTANCE = 24
_BYTES_PER_JACCARD_ELEMENT = 40
_BYTES_PER_PAIR = 48


def _features(feats, name: str) -> np.ndarray:
    arr = np.asarray(feats)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise StreidError(f"{name} must be a non-empty 2-D array (num_images, dim), got shape {arr.shape}")
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise StreidError(f"{name} contains NaN or inf; check the feature extractor")
    return arr


def _nearest(dist: np.ndarray, first_row: int, count: int) -> np.ndarray:
    """Indices of the `count` smallest entries of each row, the row's own item first, then by
    (distance, index)."""
    n_rows, n = dist.shape
    dist[np.arange(n_rows), first_row + np.arange(n_rows)] = -np.inf
    idx = np.argpartition(dist, count - 1, axis=1)[:, :count] if count < n else np.tile(np.arange(n), (n_rows, 1))
    vals = np.take_along_axis(dist, idx, axis=1)
    order = np.lexsort((idx, vals), axis=1)
    idx = np.take_along_axis(idx, order, axis=1)
    # argpartition picks an arbitrary subset among values equal to the cut-off: redo those rows.
    cut = vals.max(axis=1)
    for r in np.flatnonzero((dist <= cut[:, None]).sum(axis=1) > count):
        cand = np.flatnonzero(dist[r] <= cut[r])
        idx[r] = cand[np.lexsort((cand, dist[r, cand]))[:count]]
    return idx


def reciprocal_neighbours(ranked: np.ndarray, k: int) -> np.ndarray:
    """Mask over `ranked[:, :k+1]`: True where that neighbour is k-reciprocal.

    `ranked[i]` lists item i's neighbours nearest first with i itself at position 0, so
    `ranked[i, :k+1]` is N(i, k). j in N(i, k) is reciprocal when i is in N(j, k).
    """
    fwd = ranked[:, :k + 1]
    mask = np.empty(fwd.shape, dtype=bool)
    for start, stop in iter_row_chunks(len(ranked), max(1, 2**22 // fwd.shape[1] ** 2)):
        back = fwd[fwd[start:stop]]  # (rows, k+1, k+1): neighbourhoods of the neighbours
        mask[start:stop] = (back == np.arange(start, stop)[:, None, None]).any(axis=2)
    return mask


def _padded(ranked: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The masked members of each row, -1 elsewhere."""
    return np.where(mask, ranked[:, :mask.shape[1]], -1)


def _expanded_sets(ranked: np.ndarray, k1: int, memory_budget: int) -> np.ndarray:
    """R*(i) for every i as a padded (N, width) index array, -1 = empty slot."""
    n = len(ranked)
    k_half = min(int(np.around(k1 / 2)), n - 1)  # a set smaller than k+1 is all of N(i, k)
    full = _padded(ranked, reciprocal_neighbours(ranked, min(k1, n - 1)))  # (N, k1+1)
    half = _padded(ranked, reciprocal_neighbours(ranked, k_half))  # (N, k_half+1)
    width = full.shape[1] * (1 + half.shape[1])
    out = np.full((n, width), -1, dtype=np.int64)
    # Per row: (K, H, K) membership test (bool + its broadcast temporaries) and (K, H) int64s.
    k_len, h_len = full.shape[1], half.shape[1]
    step = max(1, memory_budget // (4 * k_len * h_len * k_len + 48 * k_len * h_len))
    for start, stop in iter_row_chunks(n, step):
        members = full[start:stop]  # (c, K)
        cand_sets = np.where(members[:, :, None] >= 0, half[np.maximum(members, 0)], -1)  # (c, K, H)
        shared = ((cand_sets[:, :, :, None] == members[:, None, None, :])
                  & (cand_sets[:, :, :, None] >= 0)).any(axis=3)
        size = (cand_sets >= 0).sum(axis=2)
        accept = 3 * shared.sum(axis=2) > 2 * size  # |R(c) & R(i)| > 2/3 |R(c)|, in integers
        added = np.where(accept[:, :, None], cand_sets, -1).reshape(stop - start, -1)
        both = np.sort(np.concatenate((members, added), axis=1), axis=1)
        both[:, 1:][both[:, 1:] == both[:, :-1]] = -1  # drop repeats
        out[start:stop] = both
    return out


def re_rank(q_feats, g_feats, k1: int = 20, k2: int = 6, lambda_value: float = 0.3,
            memory_budget: int = DEFAULT_MEMORY_BUDGET) -> np.ndarray:
    """k-reciprocal re-ranked (num_query, num_gallery) float32 distance matrix.

    Features are used as given (L2-normalise them first if your pipeline does). Memory is
    bounded as described in the module docstring; `memory_budget` caps the temporaries.
    """
    q, g = _features(q_feats, "q_feats"), _features(g_feats, "g_feats")
    if q.shape[1] != g.shape[1]:
        raise StreidError(f"query features have dimension {q.shape[1]} but gallery features {g.shape[1]}")
    for name, value in (("k1", k1), ("k2", k2)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise StreidError(f"{name} must be a positive integer, got {value!r}")
    if not 0.0 <= lambda_value <= 1.0:
        raise StreidError(f"lambda_value must be in [0, 1], got {lambda_value!r}")
    n_q = len(q)
    feats = np.concatenate((q, g))
    sq = np.einsum("ij,ij->i", feats, feats)
    result = np.empty((n_q, len(g)), dtype=np.float32)
    ranked, row_max = _rank_all(feats, sq, n_q, min(len(feats), max(k1 + 1, k2)), result, memory_budget)
    v = _encode(feats, sq, ranked, row_max, k1, memory_budget)
    if k2 > 1:
        v = _query_expansion(v, ranked[:, :k2])
    _jaccard_into(result, v, n_q, row_max, lambda_value, memory_budget)
    return result


def _rank_all(feats: np.ndarray, sq: np.ndarray, n_q: int, keep: int, result: np.ndarray,
              memory_budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Each item's `keep` first-ranked items and its largest distance, one chunk of rows at a
    time; the raw query-gallery distances are copied into `result` on the way."""
    n = len(feats)
    ranked = np.empty((n, keep), dtype=np.int64)
    row_max = np.empty(n, dtype=np.float32)
    for start, stop in iter_row_chunks(n, max(1, memory_budget // (_BYTES_PER_DISTANCE * n))):
        dist = feats[start:stop] @ feats.T
        dist *= -2.0
        dist += sq[start:stop, None]
        dist += sq[None, :]
        np.maximum(dist, 0.0, out=dist)  # rounding can make a distance slightly negative
        dist[np.arange(stop - start), start + np.arange(stop - start)] = 0.0
        row_max[start:stop] = dist.max(axis=1)
        if start < n_q:
            last = min(stop, n_q)
            result[start:last] = dist[:last - start, n_q:]
        ranked[start:stop] = _nearest(dist, start, keep)
    return ranked, np.maximum(row_max, np.finfo(np.float32).tiny)


def _encode(feats: np.ndarray, sq: np.ndarray, ranked: np.ndarray, row_max: np.ndarray, k1: int,
            memory_budget: int) -> sparse.csr_matrix:
    """V: exp(-d) over each expanded reciprocal set, normalised to sum 1 per row."""
    n = len(feats)
    sets = _expanded_sets(ranked, k1, memory_budget)
    rows, slots = np.nonzero(sets >= 0)
    cols = sets[rows, slots]
    del sets, slots
    d = np.empty(len(rows), dtype=np.float32)
    for s, e in iter_row_chunks(len(rows), max(1, memory_budget // (8 * feats.shape[1]))):
        dots = np.einsum("ij,ij->i", feats[rows[s:e]], feats[cols[s:e]])
        d[s:e] = np.maximum(sq[rows[s:e]] + sq[cols[s:e]] - 2.0 * dots, 0.0)
    d[rows == cols] = 0.0
    weight = np.exp(-d / row_max[rows])
    weight /= np.bincount(rows, weights=weight, minlength=n)[rows].astype(np.float32)
    return sparse.csr_matrix((weight, (rows, cols)), shape=(n, n))


def _query_expansion(v: sparse.csr_matrix, top: np.ndarray) -> sparse.csr_matrix:
    """Each row of V replaced by the mean of V over the item's first-ranked items."""
    n, k = top.shape
    mean = sparse.csr_matrix((np.full(top.size, 1.0 / k, dtype=np.float32),
                              (np.repeat(np.arange(n), k), top.ravel())), shape=(n, n))
    return (mean @ v).tocsr()


def _jaccard_into(result: np.ndarray, v: sparse.csr_matrix, n_q: int, row_max: np.ndarray,
                  lambda_value: float, memory_budget: int) -> None:
    """Turn `result` (raw query-gallery distances) into the final re-ranked distances."""
    n_g = result.shape[1]
    gallery = v[n_q:].tocsc()  # column k lists the gallery items whose support holds k
    col_len = np.diff(gallery.indptr)
    queries = v[:n_q]
    support = queries.copy()
    support.data[:] = 1.0  # every stored weight is > 0 (exp of a value >= -1)
    pairs_per_query = np.rint(support @ col_len.astype(np.float64)).astype(np.int64)
    budget_pairs = max(1, memory_budget // (2 * _BYTES_PER_PAIR))
    rows_cap = max(1, memory_budget // (2 * _BYTES_PER_JACCARD_ELEMENT * n_g))
    start = 0
    while start < n_q:
        stop = start + 1
        total = pairs_per_query[start]
        while stop < n_q and stop - start < rows_cap and total + pairs_per_query[stop] <= budget_pairs:
            total += pairs_per_query[stop]
            stop += 1
        block = queries[start:stop].tocoo()
        which, pos = concat_ranges(gallery.indptr[block.col], col_len[block.col])
        flat = block.row[which] * n_g + gallery.indices[pos]
        mins = np.minimum(block.data[which], gallery.data[pos])
        shared = np.bincount(flat, weights=mins, minlength=(stop - start) * n_g).reshape(stop - start, n_g)
        jaccard = 1.0 - shared / (2.0 - shared)
        original = result[start:stop] / row_max[start:stop, None]
        result[start:stop] = (1.0 - lambda_value) * jaccard + lambda_value * original
        start = stop
