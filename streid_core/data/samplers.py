"""Which images go into each training batch (docs/original-system.md §4).

- `PKBatchSampler`: identity-balanced batches of P identities x K images.
- `RandomTripletSampler`: the original `RandomTripletSampler` without videos: one triplet per
  training image as anchor per epoch; (anchor, positive, negative) or, in instance mode,
  (anchor, positive, positive).
- `SparseTemporalTripletSampler`: ST-ReIDNet's sparse-temporal identity sampling: with
  probability inter_rate the positive is taken far in time from the anchor and the negative is
  another dancer of the same video; otherwise the global branch above.
- `TripletBatchSampler`: groups triplets into batches laid out [anchors; positives; negatives],
  the layout the ST trainer splits in thirds.

Every sampler draws an epoch from a NumPy generator seeded with (seed, epoch) only, so setting
the epoch on resume replays it exactly. With num_replicas/rank (DistributedDataParallel) every
rank draws the same global epoch and keeps its own disjoint share of every global batch.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from torch.utils.data import Sampler

from ..errors import StreidError
from .records import Record


class EpochSeeded:
    """Seed, epoch and the DDP share shared by all samplers here."""

    def __init__(self, seed: int, num_replicas: int, rank: int) -> None:
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise StreidError(f"rank {rank} of {num_replicas} replicas is invalid; need 0 <= rank < num_replicas")
        self.seed = seed
        self.epoch = 0
        self.num_replicas = num_replicas
        self.rank = rank

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _generator(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch])


def check_labels(records: Sequence[Record], labels: Mapping[int, int]) -> None:
    for record in records:
        if record.pid not in labels:
            raise StreidError(f"{record.path}: identity {record.pid} has no training label; build the sampler from the training set")


@dataclass(frozen=True)
class _Blocks:
    """Records in a sort order where each identity is one contiguous block of positions."""

    order: np.ndarray  # sorted position -> dataset index
    block: np.ndarray  # sorted position -> identity block number
    block_start: np.ndarray  # block -> first position
    block_size: np.ndarray  # block -> number of images

    @classmethod
    def from_order(cls, records: Sequence[Record], order: np.ndarray) -> _Blocks:
        pids = np.array([records[i].pid for i in order])
        starts = np.flatnonzero(np.r_[True, pids[1:] != pids[:-1]])
        if len(np.unique(pids[starts])) != len(starts):
            raise ValueError("sort order does not keep identities contiguous")
        sizes = np.diff(np.r_[starts, len(order)])
        block = np.repeat(np.arange(len(starts)), sizes)
        return cls(order=np.asarray(order), block=block, block_start=starts, block_size=sizes)

    @property
    def num_images(self) -> int:
        return len(self.order)


def temporal_order(records: Sequence[Record]) -> np.ndarray:
    """Dataset indices sorted by (pid, frame, path): a stable order in which the distance between
    two positions of one identity follows the time between the frames."""
    return np.array(sorted(range(len(records)), key=lambda i: (records[i].pid, records[i].frame, records[i].path)), dtype=np.int64)


def release_order(records: Sequence[Record], labels: Mapping[int, int]) -> np.ndarray:
    """The release's order: np.argsort (default quicksort, not stable) of the relabelled pids
    written as strings, as `np.asarray(data_source)[:, 1]` holds them. It groups identities but
    scrambles time inside each group (docs/original-system.md §4, quirk 1)."""
    return np.argsort(np.array([str(labels[r.pid]) for r in records]))


def _pick(u: np.ndarray, start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Uniform integer in [start, start + count) from u ~ U[0, 1)."""
    return start + np.minimum((u * count).astype(np.int64), count - 1)


def _pick_outside(u: np.ndarray, start: np.ndarray, size: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Uniform over [start, start + size) minus the window [lo, hi] (inclusive, inside the range):
    draw among the size - width remaining slots and jump over the window. Needs size > width."""
    width = hi - lo + 1
    pick = _pick(u, start, size - width)
    return pick + (pick >= lo) * width


def _global_positive(u: np.ndarray, blocks: _Blocks, pos: np.ndarray) -> np.ndarray:
    """Another image of the anchor's identity (the anchor itself for a single-image identity)."""
    start = blocks.block_start[blocks.block[pos]]
    size = blocks.block_size[blocks.block[pos]]
    return np.where(size > 1, _pick_outside(u, start, np.maximum(size, 2), pos, pos), pos)


def _global_negative(u: np.ndarray, blocks: _Blocks, pos: np.ndarray) -> np.ndarray:
    """An image of any other identity, uniform over images (so identities weigh by image count)."""
    start = blocks.block_start[blocks.block[pos]]
    size = blocks.block_size[blocks.block[pos]]
    return _pick_outside(u, np.zeros_like(start), np.full_like(start, blocks.num_images), start, start + size - 1)


@dataclass(frozen=True)
class TripletDraw:
    """One epoch of triplets as dataset indices, in sampling order, for all ranks together.
    `sparse_temporal[i]` tells whether triplet i came from the ST branch."""

    anchors: np.ndarray
    positives: np.ndarray
    negatives: np.ndarray
    sparse_temporal: np.ndarray

    def __len__(self) -> int:
        return len(self.anchors)


class _TripletSampler(EpochSeeded, Sampler[tuple[int, int, int]]):
    """One triplet per training image per epoch; this rank keeps every num_replicas-th triplet
    starting at its rank (the last len % num_replicas triplets are dropped so ranks stay even)."""

    def __init__(self, records: Sequence[Record], labels: Mapping[int, int], order: np.ndarray,
                 seed: int, num_replicas: int, rank: int) -> None:
        EpochSeeded.__init__(self, seed, num_replicas, rank)
        check_labels(records, labels)
        self.records = records
        self.blocks = _Blocks.from_order(records, order)
        if len(self.blocks.block_start) < 2:
            raise StreidError("triplet sampling needs at least two identities in the training set")

    def draw_epoch(self) -> TripletDraw:
        raise NotImplementedError

    def __len__(self) -> int:
        return self.blocks.num_images // self.num_replicas

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        draw = self.draw_epoch()
        end = len(self) * self.num_replicas
        mine = slice(self.rank, end, self.num_replicas)
        yield from zip(draw.anchors[mine].tolist(), draw.positives[mine].tolist(), draw.negatives[mine].tolist())


class RandomTripletSampler(_TripletSampler):
    """Global identity sampling. inst_mode=False: (anchor, another image of its identity, an
    image of another identity). inst_mode=True (baseline --inst-mode): (anchor, two more images
    of its identity drawn with replacement, excluding the anchor); negatives then come from the
    rest of the batch."""

    def __init__(self, records: Sequence[Record], labels: Mapping[int, int], inst_mode: bool = False,
                 seed: int = 0, num_replicas: int = 1, rank: int = 0) -> None:
        super().__init__(records, labels, temporal_order(records), seed, num_replicas, rank)
        self.inst_mode = inst_mode

    def draw_epoch(self) -> TripletDraw:
        rng = self._generator()
        n = self.blocks.num_images
        pos = rng.permutation(n)
        u = rng.random((2, n))
        second = _global_positive(u[0], self.blocks, pos)
        third = _global_positive(u[1], self.blocks, pos) if self.inst_mode else _global_negative(u[1], self.blocks, pos)
        order = self.blocks.order
        return TripletDraw(order[pos], order[second], order[third], np.zeros(n, dtype=bool))


class SparseTemporalTripletSampler(_TripletSampler):
    """ST-ReIDNet's sampling (paper: sparse temporal identity sampling).

    With probability inter_rate (the ST branch):
      - positive: uniform over the anchor identity's images outside the window of +-skip
        positions around the anchor, in (pid, frame, path) order, i.e. far in time;
        skip = skip_frame, or (n - 1) // 5 when the identity has n < 2 * skip_frame + 1 images;
      - negative: an identity drawn uniformly among the OTHER identities of the anchor's video
        (Record.video), then an image uniformly within it.
    Otherwise, and for anchors whose video holds no other training identity (or no video is
    known), the global branch of RandomTripletSampler. If the window leaves no image (an identity
    of exactly 2 * skip + 1 images, anchor in the middle) the positive is drawn globally; the
    release crashes there.

    release_compat=True reproduces the release where it changes published numbers:
      - order: `release_order` (unstable string argsort), so the window is only loosely temporal;
      - neighbours: the release builds {global pid: other global pids of its video} from
        video.json, looks it up with the anchor's relabelled pid r, and reads each neighbour g
        back as a relabelled pid, so the negative identity is the one whose LABEL is a global
        pid sharing a video with global pid r (≈58 % truly same-video on DanceReID); neighbours
        that are no label (the release would crash) are dropped;
      - branch rate: the release picks from int(100 r) True and int(100 (1 - r)) False entries.
    `videos` (video name -> global pids, LoadedDataset.videos) is the video.json the release
    reads; without it the map is built from the records, which is the same for DanceReID.
    """

    def __init__(self, records: Sequence[Record], labels: Mapping[int, int], inter_rate: float = 0.7,
                 skip_frame: int = 10, videos: Mapping[str, Sequence[int]] | None = None,
                 release_compat: bool = False, seed: int = 0, num_replicas: int = 1, rank: int = 0) -> None:
        if not 0.0 <= inter_rate <= 1.0:
            raise StreidError(f"inter_rate {inter_rate} is outside [0, 1]; it is the probability of the sparse-temporal branch")
        if skip_frame < 0:
            raise StreidError(f"skip_frame {skip_frame} is negative; use a half-window of 0 or more samples")
        order = release_order(records, labels) if release_compat else temporal_order(records)
        super().__init__(records, labels, order, seed, num_replicas, rank)
        self.inter_rate = inter_rate
        self.skip_frame = skip_frame
        self.release_compat = release_compat
        if release_compat:
            self.branch_rate = _release_branch_rate(inter_rate)
            self._key, self._neighbours, self._counts = self._release_neighbours(labels, videos)
        else:
            self.branch_rate = inter_rate
            self._key, self._neighbours, self._counts = self._video_neighbours()

    def _video_neighbours(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per sorted position, a key (its (video, identity) pair) and per key the blocks of the
        other identities seen in that video."""
        blocks_in_video: dict[str, set[int]] = defaultdict(set)
        videos = [self.records[i].video for i in self.blocks.order]
        for video, block in zip(videos, self.blocks.block.tolist()):
            if video:
                blocks_in_video[video].add(block)
        keys: dict[tuple[str, int], int] = {}
        key = np.empty(self.blocks.num_images, dtype=np.int64)
        lists: list[list[int]] = []
        for p, (video, block) in enumerate(zip(videos, self.blocks.block.tolist())):
            k = keys.get((video, block))
            if k is None:
                k = keys[(video, block)] = len(lists)
                lists.append(sorted(blocks_in_video.get(video, set()) - {block}))
            key[p] = k
        return (key, *_pad(lists))

    def _release_neighbours(self, labels: Mapping[int, int],
                            videos: Mapping[str, Sequence[int]] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if videos is None:
            found: dict[str, set[int]] = defaultdict(set)
            for record in self.records:
                if record.video:
                    found[record.video].add(record.pid)
            videos = {name: sorted(pids) for name, pids in found.items()}
        neighbour_map: dict[int, list[int]] = defaultdict(list)  # global pid -> other global pids
        for pids in videos.values():
            for pid in pids:
                others = list(pids)
                others.remove(pid)
                neighbour_map[pid].extend(others)
        block_of_label = {labels[self.records[self.blocks.order[s]].pid]: b for b, s in enumerate(self.blocks.block_start)}
        label_of_block = {b: lab for lab, b in block_of_label.items()}
        lists = [
            # the anchor's LABEL looked up as a global pid; each neighbour read back as a label
            [block_of_label[g] for g in neighbour_map.get(label_of_block[b], []) if g in block_of_label]
            for b in range(len(self.blocks.block_start))
        ]
        return (self.blocks.block.copy(), *_pad(lists))

    def draw_epoch(self) -> TripletDraw:
        rng = self._generator()
        blocks = self.blocks
        n = blocks.num_images
        pos = rng.permutation(n)
        u = rng.random((6, n))
        block = blocks.block[pos]
        start, size = blocks.block_start[block], blocks.block_size[block]

        skip = np.where(size - 1 < 2 * self.skip_frame, (size - 1) // 5, self.skip_frame)
        lo = np.maximum(pos - skip, start)
        hi = np.minimum(pos + skip, start + size - 1)
        window_leaves_some = size > hi - lo + 1
        far = _pick_outside(u[0], start, np.where(window_leaves_some, size, hi - lo + 2), lo, hi)
        global_positive = _global_positive(u[1], blocks, pos)

        counts = self._counts[self._key[pos]]
        has_neighbour = counts > 0
        column = _pick(u[2], np.zeros(n, dtype=np.int64), np.maximum(counts, 1))
        neg_block = self._neighbours[self._key[pos], column]
        same_video_negative = _pick(u[3], blocks.block_start[neg_block], blocks.block_size[neg_block])

        st = (u[4] < self.branch_rate) & has_neighbour
        positive = np.where(st & window_leaves_some, far, global_positive)
        negative = np.where(st, same_video_negative, _global_negative(u[5], blocks, pos))
        order = blocks.order
        return TripletDraw(order[pos], order[positive], order[negative], st)


def _release_branch_rate(inter_rate: float) -> float:
    """random.choice over int(100 r) True and int(100 (1 - r)) False entries (0.9 -> 90/99)."""
    yes, no = int(100 * inter_rate), int(100 * (1 - inter_rate))
    return yes / (yes + no)


def _pad(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Ragged lists -> (padded array, lengths) so a whole epoch can index them at once."""
    counts = np.array([len(x) for x in lists], dtype=np.int64)
    padded = np.zeros((len(lists), max(1, int(counts.max(initial=0)))), dtype=np.int64)
    for i, x in enumerate(lists):
        padded[i, : len(x)] = x
    return padded, counts


class TripletBatchSampler(Sampler[list[int]]):
    """Batches of `batch_size` triplets (global, over all ranks) as one list of 3b dataset
    indices [anchors; positives; negatives]. Each rank gets batch_size / num_replicas triplets of
    every global batch, and the ranks' parts of one global batch are disjoint and cover it."""

    def __init__(self, sampler: _TripletSampler, batch_size: int, drop_last: bool = False) -> None:
        if batch_size < 1 or batch_size % sampler.num_replicas:
            raise StreidError(
                f"batch size {batch_size} cannot be split over {sampler.num_replicas} processes; use a multiple of it"
            )
        self.sampler = sampler
        self.batch_size = batch_size
        self.per_rank = batch_size // sampler.num_replicas
        self.drop_last = drop_last

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.per_rank if self.drop_last else math.ceil(n / self.per_rank)

    def __iter__(self) -> Iterator[list[int]]:
        triplets = list(self.sampler)
        for b in range(len(self)):
            chunk = triplets[b * self.per_rank : (b + 1) * self.per_rank]
            yield [t[0] for t in chunk] + [t[1] for t in chunk] + [t[2] for t in chunk]


class PKBatchSampler(EpochSeeded, Sampler[list[int]]):
    """Identity-balanced batches: `num_identities` (P) identities x `num_instances` (K) images.

    Each epoch visits every identity once, in random order; the last batch is completed with
    identities from the start of that order. An identity with fewer than K images shows each
    of them as evenly as K allows.
    Each rank gets P / num_replicas whole identities of every global batch, so batch-hard mining
    on one rank always has positives.
    """

    def __init__(self, records: Sequence[Record], labels: Mapping[int, int], num_identities: int,
                 num_instances: int, seed: int = 0, num_replicas: int = 1, rank: int = 0) -> None:
        super().__init__(seed, num_replicas, rank)
        check_labels(records, labels)
        self.blocks = _Blocks.from_order(records, temporal_order(records))
        count = len(self.blocks.block_start)
        if num_instances < 1 or num_identities < 1 or num_identities > count:
            raise StreidError(
                f"cannot draw {num_identities} identities x {num_instances} images from {count} identities; "
                "lower the identities per batch"
            )
        if num_identities % num_replicas:
            raise StreidError(
                f"{num_identities} identities per batch cannot be split over {num_replicas} processes; use a multiple of it"
            )
        self.num_identities = num_identities
        self.num_instances = num_instances

    def __len__(self) -> int:
        return math.ceil(len(self.blocks.block_start) / self.num_identities)

    def __iter__(self) -> Iterator[list[int]]:
        rng = self._generator()
        count = len(self.blocks.block_start)
        identities = rng.permutation(count)
        identities = np.r_[identities, identities[: len(self) * self.num_identities - count]]
        per_rank = self.num_identities // self.num_replicas
        k = self.num_instances
        picks = []
        for b in identities.tolist():
            size = int(self.blocks.block_size[b])
            # K distinct images, or with fewer than K every image once, cycling through them again
            picks.append(self.blocks.block_start[b] + np.resize(rng.permutation(size), k))
        for first in range(0, len(identities), self.num_identities):
            mine = picks[first + self.rank * per_rank : first + (self.rank + 1) * per_rank]
            yield self.blocks.order[np.concatenate(mine)].tolist()
