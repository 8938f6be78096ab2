"""The training loader: persistent workers still load each epoch's augmentation, exactly as the
main process would (augmentation is seeded by seed, epoch and index)."""
import pytest
import torch
from _make_train_run import DATASET, single_thread, tiny_openreid

from streid_core.data.dataset import load_dataset
from streid_core.data.preprocessor import ReidImageDataset
from streid_core.data.samplers import RandomTripletSampler, TripletBatchSampler
from streid_core.training.loader import EpochLoader, TrainData

_one_thread = pytest.fixture(scope="module", autouse=True)(single_thread)


@pytest.mark.parametrize("workers", [0, 2])
def test_each_epoch_loads_that_epochs_sampling_and_augmentation(tmp_path, workers):
    ds = load_dataset(tiny_openreid(tmp_path) / DATASET)

    def images():
        return ReidImageDataset(ds.train, ds.labels, "baseline_train", 32, 16, eraser=True, seed=5)

    batches = TripletBatchSampler(RandomTripletSampler(ds.train, ds.labels, inst_mode=True, seed=5), 4, drop_last=True)
    loader = EpochLoader(TrainData(images(), batches), workers=workers, seed=5)
    reference = images()
    firsts = []
    for epoch in (1, 2, 3):
        loader.set_epoch(epoch)
        loaded = list(loader)
        batches.set_epoch(epoch)
        reference.set_epoch(epoch)
        assert len(loaded) == len(batches)
        for batch, indices in zip(loaded, batches):
            assert batch["index"].tolist() == indices
            assert torch.equal(batch["image"], torch.stack([reference[i]["image"] for i in indices]))
        firsts.append(loaded[0]["image"])
    assert not torch.equal(firsts[0], firsts[1])  # a new epoch draws new batches and augmentation
