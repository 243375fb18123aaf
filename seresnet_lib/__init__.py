"""SE-ResNet-50 from scratch: the library the notebook lessons import."""

from .layers import Bottleneck, SqueezeExcitation, Stem, conv1x1, conv3x3
from .measure import count_multiply_adds, count_parameters, stage_shapes
from .models import ResNet, ResNetConfig, make_stage, resnet50, seresnet50

__all__ = [
    "Bottleneck",
    "ResNet",
    "ResNetConfig",
    "SqueezeExcitation",
    "Stem",
    "conv1x1",
    "conv3x3",
    "count_multiply_adds",
    "count_parameters",
    "make_stage",
    "resnet50",
    "seresnet50",
    "stage_shapes",
]
