"""Same weights in, same logits out: our models against timm and torchvision."""

import re

import pytest
import timm
import torch
import torchvision
from torch import nn

from seresnet_lib import SqueezeExcitation, resnet50, seresnet50
from seresnet_lib.classroom.checks import randomize_batchnorm

ATOL = 1e-4


def translate(state_dict: dict, rules: list[tuple[str, str]]) -> dict:
    """Rename the keys of a state dict with regex (pattern, replacement) rules."""
    renamed = {}
    for key, value in state_dict.items():
        for pattern, replacement in rules:
            key = re.sub(pattern, replacement, key)
        renamed[key] = value
    return renamed


TO_TIMM_SENET = [
    (r"^stem\.conv\.", "layer0.conv1."),
    (r"^stem\.bn\.", "layer0.bn1."),
    (r"^stage(\d)\.", r"layer\1."),
    (r"\.se\.", ".se_module."),
    (r"\.shortcut\.", ".downsample."),
    (r"^fc\.", "last_linear."),
]

TO_TORCHVISION = [
    (r"^stem\.conv\.", "conv1."),
    (r"^stem\.bn\.", "bn1."),
    (r"^stage(\d)\.", r"layer\1."),
    (r"\.shortcut\.", ".downsample."),
]


def assert_same_logits(ours: nn.Module, reference: nn.Module, rules, input_size=224):
    torch.manual_seed(0)
    randomize_batchnorm(ours)
    reference.load_state_dict(translate(ours.state_dict(), rules), strict=True)
    ours.eval(), reference.eval()
    x = torch.randn(2, 3, input_size, input_size)
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    assert got.shape == expected.shape
    assert got.abs().max() > 1e-2  # the comparison is not between two near-zero outputs
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


def test_seresnet50_matches_timm_legacy_seresnet50():
    torch.manual_seed(1)
    ours = seresnet50(1000)
    reference = timm.create_model("legacy_seresnet50", pretrained=False, num_classes=1000)
    # timm keeps Caffe's max-pool (ceil_mode=True, no padding) so that converted Caffe
    # weights still fit. At 112 -> 56 both give the same size, but the windows are
    # shifted by one pixel, so the outputs differ. The paper's stem, and ours, pads by 1:
    # align this one weightless layer so the comparison covers everything else.
    reference.pool0 = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    assert_same_logits(ours, reference, TO_TIMM_SENET)


def test_caffe_max_pool_alignment_matters():
    """Without the pool alignment above, the two models do disagree (so the test means something)."""
    torch.manual_seed(1)
    ours = seresnet50(1000)
    reference = timm.create_model("legacy_seresnet50", pretrained=False, num_classes=1000)
    with pytest.raises(AssertionError, match="not close"):
        assert_same_logits(ours, reference, TO_TIMM_SENET)


TO_TIMM_RESNET = [
    (r"^stem\.conv\.", "conv1."),
    (r"^stem\.bn\.", "bn1."),
    (r"^stage(\d)\.", r"layer\1."),
    (r"\.shortcut\.", ".downsample."),
]


def test_seresnet50_v1_5_matches_timm_seresnet50():
    """timm's own seresnet50 puts the stride on the 3x3 and SE (with bias) before the addition."""
    torch.manual_seed(4)
    ours = seresnet50(1000, stride_at="3x3")
    assert_same_logits(ours, timm.create_model("seresnet50", pretrained=False), TO_TIMM_RESNET)


def test_resnet50_v1_5_matches_torchvision():
    torch.manual_seed(2)
    ours = resnet50(1000, stride_at="3x3")
    assert_same_logits(ours, torchvision.models.resnet50(weights=None), TO_TORCHVISION)


def test_stride_placement_changes_the_function():
    """The v1 model loaded into torchvision's v1.5 layout computes something else."""
    torch.manual_seed(2)
    ours = resnet50(1000, stride_at="1x1")
    with pytest.raises(AssertionError, match="not close"):
        assert_same_logits(ours, torchvision.models.resnet50(weights=None), TO_TORCHVISION)


def test_se_module_matches_torchvision_ops():
    torch.manual_seed(3)
    ours = SqueezeExcitation(256, reduction=16)
    reference = torchvision.ops.SqueezeExcitation(256, 256 // 16)
    reference.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(4, 256, 14, 14)
    torch.testing.assert_close(ours(x), reference(x), atol=ATOL, rtol=0)
