"""Pose-guided generator G (docs/original-system.md §2.2): encode a pose heat-map stack, fuse it
with a re-ID feature, decode an image.

Same layout as FD-GAN's / ST-ReIDNet's `CustomPoseGenerator`, without the noise input (the release
parses --noise-feature-size but builds G without noise). Spatial sizes follow the input: the pose
head and the first decoder layer use a (H/32, W/32) kernel, so any H, W divisible by 32 works
(256x128 as in the paper, 128x64 for quick demos).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from streid_core.data.keypoints import KeypointConvention
from streid_core.errors import StreidError
from streid_core.models.limb_painting import PAINTING_CHANNELS, LimbPainting

NORMS: tuple[str, ...] = ("batch", "instance", "none")
FUSE_MODES: tuple[str, ...] = ("cat", "add")
RELEASE_NGF = 64  # G's base width in the release (FD-GAN's ngf)


def encoder_channels(ngf: int) -> tuple[int, ...]:
    """Channels of the pose encoder levels e1..e5 (resolution H/2 .. H/32)."""
    return (ngf, ngf * 2, ngf * 4, ngf * 8, ngf * 8)


def norm_layer(norm: str, channels: int) -> nn.Module:
    """BatchNorm2d (affine), InstanceNorm2d (no affine) or nothing."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    return nn.Identity()


def check_norm(norm: str) -> None:
    if norm not in NORMS:
        raise StreidError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS)}")


def init_gan_weights(module: nn.Module) -> None:
    """Conv/ConvTranspose/Linear weights N(0, 0.02), BatchNorm weight N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def check_image_size(height: int, width: int) -> None:
    if height <= 0 or width <= 0 or height % 32 or width % 32:
        raise StreidError(f"image size {height}x{width} must have height and width divisible by 32 (e.g. 256x128, 128x64)")


class PoseGenerator(nn.Module):
    """G(pose maps (N,K,H,W), re-ID feature (N,F)) -> image (N,3,H,W) in [-1, 1].

    fuse_mode: "cat" concatenates [re-ID feature, pose code]; "add" projects both with bias-free
        linear maps to max(F, pose_feature_size) channels and sums them.
    connect_layers: 0-5 U-Net skips, as the release wires them: the n up-sampling blocks nearest
        the bottleneck receive the pose-encoder map of their resolution (n=1: H/32 level, ..., n=5:
        every level down to H/2, including the output block).
    ngf: base width; every layer's channels scale with it (64 in the release; the compute
        scales with its square, so 32 costs about a quarter).
    norm: "batch" (conv biases off), "instance" (no affine, biases on) or "none" (biases on).
        Instance norm is skipped on the 1x1 pose code, where per-sample normalisation of a single
        value is undefined (the release crashes there).
    paint_limbs: a keypoint convention (whose joints the pose maps hold) to add the limb painting
        (limb_painting.LimbPainting) to the pose encoder's input; None: the release's G.
    paint_from: where the painting's colours come from (limb_painting.PAINT_SOURCES): E's
        descriptor, or E's map under the source's own limbs (`part_features`, passed as `parts`);
        paint_layer, part_feature_size: which stage of E's trunk that map is, and its channels.
    The re-ID feature is used as given — never detached — so G's losses reach the encoder.
    """

    def __init__(
        self,
        num_keypoints: int,
        reid_feature_size: int = 2048,
        *,
        pose_feature_size: int = 128,
        image_size: tuple[int, int] = (256, 128),
        fuse_mode: str = "cat",
        connect_layers: int = 0,
        norm: str = "batch",
        dropout: float = 0.2,
        ngf: int = RELEASE_NGF,
        paint_limbs: KeypointConvention | None = None,
        paint_from: str = "descriptor",
        paint_layer: int = 4,
        part_feature_size: int | None = None,
    ) -> None:
        super().__init__()
        height, width = image_size
        check_image_size(height, width)
        check_norm(norm)
        if fuse_mode not in FUSE_MODES:
            raise StreidError(f"unknown fuse mode {fuse_mode!r}; choose 'cat' or 'add'")
        if not 0 <= connect_layers <= 5:
            raise StreidError(f"connect_layers must be between 0 and 5, got {connect_layers}")
        if num_keypoints <= 0 or reid_feature_size <= 0 or pose_feature_size <= 0:
            raise StreidError("num_keypoints, reid_feature_size and pose_feature_size must be positive")
        if ngf < 1:
            raise StreidError(f"G's base width ngf must be >= 1, got {ngf}")
        if not 0.0 <= dropout < 1.0:
            raise StreidError(f"dropout must be in [0, 1), got {dropout}")
        if paint_limbs is not None and paint_limbs.num_joints != num_keypoints:
            raise StreidError(f"paint_limbs: {paint_limbs.name} has {paint_limbs.num_joints} joints, the pose maps {num_keypoints}")

        self.num_keypoints, self.reid_feature_size = num_keypoints, reid_feature_size
        self.image_size = (height, width)
        self.fuse_mode, self.connect_layers = fuse_mode, connect_layers
        bias = norm != "batch"  # a bias before BatchNorm is redundant
        bottleneck_kernel = (height // 32, width // 32)

        # Pose encoder: e1 (no activation/norm before it), then e2..e5, then the 1x1 pose code.
        c = encoder_channels(ngf)
        self.limb_painting = None if paint_limbs is None else LimbPainting(
            paint_limbs, reid_feature_size, (height, width), paint_from, paint_layer, part_feature_size)
        pose_channels = num_keypoints + (0 if paint_limbs is None else PAINTING_CHANNELS)
        self.encoder = nn.ModuleList([nn.Conv2d(pose_channels, c[0], 4, 2, 1, bias=bias)])
        for cin, cout in zip(c[:-1], c[1:]):
            self.encoder.append(nn.Sequential(
                nn.LeakyReLU(0.2), nn.Conv2d(cin, cout, 4, 2, 1, bias=bias), norm_layer(norm, cout)))
        self.pose_head = nn.Sequential(
            nn.LeakyReLU(0.2),
            nn.Conv2d(c[-1], pose_feature_size, bottleneck_kernel, bias=bias),
            norm_layer("none" if norm == "instance" else norm, pose_feature_size),
        )

        if fuse_mode == "cat":
            fused = reid_feature_size + pose_feature_size
        else:
            fused = max(reid_feature_size, pose_feature_size)
            self.project_reid = nn.Linear(reid_feature_size, fused, bias=False)
            self.project_pose = nn.Linear(pose_feature_size, fused, bias=False)

        # Decoder: 1x1 -> (H/32, W/32), four x2 up-blocks to H/2, then the output block to H.
        self.decoder_stem = nn.Sequential(
            nn.ReLU(), nn.ConvTranspose2d(fused, ngf * 8, bottleneck_kernel, bias=bias),
            norm_layer(norm, ngf * 8), nn.Dropout(dropout))
        widths = (ngf * 8, ngf * 8, ngf * 4, ngf * 2, ngf)  # inputs of the five up-blocks
        skips = tuple(reversed(c))  # encoder channels at each up-block's input size
        self.up_blocks = nn.ModuleList()
        for i in range(5):
            cin = widths[i] + (skips[i] if i < connect_layers else 0)
            if i < 4:
                self.up_blocks.append(nn.Sequential(
                    nn.ReLU(), nn.ConvTranspose2d(cin, widths[i + 1], 4, 2, 1, bias=bias),
                    norm_layer(norm, widths[i + 1]), nn.Dropout(dropout)))
            else:
                self.up_blocks.append(nn.Sequential(
                    nn.ReLU(), nn.ConvTranspose2d(cin, 3, 4, 2, 1, bias=bias), nn.Tanh()))
        init_gan_weights(self)
        if self.limb_painting is not None:
            self.limb_painting.reset_parameters()

    @property
    def reads_source_limbs(self) -> bool:
        """Whether drawing needs the source's part features (`part_features`), not only E's descriptor."""
        return self.limb_painting is not None and self.limb_painting.reads_source_limbs

    @property
    def part_layer(self) -> int:
        """The stage of E's trunk whose map `part_features` reads (`encoder(x, map_layer=...)`); 0: none."""
        return self.limb_painting.part_layer if self.reads_source_limbs else 0

    def part_features(self, feature_map: Tensor, source_pose: Tensor, source_strokes: Tensor | None = None
                      ) -> Tensor | None:
        """What a source-limbs painting reads of the source: E's map of stage `part_layer`
        averaged under the source pose's strokes; None for a G that does not read them."""
        if not self.reads_source_limbs:
            return None
        strokes = self.limb_painting.stroke_masks(source_pose) if source_strokes is None else source_strokes
        return self.limb_painting.part_features(feature_map, strokes)

    def forward(self, pose: Tensor, reid_feature: Tensor, with_painting: bool = False,
                strokes: Tensor | None = None, parts: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """The drawing; with_painting: (drawing, the limb painting fed to the pose encoder), for
        the painting's own loss (losses.painting_l1_loss); strokes: the limb painting's
        `stroke_masks(pose)`, when the caller draws one pose several times; parts: the source's
        `part_features`, needed when the painting reads the source's limbs."""
        n, k, h, w = pose.shape
        if (k, h, w) != (self.num_keypoints, *self.image_size):
            raise ValueError(
                f"pose maps must be (N, {self.num_keypoints}, {self.image_size[0]}, {self.image_size[1]}), "
                f"got {tuple(pose.shape)}")
        reid_feature = reid_feature.reshape(n, -1)
        if reid_feature.shape[1] != self.reid_feature_size:
            raise ValueError(f"re-ID feature must have {self.reid_feature_size} values, got {reid_feature.shape[1]}")

        if with_painting and self.limb_painting is None:
            raise ValueError("with_painting needs a G built with paint_limbs")
        painting = None if self.limb_painting is None else self.limb_painting(pose, reid_feature, strokes, parts)
        levels = []
        x = pose if painting is None else torch.cat([pose, painting], dim=1)
        for layer in self.encoder:
            x = layer(x)
            levels.append(x)
        pose_code = self.pose_head(x).flatten(1)

        if self.fuse_mode == "cat":
            fused = torch.cat([reid_feature, pose_code], dim=1)
        else:
            fused = self.project_reid(reid_feature) + self.project_pose(pose_code)
        y = self.decoder_stem(fused[:, :, None, None])
        for i, block in enumerate(self.up_blocks):
            if i < self.connect_layers:
                y = torch.cat([y, levels[-1 - i]], dim=1)
            y = block(y)
        return (y, painting) if with_painting else y
