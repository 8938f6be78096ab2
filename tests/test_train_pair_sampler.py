"""Siamese pair batches: one positive then np_ratio negative pairs per anchor, every image an
anchor once per epoch, epoch-seeded, [firsts; seconds] layout, disjoint rank shares."""
import pytest

from streid_core.data.records import Record
from streid_core.errors import StreidError
from streid_core.data.pair_sampler import PairBatchSampler

# identity 9 has a single image: its positive pair can only repeat the anchor
SIZES = {3: 4, 5: 3, 7: 5, 9: 1}
RECORDS = [Record(f"{pid}_{i}.jpg", pid, i % 2) for pid, n in SIZES.items() for i in range(n)]
LABELS = {pid: i for i, pid in enumerate(SIZES)}


def test_each_anchor_gets_one_positive_then_np_ratio_negatives():
    sampler = PairBatchSampler(RECORDS, LABELS, batch_size=4, np_ratio=3, seed=1)
    first, second = sampler.draw_pairs()
    assert len(first) == len(RECORDS) * 4
    anchors = first[::4]
    assert sorted(anchors.tolist()) == list(range(len(RECORDS)))  # every image anchors once
    for k, anchor in enumerate(anchors):
        group = slice(4 * k, 4 * k + 4)
        assert (first[group] == anchor).all()
        positive, negatives = second[4 * k], second[4 * k + 1: 4 * k + 4]
        assert RECORDS[positive].pid == RECORDS[anchor].pid
        assert positive != anchor or SIZES[RECORDS[anchor].pid] == 1
        assert all(RECORDS[n].pid != RECORDS[anchor].pid for n in negatives)


def test_batches_are_firsts_then_seconds_and_epochs_replay():
    sampler = PairBatchSampler(RECORDS, LABELS, batch_size=5, np_ratio=1, seed=2)
    first, second = sampler.draw_pairs()
    batches = list(sampler)
    assert len(batches) == len(RECORDS) * 2 // 5  # the incomplete last batch is dropped
    assert batches[1] == first[5:10].tolist() + second[5:10].tolist()
    sampler.set_epoch(1)
    again = PairBatchSampler(RECORDS, LABELS, batch_size=5, np_ratio=1, seed=2)
    again.set_epoch(1)
    assert list(sampler) == list(again)
    assert list(sampler) != batches  # epoch 1 draws differently from epoch 0


def test_ranks_share_each_global_batch_disjointly():
    whole = list(PairBatchSampler(RECORDS, LABELS, batch_size=6, np_ratio=2, seed=4))
    shares = [list(PairBatchSampler(RECORDS, LABELS, batch_size=6, np_ratio=2, seed=4, num_replicas=3, rank=r))
              for r in range(3)]
    for b, batch in enumerate(whole):
        firsts = [i for r in range(3) for i in shares[r][b][:2]]
        seconds = [i for r in range(3) for i in shares[r][b][2:]]
        assert firsts + seconds == batch


def test_invalid_settings_are_user_errors():
    with pytest.raises(StreidError, match="cannot be split"):
        PairBatchSampler(RECORDS, LABELS, batch_size=5, num_replicas=2)
    with pytest.raises(StreidError, match="two identities"):
        PairBatchSampler(RECORDS[:4], {3: 0}, batch_size=2)
    with pytest.raises(StreidError, match="no training label"):
        PairBatchSampler(RECORDS, {3: 0}, batch_size=2)
