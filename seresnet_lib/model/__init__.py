"""The model the lessons teach (01-04, and 07 inside it): the stem, the bottleneck blocks,
squeeze-and-excitation, ResNet-50 and SE-ResNet-50; counting and shapes; the SE modules'
excitations recorded or switched off. It knows nothing of training, sweeps or the classroom."""

from .excitations import (PAPER_BLOCKS, class_means, class_spread, class_spreads, excitations, hook_count, recording,
                          se_modules, shuffled, switched_off)
from .layers import Bottleneck, SqueezeExcitation, Stem, conv1x1, conv3x3
from .measure import count_multiply_adds, count_parameters, evaluation_mode, output_shapes, stage_shapes
from .models import ResNet, ResNetConfig, make_stage, resnet50, seresnet50

__all__ = [
    "Bottleneck", "PAPER_BLOCKS", "ResNet", "ResNetConfig", "SqueezeExcitation", "Stem", "class_means",
    "class_spread", "class_spreads", "conv1x1", "conv3x3", "count_multiply_adds", "count_parameters",
    "evaluation_mode", "excitations", "hook_count", "make_stage", "output_shapes", "recording", "resnet50",
    "se_modules", "seresnet50", "shuffled", "stage_shapes", "switched_off",
]
