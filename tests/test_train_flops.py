"""benchmarks/train_flops.py: the arithmetic it counts and the convolution it takes as the
reference are those of the iteration, checked by hand on a two-layer network."""
import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_flops.py"


def _script():
    sys.path.insert(0, str(SCRIPT.parent))  # it imports its sibling train_speed
    spec = importlib.util.spec_from_file_location("train_flops", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class _TwoConvTask:
    """A 'task' whose iteration is one forward of conv(3->4, 3x3, pad 1) then conv(4->8, 1x1)."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.Conv2d(4, 8, 1, bias=False))
        self.networks = {"net": self.net}

    def train_step(self, batch: torch.Tensor) -> None:
        with torch.no_grad():
            self.net(batch)


def test_flops_and_the_costliest_convolution_match_a_hand_count():
    script = _script()
    task, batch = _TwoConvTask(), torch.randn(2, 3, 5, 6)
    # first conv: 2 images x 4 outputs x 30 pixels, each 3 x 3 x 3 multiply-adds: 2 * 240 * 27 = 12960
    # second: 2 x 8 x 30 outputs, each 4 multiply-adds: 2 * 480 * 4 = 3840
    flops, by_network = script.count_flops(task, batch)
    assert sum(flops.values()) * 1e9 == pytest.approx(12960 + 3840)
    assert by_network["Sequential"] * 1e9 == pytest.approx(12960 + 3840)
    module, reference_input, gflop = script.costliest_convolution(task, batch)
    assert module is task.net[0] and gflop * 1e9 == pytest.approx(12960)
    assert reference_input.shape == batch.shape
