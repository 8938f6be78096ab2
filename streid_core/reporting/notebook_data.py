"""Datasets the notebooks need, created when absent so that any notebook runs alone on a fresh
checkout: a SynthDance preset is generated into the missing folder."""
from __future__ import annotations

import os
from pathlib import Path

from ..data.synth import SynthConfig
from ..errors import StreidError

# "smoke": ~100 images of 14 identities in 4 videos at 64x32, generated in about a second (the
# notebooks' default parameters); "default": what `streid synth` writes (60 identities, 12 videos).
SYNTH_PRESETS = {
    "smoke": SynthConfig(seed=3, height=64, width=32, ids=14, videos=4, frames=8),
    "default": SynthConfig(),
}


def ensure_dataset(data_dir: str | os.PathLike, name: str, synth_preset: str | None = "smoke",
                   workers: int = 1) -> Path:
    """The folder of dataset `name` under `data_dir` (matched case-insensitively); when it does
    not exist and `synth_preset` names a preset, SynthDance is generated there first."""
    from ..data.dataset import resolve_dataset_dir
    from ..data.synth import generate

    try:
        return resolve_dataset_dir(data_dir, name)
    except StreidError:
        if synth_preset is None:
            raise
    if synth_preset not in SYNTH_PRESETS:
        raise StreidError(f"synth_preset {synth_preset!r}: choose one of {', '.join(SYNTH_PRESETS)} (or None)")
    return generate(Path(data_dir) / name, SYNTH_PRESETS[synth_preset], workers=workers).root
