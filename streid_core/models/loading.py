"""Reading trained networks back: a streid checkpoint (the file `training.checkpoint` writes) with
its format check, `EncoderConfig` (stored in every checkpoint) and `load_encoder`, what
evaluation, export and tracking use; and the weights of one ST-ReIDNet network from any file
that holds them (`load_network`: a streid checkpoint, the release's `<epoch>_net_X.pth`, an
open-reid checkpoint), what --net*-pretrain and stage 1 and 2 use.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import StreidError
from .release_weights import from_release_names
from .reid import ARCHS, EMB_TYPES, POOLS, ReIDEncoder
from .torch_file import first_line, load_torch_file, read_state_dict, state_dict_mismatch

FORMAT = "streid-checkpoint"
VERSION = 1


@dataclass
class EncoderConfig:
    """Everything `ReIDEncoder` needs, plus the input size it was trained at."""

    arch: str = "resnet50"
    last_stride: int = 1
    pool: str = "max"
    use_bn: bool = True
    test_bn: bool = False
    stem_relu: bool = True
    num_classes: int = 0
    emb_type: str = "Single"
    height: int = 256
    width: int = 128

    def build(self, pretrained: str | None = None):
        """A fresh `ReIDEncoder` with this architecture (weights from `pretrained` if given)."""
        return ReIDEncoder(
            self.arch, self.num_classes, pretrained=pretrained, last_stride=self.last_stride,
            pool=self.pool, use_bn=self.use_bn, test_bn=self.test_bn, stem_relu=self.stem_relu,
            emb_type=self.emb_type,
        )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "EncoderConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    @classmethod
    def from_checkpoint(cls, values: Any, path: str | os.PathLike) -> "EncoderConfig":
        """`from_dict` of a checkpoint's encoder_config, every value checked: a crafted or
        damaged file is a StreidError naming it, never a TypeError deep inside the model."""
        if not isinstance(values, dict):
            raise StreidError(f"{path}: the checkpoint's encoder_config is not a mapping; the file is damaged, "
                              "use another checkpoint")
        config = cls.from_dict(values)
        problems = []
        for name, allowed in (("arch", ARCHS), ("pool", POOLS), ("emb_type", EMB_TYPES), ("last_stride", (1, 2))):
            if getattr(config, name) not in allowed or isinstance(getattr(config, name), bool):
                problems.append(f"{name}={getattr(config, name)!r}")
        for name in ("use_bn", "test_bn", "stem_relu"):
            if not isinstance(getattr(config, name), bool):
                problems.append(f"{name}={getattr(config, name)!r}")
        for name, low in (("num_classes", 0), ("height", 16), ("width", 8)):
            value = getattr(config, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                problems.append(f"{name}={value!r}")
        if problems:
            raise StreidError(f"{path}: the checkpoint's encoder_config is invalid ({', '.join(problems)}); the file "
                              "is damaged or crafted, use another checkpoint")
        return config

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a streid checkpoint on the CPU (weights_only). Anything else is a StreidError."""
    path = Path(path)
    state = load_torch_file(path, "checkpoint", "pass the checkpoint.pth.tar or model_best.pth.tar of a streid run")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        hint = " (an open-reid/original checkpoint holds only weights: retrain with streid)" if (
            isinstance(state, dict) and "state_dict" in state) else ""
        raise StreidError(f"{path}: not a streid checkpoint{hint}")
    version = state.get("version")
    if not _is_int(version) or version < 1:
        raise StreidError(f"{path}: checkpoint version {version!r} is not a version number; the file is damaged, "
                          "use another checkpoint")
    if version > VERSION:
        raise StreidError(f"{path}: checkpoint version {version} is newer than this streid understands; update streid")
    epoch = state.get("epoch", 0)  # a weights-only file may have none; resume requires it
    if not _is_int(epoch) or epoch < 0:
        raise StreidError(f"{path}: checkpoint epoch {epoch!r} is not a number of epochs; the file is damaged, "
                          "use another checkpoint")
    return state


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def load_encoder(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, tuple[int, int]]:
    """Rebuild the inference encoder of any streid checkpoint (baseline or ST-ReIDNet).

    Returns the encoder in eval mode on `device` and the (height, width) it was trained at.
    """
    state = load_checkpoint(path)
    if "encoder" not in state or "encoder_config" not in state:
        raise StreidError(f"{path}: checkpoint has no encoder; it was not written by a streid trainer")
    config = EncoderConfig.from_checkpoint(state["encoder_config"], path)
    encoder = config.build()
    if not isinstance(state["encoder"], dict):
        raise StreidError(f"{path}: the checkpoint's encoder is not a state dict; the file is damaged, use another one")
    try:
        encoder.load_state_dict(state["encoder"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise StreidError(f"{path}: encoder weights do not match its encoder_config ({first_line(exc)}); "
                          "the file is damaged, use another checkpoint") from None
    return encoder.to(device).eval(), (config.height, config.width)


def read_network_state(path: str | os.PathLike, role: str, flag: str) -> dict[str, torch.Tensor]:
    """The state dict of ST-ReIDNet network `role` ("E", "G", "Di", "Dp") in `path`: a plain
    state dict (the release's `<epoch>_net_X.pth`), an open-reid {"state_dict": ...} checkpoint,
    or a streid checkpoint (its encoder for E, a baseline run's too, else the ST-ReIDNet task's
    network `role`). `flag` names the option that gave the path in errors."""
    fix = f"pass the saved net_{role} weights"
    if not path or not os.path.isfile(path):
        raise StreidError(f"{flag} {path or '(empty)'}: file not found; {fix}")

    def streid_network(obj: Any) -> Any:
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            return obj
        if role == "E" and isinstance(obj.get("encoder"), dict):
            return obj["encoder"]
        networks = (obj.get("task") or {}).get("networks") or {}
        if role not in networks:
            raise StreidError(f"{flag} {path}: this streid checkpoint holds no net_{role} (model_best.pth.tar keeps "
                              f"only the encoder); pass the ST-ReIDNet run's checkpoint.pth.tar or <epoch>_net_{role}.pth")
        return networks[role]

    return read_state_dict(path, f"{flag} file", fix, unwrap=streid_network)


def load_network(net: nn.Module, path: str | os.PathLike, role: str, flag: str) -> None:
    """Load network `role` from `path` into `net`, accepting the release's module names; weights
    that do not fit are a StreidError naming `flag`."""
    state = from_release_names(read_network_state(path, role, flag), role)
    problems = state_dict_mismatch(state, net.state_dict())
    if problems:
        raise StreidError(
            f"{flag} {path}: does not fit net_{role} as configured ({problems}); "
            "check --arch/--emb-type/--norm/--fuse-mode/--connect-layers/--pose-feature-size and the dataset")
    net.load_state_dict(state, strict=False)
