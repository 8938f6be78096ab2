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
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..data.keypoints import KeypointConvention
from ..data.pose import joint_radius, limb_width, mask_scale

PAINTING_CHANNELS = 4  # RGB in G's target range [-1, 1], then the strokes' coverage in {0, 1}
PEAK_PRESENT = 0.5  # a heat-map peak above it is a present joint (peaks are 1, absent joints all 0)


class LimbPainting(nn.Module):
    """painting(pose maps (N, K, H, W), feature (N, F)) -> (N, 4, H, W): RGB strokes and coverage."""

    def __init__(self, conv: KeypointConvention, reid_feature_size: int, image_size: tuple[int, int]) -> None:
        super().__init__()
        height, width = image_size
        scale = mask_scale(height, width)
        strokes = [(a, b, limb_width(thick, scale) / 2.0)
                   for limbs, thick in ((conv.thin_limbs, False), (conv.thick_limbs, True)) for a, b in limbs]
        strokes += [(j, j, float(joint_radius(j == conv.head, scale))) for j in range(conv.num_joints)]
        self.register_buffer("start", torch.tensor([s[0] for s in strokes]), persistent=False)
        self.register_buffer("end", torch.tensor([s[1] for s in strokes]), persistent=False)
        self.register_buffer("radius_sq", torch.tensor([s[2] ** 2 for s in strokes]), persistent=False)
        self.colour = nn.Linear(reid_feature_size, 3 * len(strokes))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Colours all 0: a grey silhouette, until G's losses teach the map from E's feature."""
        nn.init.zeros_(self.colour.weight)
        nn.init.zeros_(self.colour.bias)

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

    def forward(self, pose: Tensor, feature: Tensor, masks: Tensor | None = None) -> Tensor:
        """masks: `stroke_masks(pose)` when the caller has them already (a pose drawn twice)."""
        n = pose.shape[0]
        masks = self.stroke_masks(pose) if masks is None else masks
        colours = self.colour(feature.reshape(n, -1)).view(n, -1, 3).float()
        count = masks.sum(dim=1, keepdim=True)
        painted = torch.einsum("nlhw,nlc->nchw", masks, colours) / count.clamp_min(1.0)
        return torch.cat([painted, (count > 0).float()], dim=1).to(pose.dtype)
