"""Re-ID encoder E: a torchvision ResNet trunk, global pooling, BN-neck and an ID (or Siamese) head.

Matches ST-ReIDNet's `SingleNet` / `SiameseNet` (docs/original-system.md §2.1): layer4 stride set
by `last_stride`, global *max* pooling by default, a BatchNorm1d "neck" whose bias is frozen at
zero, and a bias-free classifier initialised N(0, 0.001). Train mode returns an `EncoderOutput`; eval mode returns only
the descriptor, so evaluation and export code just call `model(x)`.

Weights are never downloaded: `pretrained` is a path to a local torchvision ResNet state dict.
"""
from __future__ import annotations

import os
from typing import Callable, NamedTuple

import torch
from torch import Tensor, nn
from torchvision import models as tv_models

from streid_core.errors import StreidError

from .torch_file import read_state_dict, state_dict_mismatch

_BUILDERS: dict[str, Callable[..., tv_models.ResNet]] = {
    "resnet18": tv_models.resnet18,
    "resnet34": tv_models.resnet34,
    "resnet50": tv_models.resnet50,
    "resnet101": tv_models.resnet101,
    "resnet152": tv_models.resnet152,
}
ARCHS: tuple[str, ...] = tuple(_BUILDERS)
POOLS: tuple[str, ...] = ("max", "avg")
EMB_TYPES: tuple[str, ...] = ("Single", "Siamese")
_BATCHNORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d)
MAP_LAYERS = (1, 2, 3, 4)  # the trunk's stages whose maps `ReIDEncoder.forward(x, map_layer=N)` returns


def stage_channels(arch: str, layer: int) -> int:
    """Channels of the map of ResNet stage `layer` (1-4): 64-512 for ResNet-18/34, 256-2048 deeper."""
    return (64 if arch in ("resnet18", "resnet34") else 256) * 2 ** (layer - 1)


class EncoderOutput(NamedTuple):
    """What a train-mode forward returns.

    feat: pre-BN pooled feature (N, D) — ST-ReIDNet's triplet loss and generator input.
    bn_feat: BN-neck output (N, D) (equal to `feat` when use_bn=False).
    logits: ID logits (N, num_classes); for the Siamese head, same/different logits (N/2, 2) of
        the pairs (first half, second half); None when the encoder has no classifier.
    """

    feat: Tensor
    bn_feat: Tensor
    logits: Tensor | None


class ResNetTrunk(nn.Module):
    """torchvision ResNet without avgpool/fc; parameter names match torchvision's state dicts."""

    def __init__(self, arch: str, last_stride: int, stem_relu: bool) -> None:
        super().__init__()
        net = _BUILDERS[arch](weights=None)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.stem_relu = stem_relu
        # The first block of layer4 downsamples in one 3x3/1x1 conv and in its shortcut; last
        # stride 1 keeps a 16x8 map at 256x128 input, as in the re-ID literature.
        for module in self.layer4[0].modules():
            if isinstance(module, nn.Conv2d) and module.stride != (1, 1):
                module.stride = (last_stride, last_stride)
        self.out_channels: int = net.fc.in_features

    def forward(self, x: Tensor, map_layer: int = 0) -> Tensor | tuple[Tensor, Tensor]:
        """The last map; map_layer 1-4: (it, the map of that stage)."""
        x = self.bn1(self.conv1(x))
        if self.stem_relu:  # the release omits this ReLU (docs/original-system.md §12.8); kept as an option
            x = self.relu(x)
        x = self.maxpool(x)
        kept = x
        for layer, stage in enumerate((self.layer1, self.layer2, self.layer3, self.layer4), start=1):
            x = stage(x)
            if layer == map_layer:
                kept = x
        return (x, kept) if map_layer else x


def load_resnet_weights(trunk: ResNetTrunk, path: str | os.PathLike, arch: str) -> None:
    """Copy a local torchvision ResNet state dict into `trunk` (fc skipped)."""
    fix = "pass a local torchvision ResNet state dict (torch.save(model.state_dict(), path)) or no pretrained path"
    state = {k: v for k, v in read_state_dict(path, "pretrained weights file", fix).items() if not k.startswith("fc.")}
    problems = state_dict_mismatch(state, trunk.state_dict())
    if problems:
        raise StreidError(
            f"pretrained weights {path} do not fit a torchvision {arch} ({problems}); "
            f"pass a state dict saved from torchvision.models.{arch}"
        )
    trunk.load_state_dict(state, strict=False)


class ReIDEncoder(nn.Module):
    """ResNet re-ID encoder with BN-neck and an ID classifier or a Siamese same/different head.

    num_classes: ID classifier outputs (0 = no classifier). With emb_type="Siamese" the head is
        always binary, so num_classes must be 0 or 2. The release sized that head with the number
        of IDs although its targets are only 0/1; here it has exactly the two outputs it needs.
    test_bn: eval descriptor is the BN-neck output instead of the pre-BN pooled feature
        (ST-ReIDNet uses the pre-BN feature, the default).
    stem_relu: False reproduces the release's stem without ReLU (release-compat only).
    """

    def __init__(
        self,
        arch: str = "resnet50",
        num_classes: int = 0,
        *,
        pretrained: str | os.PathLike | None = None,
        last_stride: int = 1,
        pool: str = "max",
        use_bn: bool = True,
        test_bn: bool = False,
        stem_relu: bool = True,
        emb_type: str = "Single",
    ) -> None:
        super().__init__()
        if arch not in _BUILDERS:
            raise StreidError(f"unknown encoder arch {arch!r}; choose one of {', '.join(ARCHS)}")
        if last_stride not in (1, 2):
            raise StreidError(f"last stride must be 1 or 2, got {last_stride}")
        if pool not in POOLS:
            raise StreidError(f"unknown pooling {pool!r}; choose 'max' or 'avg'")
        if emb_type not in EMB_TYPES:
            raise StreidError(f"unknown embedding type {emb_type!r}; choose 'Single' or 'Siamese'")
        if test_bn and not use_bn:
            raise StreidError("test_bn needs the BN-neck: set use_bn as well, or drop test_bn")
        if emb_type == "Siamese":
            if num_classes not in (0, 2):
                raise StreidError(f"the Siamese head is binary (same/different); got num_classes={num_classes}")
            num_classes = 2
        if num_classes < 0:
            raise StreidError(f"num_classes must be >= 0, got {num_classes}")

        self.arch, self.emb_type, self.test_bn = arch, emb_type, test_bn
        self.num_classes = num_classes
        self.trunk = ResNetTrunk(arch, last_stride, stem_relu)
        if pretrained is not None:
            load_resnet_weights(self.trunk, pretrained, arch)
        self.pool = nn.AdaptiveMaxPool2d(1) if pool == "max" else nn.AdaptiveAvgPool2d(1)
        dim = self.trunk.out_channels
        self.bn_neck: nn.BatchNorm1d | None = None
        if use_bn:
            self.bn_neck = nn.BatchNorm1d(dim)
            nn.init.ones_(self.bn_neck.weight)
            nn.init.zeros_(self.bn_neck.bias)
            self.bn_neck.bias.requires_grad_(False)  # BN-neck shifts nothing (BNNeck convention)
        self.classifier: nn.Linear | None = None
        if num_classes:
            self.classifier = nn.Linear(dim, num_classes, bias=False)
            nn.init.normal_(self.classifier.weight, std=0.001)
        self._batchnorm_frozen = False

    @property
    def feature_dim(self) -> int:
        """Length of the descriptor: 512 for ResNet-18/34, 2048 for ResNet-50/101/152."""
        return self.trunk.out_channels

    def embed(self, x: Tensor, feature_map: Tensor | None = None) -> EncoderOutput:
        """Features and logits regardless of train/eval mode (the discriminator always needs logits).
        feature_map: `trunk(x)` when the caller has it already."""
        feat = self.pool(self.trunk(x) if feature_map is None else feature_map).flatten(1)
        bn_feat = self.bn_neck(feat) if self.bn_neck is not None else feat
        logits = None
        if self.classifier is not None:
            if self.emb_type == "Siamese":
                n = bn_feat.shape[0]
                if n % 2:
                    raise ValueError(f"the Siamese head pairs the two halves of the batch; got odd batch {n}")
                logits = self.classifier((bn_feat[: n // 2] - bn_feat[n // 2:]).pow(2))
            else:
                logits = self.classifier(bn_feat)
        return EncoderOutput(feat, bn_feat, logits)

    def forward(self, x: Tensor, map_layer: int = 0) -> EncoderOutput | Tensor | tuple:
        """Train mode: EncoderOutput; eval mode: the descriptor. map_layer 1-4: (that, the map of
        the trunk's stage `map_layer`; 4 is the one the descriptor is pooled from), for G's
        painting of the source's limbs."""
        if map_layer and map_layer not in MAP_LAYERS:
            raise ValueError(f"map_layer must be one of {MAP_LAYERS} (or 0: none), got {map_layer}")
        feature_map, kept = self.trunk(x, map_layer) if map_layer else (self.trunk(x), None)
        if self.training:
            out = self.embed(x, feature_map)
        else:
            out = self.pool(feature_map).flatten(1)
            if self.test_bn:
                out = self.bn_neck(out)
        return (out, kept) if map_layer else out

    def param_groups(self, lr: float, backbone_lr_mult: float, *, train_bn_neck: bool = True) -> list[dict]:
        """Optimizer groups: ResNet trunk at lr * backbone_lr_mult, new layers (classifier, BN-neck) at lr.

        Each group carries its own "lr", so LambdaLR/StepLR scale both from their own base (the
        release's "lr_mult" keys were overwritten by its scheduler). train_bn_neck=False leaves the
        BN-neck weight out of the optimiser, as the release did (its weight then stays 1).
        Frozen parameters (the BN-neck bias) are never included.
        """
        backbone = [p for p in self.trunk.parameters() if p.requires_grad]
        head: list[nn.Parameter] = []
        if self.classifier is not None:
            head += [p for p in self.classifier.parameters() if p.requires_grad]
        if self.bn_neck is not None and train_bn_neck:
            head += [p for p in self.bn_neck.parameters() if p.requires_grad]
        groups = [{"params": backbone, "lr": lr * backbone_lr_mult, "lr_mult": backbone_lr_mult, "name": "backbone"}]
        if head:
            groups.append({"params": head, "lr": lr, "lr_mult": 1.0, "name": "head"})
        return groups

    def freeze_batchnorm(self, frozen: bool = True) -> None:
        """Keep every BatchNorm layer in eval mode (running statistics fixed) while `frozen`.

        Contract: the freeze is persistent — later `.train()` calls leave BatchNorm layers in eval
        mode until `freeze_batchnorm(False)`. Calling it at every epoch start (as the release does
        with set_bn_fix) is therefore harmless. Affine BN parameters keep requires_grad and train.
        """
        self._batchnorm_frozen = frozen
        self.train(self.training)

    @property
    def batchnorm_frozen(self) -> bool:
        return self._batchnorm_frozen

    def train(self, mode: bool = True) -> "ReIDEncoder":
        super().train(mode)
        if self._batchnorm_frozen:
            for module in self.modules():
                if isinstance(module, _BATCHNORM_TYPES):
                    module.eval()
        return self
