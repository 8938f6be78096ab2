"""Ranking metrics for re-identification: CMC, mAP and mINP, exact, fast and tie-aware.

What is measured (Market-1501 semantics, as torchreid and fast-reid compute them)
    For each query, gallery items with the same pid AND the same camera are junk: removed from
    the ranking, neither right nor wrong. Items of another pid are negatives, pid-0 distractors
    included. Items of the same pid from another camera are positives. A query with no positive
    left is skipped; every average is over the valid queries only (layumi divides by all
    queries instead, which only matters when some query has no match). pid -1 junk images are
    not treated specially: the dataset readers drop them, as torchreid's do.

    CMC[k-1]  share of valid queries whose first positive is at rank <= k.
    AP        average precision of the ranking (three conventions, below).
    INP       #positives / rank of the last positive (fast-reid's mINP, Ye et al. 2021).

AP conventions (`ap=`)
    "non_interpolated"  mean over positives of precision at that positive's rank. torchreid,
                        fast-reid, BoT, and sklearn >= 0.19 on tie-free data. The default.
    "trapezoid"         the official Market-1501 MATLAB formula (layumi's evaluate.py): each
                        positive adds 1/#pos x (precision before it + precision at it) / 2, with
                        the precision before rank 1 taken as 1. Lower by ~0.7 mAP on Market.
    "sklearn"           open-reid's `average_precision_score(matches, -distance)`: the ranking
                        is cut only between distinct distances, so items at one distance form
                        one step and every positive in it gets the precision at the step's end.
                        Order-independent by construction; equals "non_interpolated" when no
                        two kept items share a distance. Implemented here, sklearn not needed.

Tie policies (`ties=`): what happens when a positive and negatives have the same distance.
Ties are common with fp16 features, rounded distances and Jaccard (re-ranking) distances.
    "expected"     (default) the exact expectation over all orderings of tied items, each
                   equally likely. Order-independent: permuting the gallery never changes a
                   number. Computed in closed form (digamma sums for AP, hypergeometric
                   terms for CMC and INP), not by sampling.
    "stable"       the gallery order breaks ties, as a stable argsort would.
    "optimistic"   positives before tied negatives (an upper bound).
    "pessimistic"  positives after tied negatives (a lower bound).
    Ties among positives only, or among negatives only, change nothing under any policy.
    The peers document none: torchreid and fast-reid (Python and Cython) and open-reid's CMC
    take whatever order `np.argsort(distmat, axis=1)` returns, whose default kind is not
    stable, so tied results depend on the gallery order and on the NumPy build (on Market
    with distances rounded to 2 decimals, reversing the gallery moves torchreid's R1 from
    95.8 to 96.1). layumi sorts with `np.argsort` too. open-reid's mAP goes through sklearn, which groups
    ties (the "sklearn" convention above, whatever `ties` says). On tie-free data all
    policies and all peers agree.

How it is computed (why it is fast): no row is ever argsorted. A query's metrics only need
where its (few) positives rank, and a positive's rank is the number of negatives closer to
it plus the number of positives before it. Per query, only the distances up to the farthest
positive are kept; for each distinct positive distance they are counted (<= and <) with one
vectorised compare each, or, when there are many positives, sorted once and binary-searched.
Same-pid items are then subtracted, which gives every positive's negatives-before count and
its tie count at once. Queries are processed in chunks of rows so that temporaries stay
within a fixed memory budget (`rows_per_chunk`).

max_rank larger than the gallery: torchreid and fast-reid shrink max_rank to the gallery size
(printing a note) and return a shorter curve; worse, when junk removal leaves a query fewer
than max_rank items, torchreid's Python path fails on a ragged array and fast-reid's Cython
reads leftovers of earlier queries. open-reid returns all `topk` entries, the curve staying at
its last value. We always return `max_rank` entries, padded like open-reid.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
from scipy.special import digamma, gammaln

from ..errors import StreidError

AP_CONVENTIONS = ("non_interpolated", "trapezoid", "sklearn")
TIE_POLICIES = ("expected", "stable", "optimistic", "pessimistic")
DEFAULT_TIES = "expected"

# Bytes of temporaries per distance-matrix element of a chunk (the distances of a features
# chunk or a float copy, masks); tests/test_metrics_features.py checks measured peaks against
# these constants.
BYTES_PER_ELEMENT = 12
# Bytes per (query, gallery identity) pair of a single-gallery-shot chunk.
BYTES_PER_ID_PAIR = 96
DEFAULT_MEMORY_BUDGET = 256 * 2**20


@dataclass
class RankResult:
    """Metrics of one evaluation. Rates are fractions in [0, 1] (multiply by 100 for %)."""

    cmc: np.ndarray  # (max_rank,) CMC[k-1] = rate at rank k
    mAP: float
    mINP: float
    num_valid: int
    ap: np.ndarray  # AP of each valid query, in query order
    inp: np.ndarray  # INP of each valid query, in query order
    valid_queries: np.ndarray  # indices of the valid queries
    ap_convention: str = "non_interpolated"
    ties: str = DEFAULT_TIES
    protocol: str = "market1501"

    @property
    def rank1(self) -> float:
        return float(self.cmc[0])

    def rank(self, k: int) -> float:
        """CMC at rank k (1-based)."""
        if not 1 <= k <= len(self.cmc):
            raise StreidError(f"rank {k} is outside the computed CMC (1..{len(self.cmc)}); raise max_rank")
        return float(self.cmc[k - 1])

    def as_dict(self) -> dict:
        """JSON-ready summary: R1/R5/R10 (those within max_rank), mAP, mINP, num_valid."""
        out = {f"R{k}": float(self.cmc[k - 1]) for k in (1, 5, 10) if k <= len(self.cmc)}
        out.update(mAP=float(self.mAP), mINP=float(self.mINP), num_valid=int(self.num_valid))
        return out


# ----------------------------------------------------------------------------- inputs


@dataclass
class Labels:
    """Validated identity/camera labels plus a pid index of the gallery."""

    q_pids: np.ndarray
    g_pids: np.ndarray
    q_cams: np.ndarray
    g_cams: np.ndarray
    order: np.ndarray = field(init=False)  # gallery indices sorted by pid (stable)
    q_start: np.ndarray = field(init=False)  # range of the query's pid in `order`
    q_stop: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.order = np.argsort(self.g_pids, kind="stable")
        sorted_pids = self.g_pids[self.order]
        self.q_start = np.searchsorted(sorted_pids, self.q_pids, side="left")
        self.q_stop = np.searchsorted(sorted_pids, self.q_pids, side="right")

    @property
    def num_query(self) -> int:
        return len(self.q_pids)

    @property
    def num_gallery(self) -> int:
        return len(self.g_pids)


def _as_labels(values, name: str, length: int | None) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise StreidError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if length is not None and len(arr) != length:
        raise StreidError(f"{name} has {len(arr)} entries but the distance matrix needs {length}; "
                          "pass one per row/column")
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        return arr.astype(np.int64)
    raise StreidError(f"{name} must hold integer ids, got dtype {arr.dtype}")


def check_labels(q_pids, g_pids, q_camids, g_camids, num_query: int | None = None,
                 num_gallery: int | None = None) -> Labels:
    """Validate label arrays (lengths, integer ids, non-empty) and index the gallery by pid."""
    q_pids = _as_labels(q_pids, "q_pids", num_query)
    g_pids = _as_labels(g_pids, "g_pids", num_gallery)
    q_cams = _as_labels(q_camids, "q_camids", len(q_pids))
    g_cams = _as_labels(g_camids, "g_camids", len(g_pids))
    if len(q_pids) == 0 or len(g_pids) == 0:
        raise StreidError(f"empty query ({len(q_pids)}) or gallery ({len(g_pids)}) set: nothing to evaluate")
    return Labels(q_pids, g_pids, q_cams, g_cams)


def check_options(max_rank: int, ap: str, ties: str) -> None:
    if isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise StreidError(f"max_rank must be a positive integer, got {max_rank!r}")
    if ap not in AP_CONVENTIONS:
        raise StreidError(f"unknown AP convention {ap!r}; choose one of {', '.join(AP_CONVENTIONS)}")
    if ties not in TIE_POLICIES:
        raise StreidError(f"unknown tie policy {ties!r}; choose one of {', '.join(TIE_POLICIES)}")


def check_distmat(distmat) -> np.ndarray:
    d = np.asarray(distmat)
    if d.ndim != 2:
        raise StreidError(f"distmat must be 2-D (num_query, num_gallery), got shape {d.shape}")
    if d.shape[0] == 0 or d.shape[1] == 0:
        raise StreidError(f"distmat is empty (shape {d.shape}): nothing to evaluate")
    if d.dtype.kind not in "fiub":
        raise StreidError(f"distmat must be numeric, got dtype {d.dtype}")
    return d


def as_float_rows(block: np.ndarray, first_row: int) -> np.ndarray:
    """A C-contiguous float32/float64 view (or copy) of a chunk of rows; NaN is an error."""
    if block.dtype == np.float16:
        block = block.astype(np.float32)
    elif block.dtype.kind != "f":
        block = block.astype(np.float64)
    block = np.ascontiguousarray(block)
    if np.isnan(block.min()):  # min propagates NaN: one fast pass instead of isnan + any
        bad = first_row + int(np.flatnonzero(np.isnan(block).any(axis=1))[0])
        raise StreidError(f"distance matrix row {bad} contains NaN; check the features for NaN/inf")
    return block


def rows_per_chunk(num_gallery: int, num_ids: int = 0, budget: int = DEFAULT_MEMORY_BUDGET) -> int:
    """Query rows per chunk so that a chunk's temporaries stay within `budget` bytes."""
    per_row = num_gallery * BYTES_PER_ELEMENT + num_ids * BYTES_PER_ID_PAIR
    return max(1, int(budget // max(per_row, 1)))


def concat_ranges(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, value) for the concatenation of ranges starts[k] .. starts[k]+lengths[k]-1:
    `owner` is k for every value of range k."""
    owner = np.repeat(np.arange(len(lengths)), lengths)
    offset = np.arange(int(np.sum(lengths))) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return owner, np.repeat(starts, lengths) + offset


def check_chunk_size(chunk_size) -> None:
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer))
                                   or chunk_size < 1):
        raise StreidError(f"chunk_size must be a positive integer (query rows per chunk), got {chunk_size!r}")


def iter_row_chunks(num_rows: int, chunk: int) -> Iterator[tuple[int, int]]:
    for start in range(0, num_rows, chunk):
        yield start, min(num_rows, start + chunk)


# ------------------------------------------------------------------- positive ranks


@dataclass
class PositiveRanks:
    """Where each positive of a chunk of queries sits in its ranking (junk removed).

    Flat arrays over all positives, grouped by query row and, within a row, sorted by
    (distance, gallery index). `within` is the positive's index among its row's positives.
    """

    count: np.ndarray  # (rows,) positives per row
    first: np.ndarray  # (rows,) offset of the row's first positive in the flat arrays
    rows: np.ndarray
    within: np.ndarray
    cols: np.ndarray  # gallery index of each positive
    neg_lt: np.ndarray  # negatives strictly closer than the positive
    neg_eq: np.ndarray  # negatives at exactly the positive's distance
    neg_eq_before: np.ndarray | None  # of those, how many precede it in gallery order
    group_first: np.ndarray  # `within` of the first positive at the same distance
    group_size: np.ndarray  # positives at the same distance

    @property
    def valid(self) -> np.ndarray:
        return self.count > 0


def rank_positives(dist: np.ndarray, rows: slice, labels: Labels, need_stable: bool,
                   exclude_same_camera: bool = False) -> PositiveRanks:
    """Count, for every positive of the queries `rows`, the negatives ranked before it.

    `dist` is the chunk's (rows, gallery) float distance block. With `exclude_same_camera`
    every gallery item from the query's camera is dropped, not only the same-pid ones
    (open-reid's separate_camera_set).
    """
    q_pids, q_cams = labels.q_pids[rows], labels.q_cams[rows]
    n_rows = len(q_pids)
    start, stop = labels.q_start[rows], labels.q_stop[rows]
    lens = stop - start
    same_rows, where = concat_ranges(start, lens)
    same_cols = labels.order[where]
    same_d = dist[same_rows, same_cols]
    junk = labels.g_cams[same_cols] == q_cams[same_rows]  # same pid, same camera

    # Integer keys (row, dense rank of the distance) order same-pid items by row then distance
    # with one integer sort; equal distances share a rank (and -0.0 equals 0.0).
    ranks = np.unique(same_d, return_inverse=True)[1].reshape(-1).astype(np.int64)
    keys = (same_rows.astype(np.int64) << 32) | ranks

    pos = ~junk
    # stable: within a row and distance, gallery order (same_cols ascend within each row)
    order = np.argsort(keys[pos], kind="stable")
    p_rows, p_cols, p_d, p_keys = same_rows[pos][order], same_cols[pos][order], same_d[pos][order], keys[pos][order]
    count = np.bincount(p_rows, minlength=n_rows)
    first = np.cumsum(count) - count
    within = np.arange(len(p_rows)) - first[p_rows]
    # Positives at one distance form a group: the unit of all counting below.
    new_group = np.ones(len(p_d), dtype=bool)
    new_group[1:] = p_keys[1:] != p_keys[:-1]
    group_id = np.cumsum(new_group) - 1
    group_starts = np.flatnonzero(new_group)
    group_ends = np.append(group_starts[1:], len(p_d))
    group_rows, group_values = p_rows[group_starts], p_d[group_starts]
    group_first = within[group_starts][group_id]
    group_size = (group_ends - group_starts)[group_id]

    # Per group: kept items (any pid) at distance <= / < the group's distance, one row at a
    # time: this is the only pass over whole rows.
    le = np.empty(len(group_values), dtype=np.int64)
    lt = np.empty(len(group_values), dtype=np.int64)
    g_first = np.searchsorted(group_rows, np.arange(n_rows), side="left").tolist()
    g_stop = np.searchsorted(group_rows, np.arange(n_rows), side="right").tolist()
    g_cams = labels.g_cams
    for r in np.flatnonzero(count).tolist():
        lo, hi = g_first[r], g_stop[r]
        values = group_values[lo:hi]
        row = dist[r]
        if exclude_same_camera:
            vals = row[(row <= values[-1]) & (g_cams != q_cams[r])]
        else:
            vals = row[row <= values[-1]]
        le[lo:hi], lt[lo:hi] = _count_at_or_below(vals, values)
    # Remove the same-pid items from those counts. Positives at <= / < a group's distance are
    # the positives up to the group's end / start; junk (dropped already by the camera filter
    # when there is one) is counted by binary search on the integer keys.
    group_start_in_row = within[group_starts]
    le -= group_start_in_row + (group_ends - group_starts)
    lt -= group_start_in_row
    if not exclude_same_camera:
        junk_keys = np.sort(keys[junk])
        group_keys = p_keys[group_starts]
        in_earlier_rows = np.searchsorted(junk_keys, group_rows.astype(np.int64) << 32)
        le -= np.searchsorted(junk_keys, group_keys, side="right") - in_earlier_rows
        lt -= np.searchsorted(junk_keys, group_keys, side="left") - in_earlier_rows

    neg_lt = lt[group_id]
    neg_eq = (le - lt)[group_id]
    eq_before = None
    if need_stable:
        eq_before = np.zeros(len(p_d), dtype=np.int64)
        for gi in np.flatnonzero(le > lt):  # groups tied with negatives: rare
            r = group_rows[gi]
            eq_mask = dist[r] == group_values[gi]
            if exclude_same_camera:
                eq_mask &= g_cams != q_cams[r]
            cols = np.flatnonzero(eq_mask)
            cols = cols[labels.g_pids[cols] != q_pids[r]]
            members = slice(group_starts[gi], group_ends[gi])
            eq_before[members] = np.searchsorted(cols, p_cols[members])
    return PositiveRanks(count=count, first=first, rows=p_rows, within=within, cols=p_cols,
                         neg_lt=neg_lt, neg_eq=neg_eq, neg_eq_before=eq_before,
                         group_first=group_first, group_size=group_size)


# Speed-only cost model for `_count_at_or_below` (ns on a 2-core x86 box); results are exact
# either way.
_CALL_NS, _PASS_NS_PER_ITEM, _SORT_NS_PER_ITEM = 3000.0, 0.8, 45.0


def _count_at_or_below(vals: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(#vals <= v, #vals < v) for each v of the sorted `values`.

    Few values: one vectorised compare-and-count pass each (no sort at all). Many: sort the
    values once and binary-search.
    """
    m = len(vals)
    if len(values) * (_CALL_NS + _PASS_NS_PER_ITEM * m) < _SORT_NS_PER_ITEM * m:
        le = np.fromiter((np.count_nonzero(vals <= v) for v in values), np.int64, len(values))
        lt = np.fromiter((np.count_nonzero(vals < v) for v in values), np.int64, len(values))
        return le, lt
    ordered = np.sort(vals)
    return (np.searchsorted(ordered, values, side="right").astype(np.int64),
            np.searchsorted(ordered, values, side="left").astype(np.int64))


def negatives_before(pr: PositiveRanks, ties: str) -> np.ndarray:
    """Negatives ranked before each positive under a deterministic policy."""
    if ties == "optimistic":
        return pr.neg_lt
    if ties == "pessimistic":
        return pr.neg_lt + pr.neg_eq
    if ties == "stable":
        return pr.neg_lt + pr.neg_eq_before
    raise ValueError(ties)


# ------------------------------------------------------------------ per-query metrics


def _row_mean(pr: PositiveRanks, values: np.ndarray) -> np.ndarray:
    valid = pr.valid
    return np.bincount(pr.rows, weights=values, minlength=len(pr.count))[valid] / pr.count[valid]


def _harmonic_span(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """sum_{x=lo+1..hi} 1/x, vectorised (digamma differences)."""
    return digamma(hi + 1.0) - digamma(lo + 1.0)


def average_precision(pr: PositiveRanks, convention: str, ties: str) -> np.ndarray:
    """AP of every valid row of the chunk under one convention and tie policy."""
    j = pr.within.astype(np.float64)
    if convention == "sklearn":
        # One step per distinct distance: precision at the end of the positive's group.
        a_pos = pr.group_first + pr.group_size
        step_end = pr.neg_lt + pr.neg_eq + a_pos
        return _row_mean(pr, a_pos / step_end)
    if ties == "expected":
        nb = pr.neg_lt
    else:
        nb = negatives_before(pr, ties)
    rank = nb + j + 1.0
    hits = j + 1.0
    if convention == "non_interpolated":
        per_pos = hits / rank
    else:  # trapezoid: mean of the precision just before and at the positive
        before = np.where(rank > 1, (hits - 1.0) / np.maximum(rank - 1.0, 1.0), 1.0)
        per_pos = 0.5 * (before + hits / rank)
    if ties == "expected":
        tied = pr.neg_eq > 0
        if np.any(tied):
            per_pos = per_pos.copy()
            per_pos[tied] = _expected_precision(pr, tied, convention)
    return _row_mean(pr, per_pos)


def _expected_precision(pr: PositiveRanks, tied: np.ndarray, convention: str) -> np.ndarray:
    """Expected per-positive AP term for positives whose distance some negative shares.

    The positive's group (m positives, ne negatives, same distance) occupies the positions
    a+1..a+g, g = m+ne, each ordering equally likely. At position a+j the expected number of
    hits is A+1+(j-1)(m-1)/(g-1) (A positives before the group), which is linear in j, so the
    mean over j of hits/(a+j) is a digamma difference.
    """
    big_a = pr.group_first[tied].astype(np.float64)
    m = pr.group_size[tied].astype(np.float64)
    g = m + pr.neg_eq[tied]
    a = pr.neg_lt[tied] + big_a
    beta = (m - 1.0) / (g - 1.0)
    alpha = big_a + 1.0 - beta  # expected hits at position j: alpha + beta*j
    at = beta * g + (alpha - beta * a) * _harmonic_span(a, a + g)
    if convention == "non_interpolated":
        return at / g
    # Precision just before position j: (alpha-1+beta*j)/(a+j-1); defined as 1 at rank 1.
    first_rank = a == 0
    a1 = np.maximum(a, 1.0)
    before = beta * g + (alpha - 1.0 - beta * (a1 - 1.0)) * _harmonic_span(a1 - 1.0, a1 - 1.0 + g)
    before_at_top = 1.0 + beta * (g - 1.0) + (alpha - 1.0 + beta) * _harmonic_span(np.zeros_like(g), g - 1.0)
    before = np.where(first_rank, before_at_top, before)
    return 0.5 * (at + before) / g


def inverse_negative_penalty(pr: PositiveRanks, ties: str) -> np.ndarray:
    """INP = #positives / rank of the last positive, for every valid row."""
    valid = pr.valid
    last = (pr.first + pr.count - 1)[valid]
    count = pr.count[valid].astype(np.float64)
    nb = pr.neg_lt[last] if ties == "expected" else negatives_before(pr, ties)[last]
    inp = count / (nb + count)
    if ties == "expected":
        tied = pr.neg_eq[last] > 0
        if np.any(tied):
            idx = last[tied]
            m = pr.group_size[idx]
            ne = pr.neg_eq[idx]
            a = pr.neg_lt[idx] + pr.group_first[idx]
            # The last positive sits at a+J, J in [m, m+ne], P(J=j) = C(j-1,m-1)/C(m+ne,m).
            which, j = concat_ranges(m, ne + 1)
            g = (m + ne)[which]
            mm = m[which]
            log_p = (gammaln(j) - gammaln(mm) - gammaln(j - mm + 1)
                     - gammaln(g + 1) + gammaln(mm + 1) + gammaln(g - mm + 1))
            terms = np.exp(log_p) * count[tied][which] / (a[which] + j)
            inp = inp.copy()
            inp[tied] = np.bincount(which, weights=terms, minlength=len(idx))
    return inp


def spread_over_positions(hist: np.ndarray, pos: np.ndarray, tied: np.ndarray, weight: np.ndarray) -> None:
    """Add `weight`, spread uniformly over positions pos..pos+tied, into `hist` (in place).

    This is where a positive lands among negatives when it ties with `tied` of them and every
    ordering is equally likely: each of the tied+1 slots has the same chance.
    """
    top = len(hist)
    which, slot = concat_ranges(pos, tied + 1)
    keep = slot < top
    np.add.at(hist, slot[keep], (weight / (tied + 1))[which][keep])


def first_match_histogram(pr: PositiveRanks, ties: str, max_rank: int) -> np.ndarray:
    """Sum over valid rows of P(first positive at rank k+1), k < max_rank (standard CMC)."""
    hist = np.zeros(max_rank)
    valid = pr.valid
    head = pr.first[valid]
    if ties != "expected":
        nb = negatives_before(pr, ties)[head]
        nb = nb[nb < max_rank]
        np.add.at(hist, nb, 1.0)
        return hist
    ne = pr.neg_eq[head]
    plain = ne == 0
    nb = pr.neg_lt[head][plain]
    np.add.at(hist, nb[nb < max_rank], 1.0)
    if np.all(plain):
        return hist
    # First group: m positives, ne negatives in random order after `a` negatives.
    # P(first positive at a+i) = C(ne, i-1)/C(g, i-1) * m/(g-i+1), i = 1..ne+1.
    idx = head[~plain]
    a = pr.neg_lt[idx]
    ne = pr.neg_eq[idx]
    m = pr.group_size[idx]
    g = m + ne
    which, i = concat_ranges(np.ones_like(a), np.clip(np.minimum(ne + 1, max_rank - a), 0, None))
    nw, gw, mw = ne[which], g[which], m[which]
    log_prefix = (gammaln(nw + 1) - gammaln(nw - i + 2) - gammaln(gw + 1) + gammaln(gw - i + 2))
    prob = np.exp(log_prefix) * mw / (gw - i + 1)
    np.add.at(hist, a[which] + i - 1, prob)
    return hist


# ---------------------------------------------------------------------- evaluation


CmcFunction = Callable[[np.ndarray, slice, PositiveRanks], np.ndarray]


@dataclass
class _Totals:
    """Per-chunk results gathered into one RankResult."""

    max_rank: int
    hist: np.ndarray = field(init=False)
    ap: list = field(default_factory=list)
    inp: list = field(default_factory=list)
    valid: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.hist = np.zeros(self.max_rank)

    def add(self, start: int, pr: PositiveRanks, hist: np.ndarray, ap: np.ndarray, inp: np.ndarray) -> None:
        self.hist += hist
        self.ap.append(ap)
        self.inp.append(inp)
        self.valid.append(start + np.flatnonzero(pr.valid))

    def result(self, ap_convention: str, ties: str, protocol: str) -> RankResult:
        valid = np.concatenate(self.valid)
        if len(valid) == 0:
            raise StreidError("no valid query: no query identity has a gallery match from another camera; "
                              "check that q_pids/g_pids and the camera ids are right")
        # Rates are fractions: the histogram sums float shares (1/repeats per single-shot draw,
        # expected-tie probabilities) and digamma sums round, which can land a few ulps above 1
        # (1.0000000000000002). Clipping removes only that rounding; the counts never exceed 1.
        ap = np.clip(np.concatenate(self.ap), 0.0, 1.0)
        inp = np.clip(np.concatenate(self.inp), 0.0, 1.0)
        cmc = np.clip(np.cumsum(self.hist) / len(valid), 0.0, 1.0)
        return RankResult(cmc=cmc, mAP=float(min(ap.mean(), 1.0)),
                          mINP=float(min(inp.mean(), 1.0)), num_valid=len(valid), ap=ap, inp=inp,
                          valid_queries=valid, ap_convention=ap_convention, ties=ties,
                          protocol=protocol)


RowSource = Callable[[int, int], np.ndarray]


def evaluate_chunks(source: RowSource, labels: Labels, chunk: int, max_rank: int, ap: str, ties: str,
                    protocol: str = "market1501", cmc: CmcFunction | None = None) -> RankResult:
    """Run the metrics over query chunks; `source(start, stop)` gives the distance rows.

    `cmc`, when given, replaces the standard CMC histogram of a chunk (protocol variants).
    """
    totals = _Totals(max_rank)
    for start, stop in iter_row_chunks(labels.num_query, chunk):
        dist = as_float_rows(source(start, stop), start)
        rows = slice(start, stop)
        pr = rank_positives(dist, rows, labels, need_stable=ties == "stable")
        hist = first_match_histogram(pr, ties, max_rank) if cmc is None else cmc(dist, rows, pr)
        totals.add(start, pr, hist, average_precision(pr, ap, ties), inverse_negative_penalty(pr, ties))
    return totals.result(ap, ties, protocol)


def evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50,
                  ap: str = "non_interpolated", ties: str = DEFAULT_TIES,
                  chunk_size: int | None = None) -> RankResult:
    """CMC / mAP / mINP of a (num_query, num_gallery) distance matrix, Market-1501 rules.

    Same numbers as torchreid's and fast-reid's `evaluate_rank` on tie-free distances, plus
    an explicit AP convention and tie policy (module docstring). `chunk_size` (query rows per
    chunk) defaults to a 256 MB temporaries budget.
    """
    d = check_distmat(distmat)
    check_options(max_rank, ap, ties)
    check_chunk_size(chunk_size)
    labels = check_labels(q_pids, g_pids, q_camids, g_camids, d.shape[0], d.shape[1])
    chunk = chunk_size or rows_per_chunk(labels.num_gallery)
    return evaluate_chunks(lambda s, e: d[s:e], labels, chunk, max_rank, ap, ties)
