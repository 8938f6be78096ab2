"""Discriminators: Dp PatchGAN layout and output grid, Di single logit, Di's persistent BN freeze."""
import pytest
import torch
import torchvision
from torch import nn

from streid_core.models import ImageDiscriminator, PoseDiscriminator


def test_pose_discriminator_patch_grid_at_256x128_and_128x64():
    dp = PoseDiscriminator(17)
    # heights 256 -> 128 -> 64 -> 32 (three /2 convs) -> 31 -> 30 (two 4x4/1 p1 convs); widths 128 -> ... -> 14
    assert dp(torch.rand(2, 17, 256, 128), torch.rand(2, 3, 256, 128)).shape == (2, 1, 30, 14)
    assert dp(torch.rand(1, 17, 128, 64), torch.rand(1, 3, 128, 64)).shape == (1, 1, 14, 6)


def test_pose_discriminator_layers_pose_channels_first():
    dp = PoseDiscriminator(18, norm="batch")
    convs = [m for m in dp.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == [
        (21, 64, 2), (64, 128, 2), (128, 256, 2), (256, 512, 1), (512, 1, 1)]
    assert [c.bias is not None for c in convs] == [True, False, False, False, True]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in dp.modules()) == 3
    # pose first: zeroing the weights that read the image channels makes the output image-blind
    with torch.no_grad():
        convs[0].weight[:, 18:] = 0
    dp.eval()
    pose = torch.rand(1, 18, 128, 64)
    assert torch.equal(dp(pose, torch.rand(1, 3, 128, 64)), dp(pose, torch.rand(1, 3, 128, 64)))
    with pytest.raises(ValueError, match="18 channels"):
        dp(torch.rand(1, 17, 128, 64), torch.rand(1, 3, 128, 64))


def test_pose_discriminator_init_normal_002():
    torch.manual_seed(0)
    dp = PoseDiscriminator(17, norm="instance")
    weight = dp.model[-1].weight  # 512 x 4 x 4 values
    assert abs(weight.std().item() - 0.02) < 2e-3
    assert all(torch.all(m.bias == 0) for m in dp.modules() if isinstance(m, nn.Conv2d))


def test_image_discriminator_one_logit_per_image_in_train_and_eval():
    torch.manual_seed(0)
    di = ImageDiscriminator()
    images = torch.rand(3, 3, 128, 64)
    assert di(images).shape == (3, 1)
    di.eval()
    assert di(images).shape == (3, 1)
    enc = di.encoder
    assert enc.arch == "resnet18" and isinstance(enc.pool, nn.AdaptiveMaxPool2d)
    assert enc.trunk(images).shape[2:] == (4, 2)  # last stride 2: 128x64 / 32
    assert enc.bn_neck is not None and enc.classifier.bias is None


def test_image_discriminator_loads_local_resnet18_weights(tmp_path):
    torch.manual_seed(1)
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save(reference.state_dict(), path)
    di = ImageDiscriminator(pretrained=path)
    assert torch.equal(di.encoder.trunk.layer2[0].conv1.weight, reference.layer2[0].conv1.weight)


def test_frozen_batchnorm_stays_in_eval_after_train_and_affine_still_learns():
    torch.manual_seed(0)
    di = ImageDiscriminator()
    norms = [m for m in di.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    di.freeze_batchnorm()
    di.train()  # contract: the freeze is persistent across .train()
    assert di.batchnorm_frozen and di.training
    assert not any(m.training for m in norms)
    before = di.encoder.trunk.bn1.running_mean.clone()
    logits = di(torch.rand(2, 3, 128, 64) * 5)
    assert torch.equal(di.encoder.trunk.bn1.running_mean, before)  # running stats untouched
    logits.sum().backward()
    assert di.encoder.trunk.bn1.weight.grad is not None and di.encoder.trunk.bn1.weight.requires_grad

    di.freeze_batchnorm(False)
    assert all(m.training for m in norms)
