"""The training DataLoader: persistent workers that still see each epoch's augmentation.

Samplers and `ReidImageDataset` draw their randomness from (seed, epoch, index), so an epoch is
replayed exactly on resume, whichever worker loads an item. Persistent workers keep their own
copy of the dataset, so setting the epoch on the main process's dataset would not reach them.
Instead every index the batch sampler yields travels as (epoch, index), and the worker's copy
switches to that epoch before loading: workers stay alive, augmentation follows the epoch.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from ..seeding import seed_worker


class EpochDataset(Protocol):
    def set_epoch(self, epoch: int) -> None: ...
    def __getitem__(self, index: int) -> Any: ...
    def __len__(self) -> int: ...


class EpochBatchSampler(Protocol):
    def set_epoch(self, epoch: int) -> None: ...
    def __iter__(self) -> Iterator[list[int]]: ...
    def __len__(self) -> int: ...


@dataclass
class TrainData:
    """What a task trains on: a dataset and a batch sampler, both with set_epoch. The batch
    sampler yields this process's share of each global batch."""

    dataset: EpochDataset
    batch_sampler: EpochBatchSampler


class _EpochTaggedBatches(Sampler[list[tuple[int, int]]]):
    def __init__(self, batch_sampler: EpochBatchSampler) -> None:
        self.batch_sampler = batch_sampler
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.batch_sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch = self.epoch
        for batch in self.batch_sampler:
            yield [(epoch, index) for index in batch]


class _EpochSwitchingDataset(Dataset):
    def __init__(self, dataset: EpochDataset) -> None:
        self.dataset = dataset
        self.epoch: int | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        if epoch != self.epoch:
            self.dataset.set_epoch(epoch)
            self.epoch = epoch
        return self.dataset[index]


def probe_batch(data: TrainData, epoch: int = 1) -> Any:
    """`epoch`'s first batch (this process's share), built in this process without the global RNG
    (samplers and datasets draw from (seed, epoch, index)): a probe for precision checks."""
    data.batch_sampler.set_epoch(epoch)
    data.dataset.set_epoch(epoch)
    indices = next(iter(data.batch_sampler))
    return default_collate([data.dataset[i] for i in indices])


class EpochLoader:
    """A DataLoader over `data` whose epoch is set with `set_epoch` before iterating."""

    def __init__(self, data: TrainData, workers: int, seed: int, pin_memory: bool = False) -> None:
        self._batches = _EpochTaggedBatches(data.batch_sampler)
        self.loader = DataLoader(
            _EpochSwitchingDataset(data.dataset),
            batch_sampler=self._batches,
            num_workers=workers,
            persistent_workers=workers > 0,
            worker_init_fn=seed_worker,
            pin_memory=pin_memory,
            # its own generator: creating worker iterators must not consume the global torch
            # RNG, or a resumed run would draw differently from an uninterrupted one
            generator=torch.Generator().manual_seed(seed),
            prefetch_factor=4 if workers > 0 else None,
        )

    def set_epoch(self, epoch: int) -> None:
        self._batches.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self._batches)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.loader)
