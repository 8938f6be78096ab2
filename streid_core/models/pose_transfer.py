"""Pose transfer with a trained ST-ReIDNet: the person of a source image, redrawn in a target pose.

    from streid_core.models.pose_transfer import PoseTransfer, transfer
    image = transfer("checkpoints/my_session/checkpoint.pth.tar", "person.jpg", "pose.txt")
    model = PoseTransfer("checkpoints/my_session/checkpoint.pth.tar")   # load once ...
    frames = model.render_sequence("person.jpg", poses)                 # ... render many

The source image is resized to the model's canvas and encoded by E (its pre-BN feature, the
re-ID descriptor); the target keypoints become Gaussian heat-maps (sigma as in training) on
the same canvas; G draws the image. The output has the model's canvas size (e.g. 128x256).
A G whose limb painting reads the source's limbs (`--paint-from source-limbs`) also needs the
source's keypoints (`source_keypoints`, in the source image's pixels or a pose file), under which
it reads E's feature map. `amp="bf16"` (or "fp16" on CUDA) runs E and G under autocast; on the CPU each network's first
batch is checked against float32 first (numerics.Precision), falling back to float32 with one line.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Union

import numpy as np
import torch
from PIL import Image

from ..data.images import load_image
from ..data.keypoints import KeypointConvention, convention, read_keypoints
from ..data.pose import keypoints_to_canvas, pose_maps
from ..data.transforms import resize, to_normalized_tensor
from ..device import resolve_device
from ..errors import StreidError
from ..numerics import Precision
from .loading import load_checkpoint
from .streidnet import StreidNetArchitecture

SourceImage = Union[str, os.PathLike, Image.Image]
Keypoints = Union[np.ndarray, Sequence[Sequence[float]], str, os.PathLike]


class PoseTransfer:
    """E and G of an ST-ReIDNet checkpoint (a run's checkpoint.pth.tar), in eval mode, run under
    the --amp mode `amp` (off, bf16, fp16; see the module doc)."""

    def __init__(self, checkpoint: str | os.PathLike, device: str = "cpu", amp: str = "off") -> None:
        self.device = resolve_device(device)
        self.precision = Precision(amp, self.device, "pose transfer")  # fp16 on the CPU fails before loading
        state = load_checkpoint(checkpoint)
        task = state.get("task") or {}
        networks = task.get("networks") or {}
        if "config" not in task or "G" not in networks:
            raise StreidError(
                f"{checkpoint}: holds no ST-ReIDNet generator (model_best.pth.tar keeps only the encoder, and a "
                "baseline run has none); pass the checkpoint.pth.tar of a `streid train` run")
        self.config = StreidNetArchitecture.from_config(task["config"])
        self.convention = convention(self.config.keypoints)
        self.encoder = self.config.build_encoder()
        self.generator = self.config.build_generator(self.encoder.feature_dim)
        self.encoder.load_state_dict(networks["E"])
        self.generator.load_state_dict(networks["G"])
        self.encoder.to(self.device).eval()
        self.generator.to(self.device).eval()

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the canvas the model was trained on and renders."""
        return self.config.height, self.config.width

    def _image(self, source: SourceImage) -> Image.Image:
        if isinstance(source, Image.Image):
            return source.convert("RGB")
        return load_image(os.fspath(source))

    def _keypoints(self, keypoints: Keypoints, conv: str | KeypointConvention | None) -> np.ndarray:
        conv = self.convention if conv is None else (convention(conv) if isinstance(conv, str) else conv)
        if conv.num_joints != self.convention.num_joints:
            raise StreidError(
                f"keypoints in {conv.name} ({conv.num_joints} joints), but the model was trained on "
                f"{self.convention.name} ({self.convention.num_joints}); pass keypoints in {self.convention.name}")
        if isinstance(keypoints, (str, os.PathLike)):
            return read_keypoints(keypoints, conv)
        kps = np.asarray(keypoints, dtype=np.float32)
        if kps.shape != (conv.num_joints, 2):
            raise StreidError(f"target keypoints have shape {kps.shape}; expected ({conv.num_joints}, 2) x, y rows")
        return kps

    @property
    def needs_source_keypoints(self) -> bool:
        """Whether rendering needs the source's keypoints (G paints the source's limbs)."""
        return self.generator.reads_source_limbs

    @torch.inference_mode()
    def appearance(self, source_image: SourceImage, source_keypoints: Keypoints | None = None,
                   keypoints_convention: str | KeypointConvention | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What G keeps of the person: E's (1, D) feature of the source image, and for a G that
        paints the source's limbs E's map under them (1, L, D) (else None)."""
        height, width = self.image_size
        original = self._image(source_image)
        image, _ = resize(original, None, height, width)
        x = to_normalized_tensor(image)[None].to(self.device)
        if not self.needs_source_keypoints:
            return self.precision.run(lambda: self.encoder(x), "E"), None
        if source_keypoints is None:
            raise StreidError("this checkpoint's G paints the source's limbs (--paint-from source-limbs): pass the "
                              "source image's keypoints too (source_keypoints=..., `streid transfer --source-pose FILE`)")
        feature, feature_map = self.precision.run(lambda: self.encoder(x, map_layer=self.generator.part_layer), "E")
        source_pose = self.pose_input(source_keypoints, original.size, keypoints_convention)
        return feature, self.generator.part_features(feature_map.float(), source_pose)

    def pose_input(self, target_keypoints: Keypoints, source_size: tuple[int, int],
                   keypoints_convention: str | KeypointConvention | None = None) -> torch.Tensor:
        """(1, K, H, W) heat-maps of keypoints given in a source canvas of `source_size` = (width, height)."""
        height, width = self.image_size
        kps = keypoints_to_canvas(self._keypoints(target_keypoints, keypoints_convention), source_size, height, width)
        maps = pose_maps(kps, height, width)
        if not maps.any():  # G would still draw, a person in no pose at all
            name = os.fspath(target_keypoints) if isinstance(target_keypoints, (str, os.PathLike)) else "keypoints"
            raise StreidError(f"{name}: no joint lies on the {width}x{height} canvas (every joint missing or outside "
                              f"the source image's {source_size[0]}x{source_size[1]} pixels); give a pose with "
                              "visible joints, in the source image's pixels")
        return torch.from_numpy(maps)[None].to(self.device)

    @torch.inference_mode()
    def _draw(self, appearance: tuple[torch.Tensor, torch.Tensor | None], pose: torch.Tensor) -> Image.Image:
        feature, parts = appearance
        drawn = self.precision.run(lambda: self.generator(pose, feature, parts=parts), "G")
        image = self.config.generated_to_unit(drawn[0].cpu())
        return Image.fromarray((image.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8))

    def render(self, source_image: SourceImage, target_keypoints: Keypoints,
               keypoints_convention: str | KeypointConvention | None = None,
               source_keypoints: Keypoints | None = None) -> Image.Image:
        """The source person in the target pose, an RGB image of the model's canvas size.
        target_keypoints: (K, 2) x, y in the source image's pixels (NaN = missing), or a pose file;
        source_keypoints: the source's own, in its pixels (needed when `needs_source_keypoints`)."""
        image = self._image(source_image)
        return self._draw(self.appearance(image, source_keypoints, keypoints_convention),
                          self.pose_input(target_keypoints, image.size, keypoints_convention))

    def render_sequence(self, source_image: SourceImage, poses: Iterable[Keypoints],
                        keypoints_convention: str | KeypointConvention | None = None,
                        source_keypoints: Keypoints | None = None) -> list[Image.Image]:
        """The source person in each pose (E runs once)."""
        image = self._image(source_image)
        appearance = self.appearance(image, source_keypoints, keypoints_convention)
        return [self._draw(appearance, self.pose_input(p, image.size, keypoints_convention)) for p in poses]


def transfer(checkpoint: str | os.PathLike, source_image: SourceImage, target_keypoints: Keypoints,
             keypoints_convention: str | KeypointConvention | None = None, device: str = "cpu",
             amp: str = "off", source_keypoints: Keypoints | None = None) -> Image.Image:
    """One pose transfer: load the checkpoint's E and G and render (see PoseTransfer.render)."""
    return PoseTransfer(checkpoint, device, amp).render(source_image, target_keypoints, keypoints_convention,
                                                        source_keypoints)
