"""The release's module names mapped onto ours, so that the networks it saved (`<epoch>_net_E.pth`
and the others, its SingleNet and CustomPoseGenerator) load into streid's E, G and Di."""
from __future__ import annotations

from torch import Tensor

_ENCODER_PREFIXES = (("base_model.", "trunk."), ("bottleneck.", "bn_neck."))
_GENERATOR_PREFIXES = (
    ("en_conv1.", "encoder.0."), ("en_conv2.", "encoder.1."), ("en_conv3.", "encoder.2."),
    ("en_conv4.", "encoder.3."), ("en_conv5.", "encoder.4."), ("en_avg.", "pose_head."),
    ("de_avg.", "decoder_stem."), ("de_conv5.", "up_blocks.0."), ("de_conv4.", "up_blocks.1."),
    ("de_conv3.", "up_blocks.2."), ("de_conv2.", "up_blocks.3."), ("de_conv1.", "up_blocks.4."),
    ("W_reid.", "project_reid."), ("W_pose.", "project_pose."),
)


def _rename(state: dict[str, Tensor], prefixes: tuple[tuple[str, str], ...], under: str = "") -> dict[str, Tensor]:
    out = {}
    for key, value in state.items():
        for old, new in prefixes:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[under + key] = value
    return out


def from_release_names(state: dict[str, Tensor], role: str) -> dict[str, Tensor]:
    """The state dict of network `role` ("E", "G", "Di", "Dp") with the release's names replaced by
    streid's; keys that already are streid's pass unchanged (Dp's names are the same in both)."""
    if role == "E":
        return _rename(state, _ENCODER_PREFIXES)
    if role == "Di" and not any(k.startswith("encoder.") for k in state):  # the release's SingleNet
        return _rename(state, _ENCODER_PREFIXES, under="encoder.")
    if role == "G":
        return _rename(state, _GENERATOR_PREFIXES)
    return state
