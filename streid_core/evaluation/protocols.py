"""Scoring a distance matrix under an evaluation protocol (open-reid's `cmc` flags).

The protocols themselves (flags, presets, `resolve_protocol`) are defined in `data.protocols`.

Fixed relative to open-reid (none of these changes a published number):
  * The sampling is seeded (`seed`) and independent of chunking: query i's draws in repeat
    r come from a fixed position of one PCG64 stream. open-reid (and torchreid/fast-reid's
    cuhk03 mode) draw from the global NumPy state, so their CMC is not reproducible.
  * With single_gallery_shot AND first_match_break, open-reid adds 1 per repeat instead of
    1/repeats, so its curve climbs to `repeats`; here every repeat weighs 1/repeats. No
    preset uses that combination.
  * Ties follow the explicit policy of `metrics` (open-reid: whatever np.argsort returns).

torchreid's and fast-reid's `use_metric_cuhk03` is yet another variant (single shot on the
junk-removed list, no camera separation, AP on the full list, unseeded): it is the flag form
"single_gallery_shot+first_match_break".
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..data.protocols import Protocol, resolve_protocol
from ..errors import StreidError
from .metrics import (DEFAULT_TIES, Labels, PositiveRanks, RankResult, RowSource, check_chunk_size, check_distmat,
                      check_labels, check_options, evaluate_chunks, first_match_histogram,
                      negatives_before, rank_positives, rows_per_chunk, spread_over_positions)


def allshots_histogram(pr: PositiveRanks, ties: str, max_rank: int) -> np.ndarray:
    """open-reid's CMC without first_match_break: each positive adds 1/#positives at its
    position among the negatives (0-based: how many negatives precede it)."""
    hist = np.zeros(max_rank)
    weight = 1.0 / pr.count[pr.rows]
    if ties == "expected":
        spread_over_positions(hist, pr.neg_lt, pr.neg_eq, weight)
    else:
        nb = negatives_before(pr, ties)
        keep = nb < max_rank
        np.add.at(hist, nb[keep], weight[keep])
    return hist


class SingleShotSampler:
    """Draws one gallery item per identity for each query, open-reid's single_gallery_shot.

    The gallery is sorted by (pid, camera); the items a query may not draw for an identity
    (same camera with separate_camera_set, else only its own junk) are one contiguous block,
    so a uniform draw among the rest is an offset that skips that block.
    """

    def __init__(self, labels: Labels, separate_camera_set: bool, seed: int, repeats: int) -> None:
        self.labels, self.separate, self.seed, self.repeats = labels, separate_camera_set, seed, repeats
        self.pids, g_code = np.unique(labels.g_pids, return_inverse=True)
        cams = np.unique(np.concatenate((labels.g_cams, labels.q_cams)))
        self.num_cams = len(cams)
        g_cam = np.searchsorted(cams, labels.g_cams)
        self.q_cam = np.searchsorted(cams, labels.q_cams)
        self.order = np.lexsort((np.arange(labels.num_gallery), g_cam, g_code))
        self.keys = g_code[self.order] * self.num_cams + g_cam[self.order]
        sorted_code = g_code[self.order]
        ids = np.arange(len(self.pids))
        self.id_start = np.searchsorted(sorted_code, ids, side="left")
        self.id_stop = np.searchsorted(sorted_code, ids, side="right")
        code = np.minimum(np.searchsorted(self.pids, labels.q_pids), len(self.pids) - 1)
        self.q_code = np.where(self.pids[code] == labels.q_pids, code, -1)

    def _uniforms(self, repeat: int, start: int, stop: int) -> np.ndarray:
        # Query i's draws of repeat r sit at a fixed offset of one stream, whatever the chunking.
        n_ids = len(self.pids)
        bitgen = np.random.PCG64(self.seed)
        bitgen.advance((repeat * self.labels.num_query + start) * n_ids)
        return np.random.Generator(bitgen).random((stop - start, n_ids))

    def histogram(self, dist: np.ndarray, rows: slice, pr: PositiveRanks, ties: str, max_rank: int) -> np.ndarray:
        hist = np.zeros(max_rank)
        local = np.flatnonzero(pr.valid)
        n = len(local)
        if n == 0:
            return hist
        q = rows.start + local
        own, q_cam = self.q_code[q], self.q_cam[q]
        n_ids = len(self.pids)
        # [lo, hi): the block of each identity's images the query may not draw
        if self.separate:
            block = np.arange(n_ids)[None, :] * self.num_cams + q_cam[:, None]
            lo, hi = np.searchsorted(self.keys, block, "left"), np.searchsorted(self.keys, block, "right")
        else:  # only its own junk: same pid, same camera
            lo = np.broadcast_to(self.id_start, (n, n_ids)).copy()
            hi = lo.copy()
            block = own * self.num_cams + q_cam
            lo[np.arange(n), own] = np.searchsorted(self.keys, block, "left")
            hi[np.arange(n), own] = np.searchsorted(self.keys, block, "right")
        skip = hi - lo
        size = (self.id_stop - self.id_start)[None, :] - skip
        negative = size > 0
        negative[np.arange(n), own] = False
        arange_n = np.arange(n)
        for repeat in range(self.repeats):
            u = self._uniforms(repeat, rows.start, rows.stop)[local]
            pick = self.id_start[None, :] + np.floor(u * size).astype(np.int64)
            pick += np.where(pick >= lo, skip, 0)
            gallery = self.order[np.minimum(pick, self.labels.num_gallery - 1)]
            d = dist[local[:, None], gallery]
            d_pos, g_pos = d[arange_n, own], gallery[arange_n, own]
            lt = (negative & (d < d_pos[:, None])).sum(axis=1)
            eq = negative & (d == d_pos[:, None])
            if ties == "expected":
                spread_over_positions(hist, lt, eq.sum(axis=1), np.full(n, 1.0 / self.repeats))
                continue
            if ties == "optimistic":
                before = lt
            elif ties == "pessimistic":
                before = lt + eq.sum(axis=1)
            else:  # stable: the gallery order breaks ties
                before = lt + (eq & (gallery < g_pos[:, None])).sum(axis=1)
            keep = before < max_rank
            np.add.at(hist, before[keep], 1.0 / self.repeats)
        return hist


def run_protocol(source: RowSource, labels: Labels, protocol: Protocol, max_rank: int, ap: str, ties: str,
                 seed: int, repeats: int, chunk_size: int | None) -> RankResult:
    """Evaluate a protocol over query chunks of distances from `source(start, stop)`."""
    if protocol.same_sets and not (np.array_equal(labels.q_pids, labels.g_pids)
                                   and np.array_equal(labels.q_cams, labels.g_cams)):
        raise StreidError(f"protocol {protocol.name!r} needs query set = gallery set (same pids and "
                          "frame ids in the same order); pass the test set as both")
    if protocol.single_gallery_shot:
        if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
            raise StreidError(f"repeats must be a positive integer, got {repeats!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise StreidError(f"seed must be a non-negative integer, got {seed!r}")
    sampler = (SingleShotSampler(labels, protocol.separate_camera_set, seed, int(repeats))
               if protocol.single_gallery_shot else None)
    num_ids = len(sampler.pids) if sampler else 0
    chunk = chunk_size or rows_per_chunk(labels.num_gallery, num_ids)
    need_stable = ties == "stable"

    def cmc(dist: np.ndarray, rows: slice, pr: PositiveRanks) -> np.ndarray:
        if sampler is not None:
            return sampler.histogram(dist, rows, pr, ties, max_rank)
        if protocol.separate_camera_set:
            pr = rank_positives(dist, rows, labels, need_stable, exclude_same_camera=True)
        if protocol.first_match_break:
            return first_match_histogram(pr, ties, max_rank)
        return allshots_histogram(pr, ties, max_rank)

    standard = not (protocol.single_gallery_shot or protocol.separate_camera_set) and protocol.first_match_break
    return evaluate_chunks(source, labels, chunk, max_rank, ap, ties, protocol.name,
                           cmc=None if standard else cmc)


def evaluate_protocol(distmat, q_pids, g_pids, q_camids, g_camids, protocol: str | Protocol | Mapping,
                      max_rank: int = 50, ap: str | None = None, seed: int = 0, repeats: int = 10,
                      ties: str = DEFAULT_TIES, chunk_size: int | None = None) -> RankResult:
    """Evaluate a distance matrix under a named protocol (`data.protocols.PROTOCOLS`) or open-reid flags.

    `ap=None` uses the protocol's convention ("sklearn" for the open-reid presets).
    `seed` and `repeats` drive single_gallery_shot sampling.
    """
    d = check_distmat(distmat)
    proto = resolve_protocol(protocol)
    ap = ap or proto.ap
    check_options(max_rank, ap, ties)
    check_chunk_size(chunk_size)
    labels = check_labels(q_pids, g_pids, q_camids, g_camids, d.shape[0], d.shape[1])
    return run_protocol(lambda s, e: d[s:e], labels, proto, max_rank, ap, ties, seed, repeats, chunk_size)
