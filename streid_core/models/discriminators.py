"""The two discriminators of ST-ReIDNet (docs/original-system.md §2.3, §2.4).

Di judges a single image real/fake with a ResNet-18 (the re-ID encoder with one output logit).
Dp is a PatchGAN judging whether an image agrees with a pose: its input is [pose maps ‖ image].
Both return raw logits (BCE-with-logits is applied in losses.py).
"""
from __future__ import annotations

import os

import torch
from torch import Tensor, nn

from streid_core.models.generator import check_norm, init_gan_weights, norm_layer
from streid_core.models.reid import ReIDEncoder


class ImageDiscriminator(nn.Module):
    """Di: ResNet-18, last stride 2, global max pool, BN-neck, bias-free Linear(512 -> 1).

    forward(images (N,3,H,W)) -> logits (N, 1), in train and eval mode alike.
    pretrained: optional path to a local torchvision resnet18 state dict (the paper starts from
    ImageNet weights). stem_relu=False reproduces the release's stem without ReLU.
    """

    def __init__(self, *, pretrained: str | os.PathLike | None = None, stem_relu: bool = True) -> None:
        super().__init__()
        self.encoder = ReIDEncoder(
            "resnet18", num_classes=1, pretrained=pretrained, last_stride=2, pool="max",
            use_bn=True, stem_relu=stem_relu)

    def forward(self, images: Tensor) -> Tensor:
        return self.encoder.embed(images).logits

    def freeze_batchnorm(self, frozen: bool = True) -> None:
        """Keep all BatchNorm layers (trunk and BN-neck) in eval mode while `frozen`.

        Persistent: `.train()` does not undo it; `freeze_batchnorm(False)` does. The trainer calls
        it at every epoch start, as the release did; affine BN parameters still train.
        """
        self.encoder.freeze_batchnorm(frozen)

    @property
    def batchnorm_frozen(self) -> bool:
        return self.encoder.batchnorm_frozen


class PoseDiscriminator(nn.Module):
    """Dp: 3-layer PatchGAN on [pose maps (K) ‖ image (3)], pose first.

    conv4x4/2 (K+3 -> 64) LReLU; conv4x4/2 64->128, norm, LReLU; conv4x4/2 128->256, norm, LReLU;
    conv4x4/1 256->512, norm, LReLU; conv4x4/1 512->1. At 256x128 the output is (N, 1, 30, 14).
    """

    def __init__(self, num_keypoints: int, *, norm: str = "batch") -> None:
        super().__init__()
        check_norm(norm)
        self.num_keypoints = num_keypoints
        bias = norm != "batch"
        layers: list[nn.Module] = [nn.Conv2d(num_keypoints + 3, 64, 4, 2, 1), nn.LeakyReLU(0.2)]
        for cin, cout, stride in ((64, 128, 2), (128, 256, 2), (256, 512, 1)):
            layers += [nn.Conv2d(cin, cout, 4, stride, 1, bias=bias), norm_layer(norm, cout), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(512, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)
        init_gan_weights(self)

    def forward(self, pose: Tensor, images: Tensor) -> Tensor:
        if pose.shape[1] != self.num_keypoints or pose.shape[0] != images.shape[0] \
                or pose.shape[2:] != images.shape[2:]:
            raise ValueError(
                f"pose maps {tuple(pose.shape)} and images {tuple(images.shape)} must share N, H, W "
                f"and pose must have {self.num_keypoints} channels")
        return self.model(torch.cat([pose, images], dim=1))
