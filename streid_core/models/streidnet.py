"""ST-ReIDNet's four networks (docs/original-system.md §2): E the re-ID encoder, G the
pose-guided generator, Di the image discriminator and Dp the pose discriminator, built from one
`StreidNetArchitecture`. Training builds them from its config (`StreidNetConfig.architecture()`),
pose transfer from the config stored in a checkpoint (`StreidNetArchitecture.from_config`)."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from torch import Tensor

from ..data.keypoints import convention
from .discriminators import ImageDiscriminator, PoseDiscriminator
from .generator import RELEASE_NGF, PoseGenerator
from .image_range import generated_to_unit
from .loading import EncoderConfig
from .reid import ReIDEncoder, stage_channels

_FROM_QUIRKS = ("stem_relu", "imagenet_targets")


@dataclass(frozen=True)
class StreidNetArchitecture:
    """What shapes E, G, Di and Dp (field names are those of the training config)."""

    num_classes: int  # training identities: E's ID classifier (emb_type Single)
    keypoints: str  # pose convention: the number of G's and Dp's pose channels
    arch: str
    emb_type: str
    last_stride: int
    height: int
    width: int
    norm: str
    drop: float
    connect_layers: int
    fuse_mode: str
    pose_feature_size: int
    ngf: int = RELEASE_NGF  # G's base width; checkpoints from before --ngf hold none
    paint_limbs: bool = False  # G's limb painting (--paint-limbs); older checkpoints hold none
    paint_from: str = "descriptor"  # where its colours come from (--paint-from); older checkpoints: descriptor
    paint_layer: int = 4  # the stage of E's trunk a source-limbs painting reads (--paint-layer)
    stem_relu: bool = True  # False: the release's ResNet stem without ReLU (E and Di)
    imagenet_targets: bool = False  # G learnt ImageNet-normalised targets (the release), not [-1, 1]

    @classmethod
    def from_config(cls, values: dict[str, Any]) -> "StreidNetArchitecture":
        """From an ST-ReIDNet training config as stored (`StreidNetConfig.to_dict()`, a checkpoint's
        task["config"]): its architecture fields, and the two release quirks that change the networks."""
        quirks = values.get("quirks") or {}
        names = [f.name for f in fields(cls) if f.name not in _FROM_QUIRKS]
        return cls(**{name: values[name] for name in names if name in values},
                   stem_relu=not quirks.get("stem_without_relu", False),
                   imagenet_targets=bool(quirks.get("imagenet_targets", False)))

    @property
    def num_keypoints(self) -> int:
        return convention(self.keypoints).num_joints

    def encoder_config(self) -> EncoderConfig:
        """E: ResNet, global max pooling, BN-neck; the pre-BN feature is the descriptor
        (docs/original-system.md §2.1). The same description goes into every checkpoint, so
        `load_encoder` rebuilds E exactly."""
        return EncoderConfig(
            arch=self.arch, last_stride=self.last_stride, pool="max", use_bn=True, test_bn=False,
            stem_relu=self.stem_relu, num_classes=self.num_classes if self.emb_type == "Single" else 2,
            emb_type=self.emb_type, height=self.height, width=self.width)

    def build_encoder(self, pretrained: str | None = None) -> ReIDEncoder:
        """E, its trunk from local ImageNet weights `pretrained` when given."""
        return self.encoder_config().build(pretrained=pretrained)

    def build_generator(self, reid_feature_size: int) -> PoseGenerator:
        """G: pose encoder + decoder fed with E's feature (docs/original-system.md §2.2)."""
        return PoseGenerator(
            self.num_keypoints, reid_feature_size, pose_feature_size=self.pose_feature_size,
            image_size=(self.height, self.width), fuse_mode=self.fuse_mode,
            connect_layers=self.connect_layers, norm=self.norm, dropout=self.drop, ngf=self.ngf,
            paint_limbs=convention(self.keypoints) if self.paint_limbs else None, paint_from=self.paint_from,
            paint_layer=self.paint_layer, part_feature_size=stage_channels(self.arch, self.paint_layer))

    def build_image_discriminator(self, pretrained: str | None = None) -> ImageDiscriminator:
        """Di: a ResNet-18 judging single images, from local ImageNet weights `pretrained` when given."""
        return ImageDiscriminator(pretrained=pretrained, stem_relu=self.stem_relu)

    def build_pose_discriminator(self) -> PoseDiscriminator:
        """Dp: a PatchGAN judging (pose, image) pairs."""
        return PoseDiscriminator(self.num_keypoints, norm=self.norm)

    def generated_to_unit(self, images: Tensor) -> Tensor:
        """G's output -> [0, 1] pixels (see image_range.generated_to_unit)."""
        return generated_to_unit(images, self.imagenet_targets)
