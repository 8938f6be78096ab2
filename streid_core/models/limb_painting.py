"""G's painted appearance input (`--paint-limbs`, not in the paper): the target pose's limb strokes,
each coloured by a linear map of E's feature.

In the release E's feature reaches G only at the 1x1 bottleneck, and the decoder must learn where
on the body each part of that code belongs. On a CPU budget it learns that for the dancers it
trained on and not for new ones (reports/transfer-curve). Painting puts the appearance where the
target pose has its limbs: every limb line and joint disc of the skeleton mask (the strokes of
`data.pose.skeleton_mask`, at the heat-maps' peaks) gets a colour = W feature + b, overlapping
strokes are averaged, and the painted image and its coverage go into G's pose encoder beside the
heat-maps. The discs give hands, feet and joints colours of their own.
The colours are a function of E's feature alone, so G's losses keep pushing E to describe the
person's appearance, which is the method's premise.

Two sources of the colours (`source`, the trainer's --paint-from):
  descriptor    one linear map of E's pooled descriptor gives every stroke's colour;
  source-limbs  a feature map of E (`part_layer`: 4, the one the descriptor is max-pooled from,
                or an earlier stage of E's trunk) is averaged under each stroke of the *source*
                image's own skeleton, and each stroke's colour is a linear map of its own part
                feature. The global pool keeps what is worn but not where. It needs the source's
                keypoints wherever G draws. How much of a new dancer's limb colours each reading
                tells: reports/transfer-curve, "E's map under the source's limbs".
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.keypoints import KeypointConvention
from ..data.pose import joint_radius, limb_width, mask_scale
from ..errors import StreidError

PAINTING_CHANNELS = 4  # RGB in G's target range [-1, 1], then the strokes' coverage in {0, 1}
PEAK_PRESENT = 0.5  # a heat-map peak above it is a present joint (peaks are 1, absent joints all 0)
PAINT_SOURCES = ("descriptor", "source-limbs")


class LimbPainting(nn.Module):
    """painting(pose maps (N, K, H, W), feature (N, F)) -> (N, 4, H, W): RGB strokes and coverage."""

    def __init__(self, conv: KeypointConvention, reid_feature_size: int, image_size: tuple[int, int],
                 source: str = "descriptor", part_layer: int = 4, part_feature_size: int | None = None) -> None:
        """part_layer, part_feature_size: the stage of E's trunk a source-limbs painting reads and
        its channels (default reid_feature_size: stage 4's)."""
        super().__init__()
        if source not in PAINT_SOURCES:
            raise StreidError(f"unknown painting source {source!r}; choose one of {', '.join(PAINT_SOURCES)}")
        self.source, self.part_layer = source, part_layer
        height, width = image_size
        scale = mask_scale(height, width)
        strokes = [(a, b, limb_width(thick, scale) / 2.0)
                   for limbs, thick in ((conv.thin_limbs, False), (conv.thick_limbs, True)) for a, b in limbs]
        strokes += [(j, j, float(joint_radius(j == conv.head, scale))) for j in range(conv.num_joints)]
        self.register_buffer("start", torch.tensor([s[0] for s in strokes]), persistent=False)
        self.register_buffer("end", torch.tensor([s[1] for s in strokes]), persistent=False)
        self.register_buffer("radius_sq", torch.tensor([s[2] ** 2 for s in strokes]), persistent=False)
        if source == "descriptor":
            self.colour = nn.Linear(reid_feature_size, 3 * len(strokes))
        else:  # one linear map per stroke, of that stroke's part feature
            self.part_weight = nn.Parameter(torch.empty(len(strokes), part_feature_size or reid_feature_size, 3))
            self.part_bias = nn.Parameter(torch.empty(len(strokes), 3))
        self.reset_parameters()

    @property
    def reads_source_limbs(self) -> bool:
        return self.source == "source-limbs"

    def reset_parameters(self) -> None:
        """Colours all 0: a grey silhouette, until G's losses teach the map from E's feature."""
        for weight in ((self.part_weight, self.part_bias) if self.reads_source_limbs
                       else (self.colour.weight, self.colour.bias)):
            nn.init.zeros_(weight)

    def part_features(self, feature_map: Tensor, source_strokes: Tensor) -> Tensor:
        """(N, L, D): E's (N, D, h, w) map averaged under each of the source's strokes
        (`stroke_masks(source pose)`, (N, L, H, W)), the strokes' coverage of each cell of the map
        as weights. A stroke the source lacks (a joint out of the frame) averages the whole map."""
        n, _, h, w = feature_map.shape
        weights = F.adaptive_avg_pool2d(source_strokes.to(feature_map.dtype), (h, w))  # (N, L, h, w)
        total = weights.sum(dim=(2, 3), keepdim=True)
        weights = torch.where(total > 0, weights / total.clamp_min(1e-12), 1.0 / (h * w))
        return torch.einsum("nlhw,ndhw->nld", weights, feature_map)

    @torch.no_grad()
    def stroke_masks(self, pose: Tensor) -> Tensor:
        """(N, L, H, W) float {0, 1}: every pixel within each stroke of the pose's present joints."""
        n, k, h, w = pose.shape
        peak, index = pose.reshape(n, k, h * w).float().max(dim=2)
        present = peak > PEAK_PRESENT
        x, y = (index % w).float(), torch.div(index, w, rounding_mode="floor").float()
        ax, ay, bx, by = x[:, self.start], y[:, self.start], x[:, self.end], y[:, self.end]  # (N, L)
        ok = present[:, self.start] & present[:, self.end]
        radius_sq = torch.where(ok, self.radius_sq, -1.0)[..., None, None]  # a missing joint: no pixel is that close
        dx, dy = (bx - ax)[..., None, None], (by - ay)[..., None, None]
        inverse_length_sq = 1.0 / (dx * dx + dy * dy).clamp_min(1e-6)
        px = torch.arange(w, device=pose.device, dtype=torch.float32).view(1, 1, 1, w) - ax[..., None, None]
        py = torch.arange(h, device=pose.device, dtype=torch.float32).view(1, 1, h, 1) - ay[..., None, None]
        # the segment's point nearest each pixel, as a fraction of it; the (N, L, H, W) work is in place
        along = (px * (dx * inverse_length_sq) + py * (dy * inverse_length_sq)).clamp_(0.0, 1.0)
        off_x = torch.addcmul(px, along, dx, value=-1.0).square_()
        off_y = torch.addcmul(py, along, dy, value=-1.0).square_()
        return off_x.add_(off_y).le_(radius_sq).float()

    def forward(self, pose: Tensor, feature: Tensor, masks: Tensor | None = None,
                parts: Tensor | None = None) -> Tensor:
        """masks: `stroke_masks(pose)` when the caller has them already (a pose drawn twice);
        parts: the source's `part_features`, which a source-limbs painting reads instead of `feature`."""
        n = pose.shape[0]
        masks = self.stroke_masks(pose) if masks is None else masks
        if self.reads_source_limbs:
            if parts is None:
                raise ValueError("this limb painting reads the source's part features: pass parts")
            colours = (torch.einsum("nld,ldc->nlc", parts, self.part_weight) + self.part_bias).float()
        else:
            colours = self.colour(feature.reshape(n, -1)).view(n, -1, 3).float()
        count = masks.sum(dim=1, keepdim=True)
        painted = torch.einsum("nlhw,nlc->nchw", masks, colours) / count.clamp_min(1.0)
        return torch.cat([painted, (count > 0).float()], dim=1).to(pose.dtype)
