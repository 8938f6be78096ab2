"""Sampler statistics on a generated dance-like record list."""
import math
from collections import Counter

import numpy as np
import pytest

from streid_core.data.records import Record
from streid_core.data.samplers import (
    PKBatchSampler,
    RandomTripletSampler,
    SparseTemporalTripletSampler,
    TripletBatchSampler,
    release_order,
    temporal_order,
)
from streid_core.errors import StreidError

SKIP = 4
# video -> {pid: number of images}. "solo" holds one identity (no same-video negative exists);
# pid 31 has 2*SKIP+1 images (a middle anchor's window covers everything); pid 32 has fewer than
# 2*SKIP+1, so its window shrinks to (n-1)//5 = 1.
VIDEOS = {
    "alpha": {10: 40, 11: 25, 12: 33, 13: 18},
    "beta": {20: 30, 21: 22, 22: 27},
    "gamma": {30: 24, 31: 2 * SKIP + 1, 32: 7},
    "solo": {40: 20},
}


def make_records(seed: int = 0) -> list[Record]:
    """Frames every 5 raw frames; file names random so name order is not time order; shuffled."""
    rng = np.random.default_rng(seed)
    records = []
    for video, ids in VIDEOS.items():
        for pid, n in ids.items():
            for k in range(n):
                name = f"{rng.integers(1 << 30):08x}.jpg"
                records.append(Record(name, pid, camid=5 * k, frame=5 * k, video=video))
    return [records[i] for i in rng.permutation(len(records))]


RECORDS = make_records()
LABELS = {pid: i for i, pid in enumerate(sorted({r.pid for r in RECORDS}))}
PID = np.array([r.pid for r in RECORDS])
VIDEO = np.array([r.video for r in RECORDS])


def temporal_rank(records: list[Record], order: np.ndarray) -> np.ndarray:
    """Dataset index -> position among its identity's images in `order`."""
    rank = np.empty(len(records), dtype=np.int64)
    seen: Counter = Counter()
    for i in order:
        rank[i] = seen[records[i].pid]
        seen[records[i].pid] += 1
    return rank


def window(n: int) -> int:
    # docs/original-system.md §4: skip = skip_frame, or (n - 1) // 5 when n < 2 * skip_frame + 1
    return (n - 1) // 5 if n - 1 < 2 * SKIP else SKIP


def test_sparse_temporal_positives_lie_outside_the_window_in_time_order():
    sampler = SparseTemporalTripletSampler(RECORDS, LABELS, inter_rate=0.7, skip_frame=SKIP, seed=1)
    rank = temporal_rank(RECORDS, temporal_order(RECORDS))
    size = Counter(PID.tolist())
    # time order means rank follows the frame number
    assert all(rank[i] == RECORDS[i].frame // 5 for i in range(len(RECORDS)))
    checked = 0
    for epoch in range(3):
        sampler.set_epoch(epoch)
        d = sampler.draw_epoch()
        assert (PID[d.positives] == PID[d.anchors]).all() and (d.positives != d.anchors).all()
        st = d.sparse_temporal
        gap = np.abs(rank[d.positives] - rank[d.anchors])
        skip = np.array([window(size[p]) for p in PID[d.anchors]])
        # pid 31's middle anchor has no image outside its window: it falls back to any other image
        middle = (PID[d.anchors] == 31) & (rank[d.anchors] == SKIP)
        assert (gap[st & ~middle] > skip[st & ~middle]).all()
        checked += int((st & ~middle).sum())
        assert (skip[PID[d.anchors] == 32] == 1).all()
    assert checked > 300


def test_sparse_temporal_negatives_are_other_dancers_of_the_same_video():
    sampler = SparseTemporalTripletSampler(RECORDS, LABELS, inter_rate=0.7, skip_frame=SKIP, seed=2)
    d = sampler.draw_epoch()
    st = d.sparse_temporal
    assert (VIDEO[d.negatives[st]] == VIDEO[d.anchors[st]]).all()
    assert (PID[d.negatives] != PID[d.anchors]).all()
    # every same-video partner of a well-populated video shows up
    alpha = st & (PID[d.anchors] == 10)
    assert set(PID[d.negatives[alpha]].tolist()) == {11, 12, 13}
    # the solo dancer never takes the ST branch: no other identity shares its video
    assert not st[PID[d.anchors] == 40].any()


def test_branch_rate_matches_inter_rate():
    rate = 0.7
    sampler = SparseTemporalTripletSampler(RECORDS, LABELS, inter_rate=rate, skip_frame=SKIP, seed=3)
    hits = trials = 0
    for epoch in range(10):
        sampler.set_epoch(epoch)
        d = sampler.draw_epoch()
        eligible = PID[d.anchors] != 40
        hits += int(d.sparse_temporal[eligible].sum())
        trials += int(eligible.sum())
    # binomial: 4.5 standard deviations
    assert abs(hits / trials - rate) < 4.5 * math.sqrt(rate * (1 - rate) / trials)


def test_every_image_is_an_anchor_once_per_epoch():
    for sampler in (
        SparseTemporalTripletSampler(RECORDS, LABELS, skip_frame=SKIP, seed=4),
        RandomTripletSampler(RECORDS, LABELS, seed=4),
    ):
        d = sampler.draw_epoch()
        assert sorted(d.anchors.tolist()) == list(range(len(RECORDS)))
        assert set(PID[d.anchors].tolist()) == set(LABELS)


def test_global_and_instance_triplets():
    d = RandomTripletSampler(RECORDS, LABELS, seed=5).draw_epoch()
    assert (PID[d.positives] == PID[d.anchors]).all() and (d.positives != d.anchors).all()
    assert (PID[d.negatives] != PID[d.anchors]).all()
    assert not d.sparse_temporal.any()
    d = RandomTripletSampler(RECORDS, LABELS, inst_mode=True, seed=5).draw_epoch()
    for second in (d.positives, d.negatives):
        assert (PID[second] == PID[d.anchors]).all() and (second != d.anchors).all()
    assert (d.positives == d.negatives).any()  # drawn with replacement


def test_no_video_information_means_global_sampling():
    plain = [Record(r.path, r.pid, r.camid, r.frame) for r in RECORDS]
    d = SparseTemporalTripletSampler(plain, LABELS, inter_rate=1.0, skip_frame=SKIP).draw_epoch()
    assert not d.sparse_temporal.any()
    assert (PID[d.negatives] != PID[d.anchors]).all()


def test_same_seed_and_epoch_replay_exactly():
    a = SparseTemporalTripletSampler(RECORDS, LABELS, skip_frame=SKIP, seed=9)
    b = SparseTemporalTripletSampler(RECORDS, LABELS, skip_frame=SKIP, seed=9)
    a.set_epoch(3)
    b.set_epoch(3)
    assert list(a) == list(b)
    b.set_epoch(4)
    assert list(a) != list(b)
    pk1 = PKBatchSampler(RECORDS, LABELS, 4, 3, seed=9)
    pk2 = PKBatchSampler(RECORDS, LABELS, 4, 3, seed=9)
    pk1.set_epoch(2)
    pk2.set_epoch(2)
    assert list(pk1) == list(pk2)


def test_batches_are_laid_out_anchors_positives_negatives():
    sampler = SparseTemporalTripletSampler(RECORDS, LABELS, skip_frame=SKIP, seed=6)
    batches = list(TripletBatchSampler(sampler, batch_size=8))
    assert len(batches) == math.ceil(len(RECORDS) / 8)
    d = sampler.draw_epoch()
    first = batches[0]
    assert first == d.anchors[:8].tolist() + d.positives[:8].tolist() + d.negatives[:8].tolist()
    for batch in batches:
        b = len(batch) // 3
        a, p, n = PID[batch[:b]], PID[batch[b : 2 * b]], PID[batch[2 * b :]]
        assert (a == p).all() and (a != n).all()


@pytest.mark.parametrize("replicas", [2, 3])
def test_ddp_ranks_split_every_global_batch(replicas):
    batch = 6
    whole = TripletBatchSampler(SparseTemporalTripletSampler(RECORDS, LABELS, skip_frame=SKIP, seed=7), batch)
    ranks = [
        TripletBatchSampler(SparseTemporalTripletSampler(RECORDS, LABELS, skip_frame=SKIP, seed=7,
                                                         num_replicas=replicas, rank=r), batch)
        for r in range(replicas)
    ]
    for s in [whole, *ranks]:
        s.set_epoch(1)
    usable = (len(RECORDS) // replicas) * replicas  # the tail that cannot be shared evenly is dropped
    global_batches = [g for g in whole]
    per_rank = [list(s) for s in ranks]
    assert len({len(p) for p in per_rank}) == 1
    covered = 0
    for k, parts in enumerate(zip(*per_rank)):
        triplets = [set(zip(*(np.reshape(part, (3, -1)).tolist()))) for part in parts]
        union = set().union(*triplets)
        assert sum(len(t) for t in triplets) == len(union)  # disjoint
        b = len(global_batches[k]) // 3
        expected = set(zip(*np.reshape(global_batches[k], (3, b)).tolist()))
        assert union <= expected
        covered += len(union)
        if (k + 1) * batch <= usable:
            assert union == expected  # covers the whole global batch
    assert covered == usable


def test_pk_batches_and_ddp_split():
    p, k = 4, 3
    whole = PKBatchSampler(RECORDS, LABELS, p, k, seed=8)
    batches = list(whole)
    assert len(batches) == math.ceil(len(LABELS) / p) == len(whole)
    visited = set()
    for batch in batches:
        counts = Counter(PID[batch].tolist())
        assert len(counts) == p and set(counts.values()) == {k}
        visited |= set(counts)
    assert visited == set(LABELS)  # every identity every epoch
    ranks = [list(PKBatchSampler(RECORDS, LABELS, p, k, seed=8, num_replicas=2, rank=r)) for r in range(2)]
    for g, a, b in zip(batches, *ranks):
        assert sorted(a + b) == sorted(g)
        assert not set(PID[a].tolist()) & set(PID[b].tolist())  # whole identities per rank
        assert len(a) == len(b) == p // 2 * k


def test_pk_repeats_images_of_small_identities():
    records = [Record(f"{i}.jpg", pid=i // 2, camid=0) for i in range(6)]  # 3 identities x 2 images
    labels = {0: 0, 1: 1, 2: 2}
    batch = next(iter(PKBatchSampler(records, labels, 3, 4, seed=0)))
    # each identity shows both of its images, twice each (4 slots, 2 images)
    assert len(batch) == 12 and Counter(batch) == {i: 2 for i in range(6)}


def test_release_compat_reproduces_the_relabelled_neighbour_lookup():
    # Global pids and labels: 0->0, 1->1, 10->2, 11->3, 20->4, 21->5, 22->6.
    # video.json also lists test identities 2, 3, 4 in video "test". The release looks the
    # anchor's LABEL up as a global pid: pid 10 has label 2, global pid 2 shares "test" with
    # global 3 and 4, read back as LABELS 3 and 4 = pids 11 and 20. pid 20 dances in another video.
    videos = {"z": [0, 1], "alpha": [10, 11], "beta": [20, 21, 22], "test": [2, 3, 4]}
    records = [
        Record(f"{pid}_{k}.jpg", pid, camid=k, frame=k, video=v)
        for v, pids in videos.items() if v != "test" for pid in pids for k in range(12)
    ]
    labels = {pid: i for i, pid in enumerate(sorted({r.pid for r in records}))}
    pid = np.array([r.pid for r in records])
    fixed = SparseTemporalTripletSampler(records, labels, inter_rate=1.0, skip_frame=2, seed=0)
    compat = SparseTemporalTripletSampler(records, labels, inter_rate=1.0, skip_frame=2, videos=videos,
                                          release_compat=True, seed=0)
    neg_fixed, neg_compat = Counter(), Counter()
    for epoch in range(20):
        for sampler, out in ((fixed, neg_fixed), (compat, neg_compat)):
            sampler.set_epoch(epoch)
            d = sampler.draw_epoch()
            anchors10 = (pid[d.anchors] == 10) & d.sparse_temporal
            out.update(pid[d.negatives[anchors10]].tolist())
    assert set(neg_fixed) == {11}
    assert set(neg_compat) == {11, 20}
    # label 4 (pid 20): global pid 4 is in "test" with 2 and 3 -> labels 2, 3 = pids 10, 11
    d = compat.draw_epoch()
    assert set(pid[d.negatives[(pid[d.anchors] == 20) & d.sparse_temporal]].tolist()) <= {10, 11}


def test_release_compat_order_and_branch_rate():
    compat = SparseTemporalTripletSampler(RECORDS, LABELS, inter_rate=0.9, skip_frame=SKIP, release_compat=True)
    # random.choice over 90 True and int(100 * 0.1) = int(9.999...) = 9 False: 90 / 99
    assert compat.branch_rate == pytest.approx(90 / 99)
    order = np.argsort(np.array([str(LABELS[r.pid]) for r in RECORDS]))
    assert np.array_equal(compat.blocks.order, order)
    assert np.array_equal(release_order(RECORDS, LABELS), order)
    # the ST window is taken in that order, which is not time order
    rank = temporal_rank(RECORDS, order)
    assert any(rank[i] != RECORDS[i].frame // 5 for i in range(len(RECORDS)))
    size = Counter(PID.tolist())
    d = compat.draw_epoch()
    st = d.sparse_temporal & ~((PID[d.anchors] == 31) & (rank[d.anchors] == SKIP))
    skip = np.array([window(size[p]) for p in PID[d.anchors]])
    assert (np.abs(rank[d.positives] - rank[d.anchors])[st] > skip[st]).all()


def test_user_errors():
    one = [Record(f"{i}.jpg", pid=1, camid=0) for i in range(5)]
    with pytest.raises(StreidError, match="two identities"):
        RandomTripletSampler(one, {1: 0})
    with pytest.raises(StreidError, match="multiple"):
        TripletBatchSampler(RandomTripletSampler(RECORDS, LABELS, num_replicas=4, rank=0), batch_size=6)
    with pytest.raises(StreidError, match="rank"):
        RandomTripletSampler(RECORDS, LABELS, num_replicas=2, rank=2)
    with pytest.raises(StreidError, match="no training label"):
        RandomTripletSampler(RECORDS, {10: 0})
    with pytest.raises(StreidError, match="inter_rate"):
        SparseTemporalTripletSampler(RECORDS, LABELS, inter_rate=1.5)
    with pytest.raises(StreidError, match="identities"):
        PKBatchSampler(RECORDS, LABELS, 40, 4)
