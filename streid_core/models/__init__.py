"""Networks: the re-ID encoder, the pose-guided generator and the two discriminators."""
from streid_core.models.discriminators import ImageDiscriminator, PoseDiscriminator
from streid_core.models.generator import FUSE_MODES, NORMS, PoseGenerator, init_gan_weights
from streid_core.models.reid import ARCHS, EMB_TYPES, POOLS, EncoderOutput, ReIDEncoder, load_resnet_weights

__all__ = [
    "ARCHS",
    "EMB_TYPES",
    "FUSE_MODES",
    "NORMS",
    "POOLS",
    "EncoderOutput",
    "ImageDiscriminator",
    "PoseDiscriminator",
    "PoseGenerator",
    "ReIDEncoder",
    "init_gan_weights",
    "load_resnet_weights",
]
