"""SynthDance: a procedural multi-person dance re-ID dataset in the DanceReID layout.

Every dancer of a video performs the same choreography at the same time, so pose is a trap:
identity is carried only by the person (outfit, hair, skin, build), which stays stable while
light, zoom, position, neighbours and blur drift over the video.

    from streid_core.data.synth import SynthConfig, generate
    result = generate("data/synthdance", SynthConfig(seed=0), workers=2)

Modules: config (parameters), plan (who dances where, splits, twins), appearance (identity),
skeleton (joint angles -> COCO-17 joints), choreography (shared dance + personal deviation),
formation (positions on stage), stage (venue, camera, light), render (drawing a person),
scene (crops of one video), writer (files on disk), smooth (slow random curves).
"""
from .config import SynthConfig
from .writer import DATASET_NAME, SynthResult, generate

__all__ = ["DATASET_NAME", "SynthConfig", "SynthResult", "generate"]
