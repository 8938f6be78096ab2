"""Feature extraction and model evaluation: record order, the test transform, flip averaging,
bf16, mode restore, one embedding per unique image, metrics through the protocols."""
import numpy as np
import pytest
import torch
from _make_datasets import write_jpeg
from _make_train_run import single_thread
from torch import nn

from streid_core.data.records import Record
from streid_core.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from streid_core.errors import StreidError
from streid_core.evaluation.features import extract_features
from streid_core.evaluation.pipeline import evaluate_reid
from streid_core.models.reid import ReIDEncoder

_one_thread = pytest.fixture(scope="module", autouse=True)(single_thread)


def _colour(pid):
    """The colour write_jpeg gives identity `pid` (tests/_make_datasets.py), before noise."""
    return np.array([(pid * 53) % 256, (pid * 97 + 80) % 256, (pid * 31 + 160) % 256], dtype=np.float64)


class MeanColour(nn.Module):
    """Descriptor = mean of each normalised channel; counts the images it embeds."""

    def __init__(self):
        super().__init__()
        self.seen = 0

    def forward(self, x):
        self.seen += len(x)
        return x.float().mean(dim=(2, 3))


class LeftMinusRight(nn.Module):
    """Not mirror-symmetric: the mirror image gives exactly the negated descriptor."""

    def forward(self, x):
        half = x.shape[3] // 2
        return x[..., :half].mean(dim=(2, 3)) - x[..., half:].mean(dim=(2, 3))


@pytest.fixture
def records(tmp_path):
    out = []
    for pid in (1, 2, 3):
        for cam in (0, 1):
            for i in range(2):
                path = write_jpeg(tmp_path / f"{pid}_{cam}_{i}.jpg", pid, cam * 10 + i, size=(16, 32))
                out.append(Record(str(path), pid, cam))
    return out


def test_features_follow_record_order_and_the_normalised_test_transform(records):
    feats, pids, camids = extract_features(MeanColour(), records[::-1], batch_size=5, height=32, width=16)
    assert feats.dtype == torch.float32 and feats.shape == (12, 3)
    assert pids.tolist() == [r.pid for r in records[::-1]] and camids.tolist() == [r.camid for r in records[::-1]]
    for feat, record in zip(feats.numpy(), records[::-1]):
        # (colour / 255 - mean) / std per channel; the +-12-level noise (clipped at 255) and JPEG
        # leave a few levels: 0.1 here is ~6 levels, while identities differ by >= 31 levels
        expected = (_colour(record.pid) / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
        assert feat == pytest.approx(expected, abs=0.1)


def test_batch_size_does_not_change_features(records):
    torch.manual_seed(0)
    model = ReIDEncoder("resnet18", last_stride=1).eval()
    small, _, _ = extract_features(model, records, batch_size=3, height=32, width=16)
    large, _, _ = extract_features(model, records, batch_size=64, height=32, width=16)
    assert torch.allclose(small, large, atol=1e-5)


def test_flip_averages_an_image_and_its_mirror(tmp_path):
    pixels = np.zeros((32, 16, 3), dtype=np.uint8)
    pixels[:, :8] = 255  # bright left half, dark right half
    from PIL import Image
    Image.fromarray(pixels).save(tmp_path / "half.png")
    records = [Record(str(tmp_path / "half.png"), 1, 0)]
    plain, _, _ = extract_features(LeftMinusRight(), records, height=32, width=16)
    flipped, _, _ = extract_features(LeftMinusRight(), records, height=32, width=16, flip=True)
    # left mean - right mean = (255 - 0) / 255 / std per channel; the mirror gives the negative
    assert plain[0].numpy() == pytest.approx(1.0 / np.array(IMAGENET_STD), rel=1e-5)
    assert torch.allclose(flipped, torch.zeros_like(flipped), atol=1e-6)


@pytest.mark.precision
def test_bf16_autocast_stays_close_to_float32_and_restores_train_mode(records):
    torch.manual_seed(0)
    model = ReIDEncoder("resnet18", last_stride=1)
    model.train()
    fp32, _, _ = extract_features(model, records, height=32, width=16)
    bf16, _, _ = extract_features(model, records, height=32, width=16, dtype=torch.bfloat16)
    assert model.training  # the caller's mode comes back
    assert bf16.dtype == torch.float32
    relative = (bf16 - fp32).norm(dim=1) / fp32.norm(dim=1)
    assert float(relative.max()) < 0.05  # bf16 keeps ~3 significant digits per operation


def test_evaluate_reid_embeds_each_unique_image_once_and_ranks_by_identity(records):
    model = MeanColour()
    query = [r for r in records if r.camid == 0]
    result = evaluate_reid(model, query, records, "market1501", height=32, width=16).result
    assert model.seen == len(records)  # query images are part of the gallery: embedded once
    # colours differ by identity far more than JPEG noise: every positive ranks first
    assert result.mAP == pytest.approx(1.0) and result.rank1 == pytest.approx(1.0)
    assert result.num_valid == len(query)


def test_dancereid_protocol_takes_the_same_set_as_query_and_gallery(records):
    result = evaluate_reid(MeanColour(), records, records, "dancereid", height=32, width=16).result
    assert result.protocol == "dancereid" and result.mAP == pytest.approx(1.0)


def test_empty_sets_are_user_errors(records):
    with pytest.raises(StreidError, match="empty"):
        extract_features(MeanColour(), [], height=32, width=16)
    with pytest.raises(StreidError, match="non-empty"):
        evaluate_reid(MeanColour(), [], records, height=32, width=16)
