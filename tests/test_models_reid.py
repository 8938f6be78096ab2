"""Re-ID encoder: shapes, BN-neck/classifier conventions, descriptor choice, local weights, param groups."""
import pytest
import torch
import torchvision
from torch import nn

from streid_core.errors import StreidError
from streid_core.models import EncoderOutput, ReIDEncoder


def _images(n=2, h=64, w=32, seed=0):
    return torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_resnet50_last_stride_1_keeps_16x8_map_and_2048_features():
    torch.manual_seed(0)
    model = ReIDEncoder("resnet50", num_classes=7, last_stride=1)
    x = _images(2, 256, 128)
    assert model.trunk(x).shape == (2, 2048, 16, 8)
    out = model(x)
    assert isinstance(out, EncoderOutput)
    assert out.feat.shape == (2, 2048) and out.bn_feat.shape == (2, 2048) and out.logits.shape == (2, 7)
    assert model.feature_dim == 2048


@pytest.mark.parametrize("arch, dim", [("resnet18", 512), ("resnet34", 512)])
def test_basic_block_archs_have_512_features_and_last_stride_controls_map(arch, dim):
    stride1 = ReIDEncoder(arch, last_stride=1)
    stride2 = ReIDEncoder(arch, last_stride=2)
    x = _images(1, 256, 128)
    assert stride1.feature_dim == dim
    assert stride1.trunk(x).shape == (1, dim, 16, 8)
    assert stride2.trunk(x).shape == (1, dim, 8, 4)


def test_bn_neck_bias_frozen_and_classifier_bias_free():
    torch.manual_seed(0)
    model = ReIDEncoder("resnet18", num_classes=1000)
    assert model.bn_neck.bias.requires_grad is False
    assert torch.all(model.bn_neck.bias == 0) and torch.all(model.bn_neck.weight == 1)
    assert model.classifier.bias is None
    # N(0, 0.001) over 512k weights: the sample std is within a few percent of 0.001.
    assert abs(model.classifier.weight.std().item() - 0.001) < 5e-5
    # a training step must not move the frozen bias
    out = model(_images(4))
    out.logits.sum().backward()
    assert model.bn_neck.bias.grad is None and model.bn_neck.weight.grad is not None


def test_eval_returns_pre_bn_descriptor_by_default_and_bn_feature_with_test_bn():
    torch.manual_seed(0)
    x = _images(3)
    plain = ReIDEncoder("resnet18", num_classes=4)
    plain(x)  # one train step moves BN running stats away from the identity
    plain.eval()
    with torch.no_grad():
        full = plain.embed(x)
        descriptor = plain(x)
    assert torch.equal(descriptor, full.feat)
    assert not torch.allclose(full.feat, full.bn_feat)

    with_bn = ReIDEncoder("resnet18", num_classes=4, test_bn=True)
    with_bn.load_state_dict(plain.state_dict())
    with_bn.eval()
    with torch.no_grad():
        assert torch.allclose(with_bn(x), full.bn_feat)


def test_max_and_avg_pooling_of_the_layer4_map():
    torch.manual_seed(0)
    x = _images(2)
    max_model = ReIDEncoder("resnet18", pool="max").eval()
    avg_model = ReIDEncoder("resnet18", pool="avg").eval()
    avg_model.load_state_dict(max_model.state_dict())
    with torch.no_grad():
        fmap = max_model.trunk(x)
        assert torch.allclose(max_model(x), fmap.amax(dim=(2, 3)))
        assert torch.allclose(avg_model(x), fmap.mean(dim=(2, 3)), atol=1e-6)


def test_stem_relu_option_reproduces_release_stem_without_relu():
    torch.manual_seed(0)
    x = _images(2)
    seen = {}

    def record(name):
        def hook(module, inputs):
            seen[name] = inputs[0]
        return hook

    standard = ReIDEncoder("resnet18")
    quirk = ReIDEncoder("resnet18", stem_relu=False)
    standard.trunk.maxpool.register_forward_pre_hook(record("standard"))
    quirk.trunk.maxpool.register_forward_pre_hook(record("quirk"))
    standard(x)
    quirk(x)
    assert seen["standard"].min() >= 0  # ReLU before max pooling
    assert seen["quirk"].min() < 0  # BN output goes straight into max pooling


def test_local_torchvision_state_dict_reproduces_conv_weights(tmp_path):
    torch.manual_seed(3)
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)  # includes fc.*, which must be skipped
    model = ReIDEncoder("resnet18", num_classes=2, pretrained=path)
    assert torch.equal(model.trunk.conv1.weight, reference.conv1.weight)
    assert torch.equal(model.trunk.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)
    assert torch.equal(model.trunk.bn1.running_var, reference.bn1.running_var)


def test_local_weights_with_module_prefix_and_state_dict_wrapper(tmp_path):
    torch.manual_seed(4)
    reference = torchvision.models.resnet18(weights=None)
    wrapped = {"state_dict": {"module." + k: v for k, v in reference.state_dict().items()}}
    path = tmp_path / "wrapped.pth.tar"
    torch.save(wrapped, path)
    model = ReIDEncoder("resnet18", pretrained=path, last_stride=1)
    assert torch.equal(model.trunk.layer3[0].downsample[0].weight, reference.layer3[0].downsample[0].weight)


def test_missing_or_incompatible_weights_raise_one_line_errors(tmp_path):
    with pytest.raises(StreidError, match="not found"):
        ReIDEncoder("resnet18", pretrained=tmp_path / "absent.pth")
    r34 = tmp_path / "r34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), r34)
    with pytest.raises(StreidError, match="do not fit a torchvision resnet18") as info:
        ReIDEncoder("resnet18", pretrained=r34)
    assert "\n" not in str(info.value)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(StreidError, match="cannot read"):
        ReIDEncoder("resnet18", pretrained=garbage)


def test_param_groups_split_backbone_from_new_layers_and_survive_a_scheduler():
    model = ReIDEncoder("resnet18", num_classes=5)
    groups = model.param_groups(lr=0.1, backbone_lr_mult=0.1)
    backbone, head = groups
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(trainable)  # every trainable parameter exactly once
    assert {id(p) for p in head["params"]} == {id(model.classifier.weight), id(model.bn_neck.weight)}
    assert id(model.bn_neck.bias) not in grouped

    optimizer = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 0.5)
    optimizer.step()
    scheduler.step()
    # LambdaLR scales each group's own base lr: the backbone keeps its 0.1 multiplier.
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.1 * 0.5)
    assert optimizer.param_groups[1]["lr"] == pytest.approx(0.1 * 0.5)

    release = model.param_groups(lr=0.1, backbone_lr_mult=1.0, train_bn_neck=False)
    assert [id(p) for p in release[1]["params"]] == [id(model.classifier.weight)]


def test_siamese_head_classifies_squared_bn_feature_difference_of_the_halves():
    torch.manual_seed(0)
    model = ReIDEncoder("resnet18", emb_type="Siamese")
    assert model.classifier.out_features == 2
    out = model(_images(4))
    assert out.feat.shape == (4, 512) and out.logits.shape == (2, 2)
    expected = model.classifier((out.bn_feat[:2] - out.bn_feat[2:]).pow(2))
    assert torch.allclose(out.logits, expected)
    with pytest.raises(ValueError, match="odd batch"):
        model(_images(3))
    with pytest.raises(StreidError, match="binary"):
        ReIDEncoder("resnet18", num_classes=71, emb_type="Siamese")


def test_channels_last_gives_the_same_descriptor():
    torch.manual_seed(0)
    x = _images(2)
    model = ReIDEncoder("resnet18").eval()
    with torch.no_grad():
        reference = model(x)
        model = model.to(memory_format=torch.channels_last)
        result = model(x.to(memory_format=torch.channels_last))
    assert torch.allclose(result, reference, atol=1e-4)


@pytest.mark.precision
def test_forward_under_bf16_autocast_on_cpu():
    torch.manual_seed(0)
    x = _images(2)
    model = ReIDEncoder("resnet18", num_classes=3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
        assert out.logits.shape == (2, 3) and torch.isfinite(out.feat.float()).all()
        out.logits.float().sum().backward()
        model.eval()
        descriptor = model(x)
    assert model.trunk.conv1.weight.grad is not None
    with torch.no_grad():
        reference = model(x)
    relative = (descriptor.float() - reference).norm() / reference.norm()
    assert descriptor.shape == (2, 512) and relative < 0.05


def test_encoder_batchnorm_freeze_survives_train():
    model = ReIDEncoder("resnet18", num_classes=2)
    model.freeze_batchnorm()
    model.train()
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    assert norms and not any(m.training for m in norms)
    assert model.training and isinstance(model(_images(2)), EncoderOutput)
    model.freeze_batchnorm(False)
    assert all(m.training for m in norms)


@pytest.mark.parametrize("kwargs, message", [
    ({"arch": "resnet20"}, "unknown encoder arch"),
    ({"last_stride": 3}, "last stride"),
    ({"pool": "mean"}, "unknown pooling"),
    ({"use_bn": False, "test_bn": True}, "test_bn needs"),
    ({"emb_type": "Triplet"}, "unknown embedding type"),
])
def test_bad_options_raise_streid_error(kwargs, message):
    with pytest.raises(StreidError, match=message):
        ReIDEncoder(**{"arch": "resnet18", **kwargs})
