"""A `streid train`-format checkpoint with a randomly initialised tiny ST-ReIDNet (ResNet-18 E,
64x32 canvas), for tests of what reads E and G (pose transfer). Random weights are enough there:
those tests check the wiring, not the quality of the drawings. `connect_layers=5` gives G the
skip connections of `--preset cpu-draw`, through which even a random G redraws near a moved
joint rather than everywhere (tests/_locality.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from _make_streid_batch import HEIGHT, NUM_JOINTS, WIDTH, tiny_config
from streid_core.data.pose import pose_maps
from streid_core.models.loading import FORMAT, VERSION
from streid_core.training.checkpoint import save_checkpoint
from streid_core.training.streidnet import StreidNetTask


def _calibrate_generator_batchnorm(generator: torch.nn.Module, feature_dim: int, seed: int) -> None:
    """Set G's BatchNorm running statistics to those of its own activations on random poses.
    Freshly initialised, they are mean 0 / variance 1 while the N(0, 0.02) weights shrink every
    layer's output, so in eval mode G draws a flat grey whatever the pose (pixels 126-129); with
    matched statistics, as after training, moving one joint 5 pixels visibly changes the image."""
    rng = np.random.default_rng(seed)
    joints = [np.stack([rng.uniform(0, WIDTH, NUM_JOINTS), rng.uniform(0, HEIGHT, NUM_JOINTS)], axis=1) for _ in range(16)]
    poses = torch.from_numpy(np.stack([pose_maps(j, HEIGHT, WIDTH) for j in joints]))
    norms = [m for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a plain average over the calibration batch
    generator.train()
    with torch.no_grad():
        features = torch.randn(len(joints), feature_dim, generator=torch.Generator().manual_seed(seed))
        maps = features[:, :, None, None].expand(-1, -1, 2, 1)  # a 2x1 "map" of E for a source-limbs painting
        generator(poses, features, parts=generator.part_features(maps, poses))
    for norm in norms:
        norm.momentum = 0.1


def make_transfer_checkpoint(path: Path, seed: int = 0, connect_layers: int = 0, **config) -> Path:
    """config: more StreidNetConfig fields (e.g. a painting that reads the source's limbs, whose
    colour maps are then drawn at random too, so that what they read shows in the drawing)."""
    torch.manual_seed(seed)
    task = StreidNetTask(tiny_config(connect_layers=connect_layers, **config))
    if task.generator.reads_source_limbs:
        with torch.no_grad():
            task.generator.limb_painting.part_weight.normal_(0.0, 0.2)
    _calibrate_generator_batchnorm(task.generator, task.encoder.feature_dim, seed)
    save_checkpoint(path, {"format": FORMAT, "version": VERSION, "epoch": 1, "task": task.state_dict(),
                           "encoder": task.encoder.state_dict(),
                           "encoder_config": task.architecture.encoder_config().as_dict()})
    return path
