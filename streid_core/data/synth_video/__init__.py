"""SynthDance-MOT: dance videos with tracking ground truth, from the SynthDance generator.

Several dancers per frame perform one shared choreography, change formation (crossing paths and
hiding one another), and walk out of the frame and back in. Each sequence is written in the
MOTChallenge layout with ground-truth boxes, identities and visibility, and the detections of a
simulated detector (jittered boxes, misses, false alarms). The dancers are new people, drawn from
a random stream of their own and numbered from 10000, apart from any `streid synth` identity.

    from streid_core.data.synth_video import VideoConfig, generate_videos
    result = generate_videos("data/synthdance-mot", VideoConfig(seed=0), workers=2)

Modules: config (parameters), exits (walking out of the frame and back), sequence (one video:
cast, motion, full-frame rendering, ground truth), detector (the simulated detector), writer
(files on disk).
"""
from .config import DetectorNoise, VideoConfig
from .writer import IDENTITY_BASE, SequenceResult, VideoSetResult, exit_spans, generate_videos

__all__ = ["IDENTITY_BASE", "DetectorNoise", "SequenceResult", "VideoConfig", "VideoSetResult", "exit_spans", "generate_videos"]
