"""Pose-guided generator: output shapes at paper and demo sizes, fusion, skips, norms, init, gradients."""
import pytest
import torch
from torch import nn

from streid_core.errors import StreidError
from streid_core.models import PoseGenerator, ReIDEncoder

K = 17


def _inputs(n, size, feature, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, K, *size, generator=g), torch.rand(n, feature, generator=g)


@pytest.mark.parametrize("size", [(256, 128), (128, 64)])
@pytest.mark.parametrize("fuse_mode", ["cat", "add"])
@pytest.mark.parametrize("connect_layers", [0, 2])
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_output_is_3xHxW_in_tanh_range(size, fuse_mode, connect_layers, norm):
    torch.manual_seed(0)
    gen = PoseGenerator(K, 96, image_size=size, fuse_mode=fuse_mode, connect_layers=connect_layers, norm=norm)
    pose, feature = _inputs(2, size, 96)
    out = gen(pose, feature)
    assert out.shape == (2, 3, *size)
    assert out.abs().max() <= 1.0


def test_paper_configuration_layers():
    gen = PoseGenerator(K, 2048)  # 256x128, cat, pose code 128, batch norm
    head_conv = gen.pose_head[1]
    assert head_conv.kernel_size == (8, 4) and head_conv.out_channels == 128
    stem_convt = gen.decoder_stem[1]
    assert stem_convt.in_channels == 2048 + 128 and stem_convt.kernel_size == (8, 4)
    assert [b[1].out_channels for b in gen.up_blocks] == [512, 256, 128, 64, 3]
    assert isinstance(gen.up_blocks[-1][-1], nn.Tanh)
    assert [m.p for m in gen.modules() if isinstance(m, nn.Dropout)] == [0.2] * 5
    # batch norm: no conv has a bias, the output layer included
    assert all(m.bias is None for m in gen.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))


def test_add_fusion_uses_bias_free_projections_to_the_larger_size():
    gen = PoseGenerator(K, 96, pose_feature_size=128, image_size=(128, 64), fuse_mode="add")
    assert gen.project_reid.in_features == 96 and gen.project_reid.out_features == 128
    assert gen.project_pose.out_features == 128
    assert gen.project_reid.bias is None and gen.project_pose.bias is None
    assert gen.decoder_stem[1].in_channels == 128


def test_all_five_skips_widen_every_up_block():
    gen = PoseGenerator(K, 64, image_size=(128, 64), connect_layers=5)
    # up-block inputs: decoder width + encoder width at the same resolution (512+512, ..., 64+64)
    assert [b[1].in_channels for b in gen.up_blocks] == [1024, 1024, 512, 256, 128]
    pose, feature = _inputs(2, (128, 64), 64)
    assert gen(pose, feature).shape == (2, 3, 128, 64)


@pytest.mark.parametrize("norm, norm_type, has_bias", [
    ("batch", nn.BatchNorm2d, False), ("instance", nn.InstanceNorm2d, True), ("none", None, True)])
def test_norm_choice_sets_layers_and_conv_biases(norm, norm_type, has_bias):
    gen = PoseGenerator(K, 64, image_size=(128, 64), norm=norm)
    norms = [m for m in gen.modules() if isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d))]
    convs = [m for m in gen.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    if norm_type is None:
        assert norms == []
    else:
        assert norms and all(type(m) is norm_type for m in norms)
    if norm == "instance":
        assert not any(m.affine for m in norms)
    assert all((m.bias is not None) == has_bias for m in convs)
    pose, feature = _inputs(2, (128, 64), 64)
    assert gen(pose, feature).shape == (2, 3, 128, 64)


def test_weight_init_normal_002_and_batchnorm_around_one():
    torch.manual_seed(0)
    gen = PoseGenerator(K, 2048)
    big = gen.decoder_stem[1].weight  # 2176 x 512 x 8 x 4 values
    assert abs(big.mean().item()) < 1e-3 and abs(big.std().item() - 0.02) < 1e-3
    bn_weights = torch.cat([m.weight for m in gen.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(bn_weights.mean().item() - 1.0) < 5e-3 and abs(bn_weights.std().item() - 0.02) < 5e-3
    assert all(torch.all(m.bias == 0) for m in gen.modules() if isinstance(m, nn.BatchNorm2d))


def test_gradient_reaches_the_encoder_through_the_identity_feature():
    torch.manual_seed(0)
    encoder = ReIDEncoder("resnet18", num_classes=3)
    gen = PoseGenerator(K, encoder.feature_dim, image_size=(128, 64))
    images = torch.randn(2, 3, 128, 64)
    pose, _ = _inputs(2, (128, 64), 1)
    fake = gen(pose, encoder(images).feat)
    (fake - 0.5).abs().mean().backward()
    grad = encoder.trunk.conv1.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_no_noise_input_eval_output_is_deterministic():
    torch.manual_seed(0)
    gen = PoseGenerator(K, 64, image_size=(128, 64))
    pose, feature = _inputs(2, (128, 64), 64)
    gen(pose, feature)  # fill BN running stats
    gen.eval()
    with torch.no_grad():
        assert torch.equal(gen(pose, feature), gen(pose, feature))
        # the identity feature matters: another feature gives another image
        assert not torch.allclose(gen(pose, feature), gen(pose, feature.flip(0)))


def test_bad_configuration_and_inputs():
    with pytest.raises(StreidError, match="divisible by 32"):
        PoseGenerator(K, 64, image_size=(250, 128))
    with pytest.raises(StreidError, match="connect_layers"):
        PoseGenerator(K, 64, image_size=(128, 64), connect_layers=6)
    with pytest.raises(StreidError, match="unknown norm"):
        PoseGenerator(K, 64, image_size=(128, 64), norm="group")
    with pytest.raises(StreidError, match="fuse mode"):
        PoseGenerator(K, 64, image_size=(128, 64), fuse_mode="mul")
    gen = PoseGenerator(K, 64, image_size=(128, 64))
    with pytest.raises(ValueError, match="pose maps"):
        gen(torch.rand(2, 18, 128, 64), torch.rand(2, 64))
    with pytest.raises(ValueError, match="re-ID feature"):
        gen(torch.rand(2, K, 128, 64), torch.rand(2, 32))
