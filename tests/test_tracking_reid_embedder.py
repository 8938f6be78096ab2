"""The adapter that turns a re-ID model into the tracker's embedder: crops, resizing,
normalisation, one batch, eval mode, no autograd."""
import numpy as np
import pytest
import torch

from streid_core.tracking import make_reid_embedder


class MeanColour(torch.nn.Module):
    """Returns each crop's mean (normalised) colour, and records how it was called."""

    def __init__(self):
        super().__init__()
        self.dropout = torch.nn.Dropout(0.5)  # would scramble the output if left in training mode
        self.calls = []

    def forward(self, batch):
        self.calls.append((tuple(batch.shape), self.training, torch.is_inference_mode_enabled()))
        return self.dropout(batch.mean(dim=(2, 3)))


def _two_colour_frame():
    frame = np.zeros((60, 80, 3), dtype=np.uint8)
    frame[:, :40] = (255, 0, 0)  # left half red
    frame[:, 40:] = (0, 0, 255)  # right half blue
    return frame


def test_crops_are_resized_normalised_and_run_as_one_batch_in_eval_mode():
    model = MeanColour().train()
    embed = make_reid_embedder(model, height=16, width=8, device="cpu")
    boxes = np.array([[5, 10, 20, 30], [50, 0, 25, 60], [70, 50, 40, 40]], dtype=float)
    features = embed(_two_colour_frame(), boxes)

    assert model.calls == [((3, 3, 16, 8), False, True)]  # one batch, eval mode, inference mode
    assert features.shape == (3, 3) and features.dtype == np.float32
    # A red crop normalised with the ImageNet statistics:
    # ((1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (0 - 0.406) / 0.225) = (2.2489, -2.0357, -1.8044)
    red = [(1 - 0.485) / 0.229, -0.456 / 0.224, -0.406 / 0.225]
    blue = [-0.485 / 0.229, -0.456 / 0.224, (1 - 0.406) / 0.225]
    np.testing.assert_allclose(features[0], red, atol=1e-5)
    np.testing.assert_allclose(features[1], blue, atol=1e-5)
    # The third box hangs over the bottom-right corner: it is clipped to the (blue) image.
    np.testing.assert_allclose(features[2], blue, atol=1e-5)


def test_no_boxes_means_no_model_call():
    model = MeanColour()
    embed = make_reid_embedder(model, 16, 8)
    assert embed(_two_colour_frame(), np.zeros((0, 4))).shape == (0, 0)
    assert model.calls == []


def test_a_model_that_does_not_return_features_is_reported():
    embed = make_reid_embedder(torch.nn.Identity(), 16, 8)
    with pytest.raises(TypeError, match=r"\(N, D\) tensor"):
        embed(_two_colour_frame(), np.array([[0, 0, 10, 10]]))
