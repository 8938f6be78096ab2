"""Pair batches for the Siamese baseline (`--emb-type Siamese`, the original's RandomPairSampler).

Per epoch every training image is an anchor once, in random order; each anchor gives one
positive pair (another image of its identity) followed by `np_ratio` negative pairs (images of
other identities, uniform over images). Batches hold `batch_size` consecutive pairs laid out
[first images; second images], the layout the encoder's Siamese head pairs up.

Like the samplers in `samplers.py`, an epoch is drawn from (seed, epoch) only, so
a resumed run replays it; with num_replicas/rank each process takes a disjoint share of every
global batch. Incomplete last batches are dropped (a batch of one pair has nothing to mine).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
from torch.utils.data import Sampler

from ..errors import StreidError
from .records import Record
from .samplers import EpochSeeded, check_labels


class PairBatchSampler(EpochSeeded, Sampler[list[int]]):
    def __init__(self, records: Sequence[Record], labels: Mapping[int, int], batch_size: int, np_ratio: int = 3,
                 seed: int = 0, num_replicas: int = 1, rank: int = 0) -> None:
        EpochSeeded.__init__(self, seed, num_replicas, rank)
        if batch_size < 1 or batch_size % num_replicas:
            raise StreidError(f"batch size {batch_size} cannot be split over {num_replicas} processes; use a multiple of it")
        if np_ratio < 1:
            raise StreidError(f"np_ratio {np_ratio}: need at least one negative pair per positive pair")
        check_labels(records, labels)
        pids = np.array([labels[r.pid] for r in records], dtype=np.int64)
        if len(np.unique(pids)) < 2:
            raise StreidError("pair sampling needs at least two identities in the training set")
        # images grouped by identity: order[start[k]:start[k] + size[k]] are identity k's images
        self.order = np.argsort(pids, kind="stable")
        identities, self.start, self.size = np.unique(pids[self.order], return_index=True, return_counts=True)
        self.identity = np.searchsorted(identities, pids)  # image -> identity block
        self.batch_size = batch_size
        self.np_ratio = np_ratio

    @property
    def num_pairs(self) -> int:
        return len(self.order) * (1 + self.np_ratio)

    def __len__(self) -> int:
        return self.num_pairs // self.batch_size

    def draw_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(first, second) dataset indices of all pairs of the epoch, in order."""
        rng = self._generator()
        n = len(self.order)
        anchors = rng.permutation(n)
        block = self.identity[anchors]
        start, size = self.start[block], self.size[block]
        # positive: another image of the block (the anchor itself when it is alone)
        position = np.empty(n, dtype=np.int64)
        position[self.order] = np.arange(n)
        anchor_pos = position[anchors]
        pick = start + np.minimum((rng.random(n) * np.maximum(size - 1, 1)).astype(np.int64), np.maximum(size - 2, 0))
        pick += (pick >= anchor_pos) & (size > 1)
        positive = self.order[np.where(size > 1, pick, anchor_pos)]
        # negatives: uniform over the images outside the anchor's block
        u = rng.random((n, self.np_ratio))
        outside = n - size
        neg = np.minimum((u * outside[:, None]).astype(np.int64), (outside - 1)[:, None])
        neg += (neg >= start[:, None]) * size[:, None]
        negatives = self.order[neg]
        first = np.repeat(anchors, 1 + self.np_ratio)
        second = np.concatenate([positive[:, None], negatives], axis=1).reshape(-1)
        return first, second

    def __iter__(self) -> Iterator[list[int]]:
        first, second = self.draw_pairs()
        per_rank = self.batch_size // self.num_replicas
        for b in range(len(self)):
            mine = slice(b * self.batch_size + self.rank * per_rank, b * self.batch_size + (self.rank + 1) * per_rank)
            yield first[mine].tolist() + second[mine].tolist()
