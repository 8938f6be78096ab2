"""The torch Dataset that turns Records into training and evaluation tensors
(docs/original-system.md §1.1, §1.2, §5).

Each item is a dict:
  image      (3, H, W) E's input, ImageNet-normalised (randomly erased when `eraser`)
  target     (3, H, W) the clean image after the same geometric transforms (reconstruction target)
  pose       (K, H, W) Gaussian heat-maps                          (with_pose)
  mask       (1, H, W) binary skeleton mask                        (with_mask)
  keypoints  (K, 2) x, y on the canvas, integer pixels, NaN missing (when a convention is given)
  label      classifier index from `labels` (-1 for identities outside it), pid, camid, index

Modes:
  baseline_train  random sized crop -> eraser -> horizontal flip -> normalise   (§1.1)
  streid_train    resize -> horizontal flip (image, keypoints, so maps and mask) -> eraser on the
                  E input only; the target stays clean                          (§1.2)
  test            resize -> normalise (no eraser, no flip)

release_compat: the release's eraser (erases with probability (1 + erase_prob) / 2, patch pasted
at its own size) and flips that mirror the joints without swapping left/right channels.

Randomness: each item draws from its own random.Random seeded with (seed, epoch, index), so an
item is the same whichever DataLoader worker loads it and a resumed run replays it. Workers hold
their own copy of the dataset, so `set_epoch` must reach that copy (a fresh iterator without
persistent workers copies it anew; training/loader.py tags each index with its epoch instead).
An index that a sampler draws twice in one epoch gets the same augmentation both times.
"""
from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..errors import StreidError
from .images import load_image
from .keypoints import convention, load_keypoints
from .pose import POSE_AUGS, augmented_pose_maps, skeleton_mask, snap_to_canvas
from .records import Record
from .transforms import horizontal_flip, random_erase, random_sized_rect_crop, resize, to_normalized_tensor

TRANSFORM_MODES = ("baseline_train", "streid_train", "test")
FLIP_PROB = 0.5


class ReidImageDataset(Dataset):
    def __init__(
        self,
        records: Sequence[Record],
        labels: Mapping[int, int],
        transform_mode: str,
        height: int = 256,
        width: int = 128,
        keypoints: str | None = None,
        with_pose: bool = False,
        with_mask: bool = False,
        pose_aug: str = "no",
        eraser: bool = False,
        erase_prob: float = 0.5,
        release_compat: bool = False,
        seed: int = 0,
    ) -> None:
        if transform_mode not in TRANSFORM_MODES:
            raise StreidError(f"unknown transform mode {transform_mode!r}; use one of {', '.join(TRANSFORM_MODES)}")
        if pose_aug not in POSE_AUGS:
            raise StreidError(f"unknown pose augmentation {pose_aug!r}; use one of {', '.join(POSE_AUGS)}")
        if (with_pose or with_mask) and keypoints is None:
            raise StreidError("pose maps and skeleton masks need keypoints; this dataset has no pose files (keypoints=none)")
        if not 0.0 <= erase_prob <= 1.0:
            raise StreidError(f"erase probability {erase_prob} is outside [0, 1]")
        self.records = list(records)
        self.labels = dict(labels)
        self.mode = transform_mode
        self.height = height
        self.width = width
        self.conv = convention(keypoints) if keypoints is not None else None
        self.with_pose = with_pose
        self.with_mask = with_mask
        self.pose_aug = pose_aug
        self.eraser = eraser and transform_mode != "test"
        self.erase_prob = erase_prob
        self.release_compat = release_compat
        self.seed = seed
        self.epoch = 0
        if with_pose or with_mask:
            for record in self.records:
                if record.pose_path is None:
                    raise StreidError(
                        f"{record.path}: no pose file for this image, but pose maps/masks were asked for; "
                        "add its poses/ file or train without pose input"
                    )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def _keypoints(self, record: Record) -> np.ndarray | None:
        if self.conv is None:
            return None
        if record.pose_path is None:
            return np.full((self.conv.num_joints, 2), np.nan, dtype=np.float32)
        return load_keypoints(record.pose_path, self.conv)

    def _erase(self, image: Image.Image, rng: random.Random) -> Image.Image | None:
        """The erased copy of `image`, or None when the eraser is off or chose not to erase."""
        if not self.eraser:
            return None
        erased, box = random_erase(image, rng, self.erase_prob, self.release_compat)
        return erased if box is not None else None

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        rng = random.Random(f"{self.seed}/{self.epoch}/{index}")
        image = load_image(record.path)
        kps = self._keypoints(record)

        if self.mode == "baseline_train":
            image, kps = random_sized_rect_crop(image, kps, self.height, self.width, rng)
        else:
            image, kps = resize(image, kps, self.height, self.width)
        if kps is not None:
            # joints sit on whole pixels from here on, as in the original loader; flips stay exact
            kps = snap_to_canvas(kps, self.height, self.width)

        swap = not self.release_compat
        erased = None
        if self.mode == "streid_train":
            if rng.random() < FLIP_PROB:
                image, kps = horizontal_flip(image, kps, self.conv, swap_joints=swap)
            erased = self._erase(image, rng)
        elif self.mode == "baseline_train":
            erased = self._erase(image, rng)
            if rng.random() < FLIP_PROB:
                image, kps = horizontal_flip(image, kps, self.conv, swap_joints=swap)
                if erased is not None:
                    erased, _ = horizontal_flip(erased, None, None)

        target = to_normalized_tensor(image)
        item: dict[str, Any] = {
            "image": target if erased is None else to_normalized_tensor(erased),
            "target": target,
            "label": self.labels.get(record.pid, -1),
            "pid": record.pid,
            "camid": record.camid,
            "index": index,
        }
        if kps is not None:
            item["keypoints"] = torch.from_numpy(kps)
            if self.with_pose:
                item["pose"] = torch.from_numpy(augmented_pose_maps(kps, self.height, self.width, self.pose_aug, rng))
            if self.with_mask:
                item["mask"] = torch.from_numpy(skeleton_mask(kps, self.height, self.width, self.conv))
        return item
