"""The parts of a ResNet-50: the stem, the bottleneck block and squeeze-and-excitation.

Shapes are written N x C x H x W. Lessons 01-03 build each part by hand and then
check it against the class here.
"""

from __future__ import annotations

import torch
from torch import nn

from ..validate import check_choice, check_int

STEMS = ("imagenet", "cifar")
STRIDE_PLACEMENTS = ("1x1", "3x3")
SE_POSITIONS = ("standard", "pre", "post", "identity")  # the integration strategies of Hu et al., TPAMI, Fig. 5
EXPANSION = 4  # a bottleneck's output has 4x the channels of its inner width


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution without bias (a BatchNorm follows and has its own shift).

    N x in_channels x H x W -> N x out_channels x ceil(H/stride) x ceil(W/stride).
    """
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1, without bias.

    N x in_channels x H x W -> N x out_channels x ceil(H/stride) x ceil(W/stride).
    """
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


class Stem(nn.Module):
    """The first layers, which shrink the image before the residual stages.

    ``"imagenet"``: 7x7/2 conv, BN, ReLU, 3x3/2 max-pool (padding 1):
    N x 3 x 224 x 224 -> N x 64 x 112 x 112 -> N x 64 x 56 x 56.
    ``"cifar"``: 3x3/1 conv, BN, ReLU and no pool, for 32 x 32 images:
    N x 3 x 32 x 32 -> N x 64 x 32 x 32.
    """

    out_channels = 64

    def __init__(self, kind: str = "imagenet", in_channels: int = 3):
        super().__init__()
        check_choice("stem", kind, STEMS)
        check_int("in_channels", in_channels)
        self.kind = kind
        imagenet = kind == "imagenet"
        if imagenet:
            self.conv = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        else:
            self.conv = conv3x3(in_channels, 64)
        self.bn = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if imagenet else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.relu(self.bn(self.conv(x))))


class SqueezeExcitation(nn.Module):
    """Reweights the channels of a feature map by what the whole map contains.

    squeeze: global average pool, N x C x H x W -> N x C x 1 x 1;
    excitation: 1x1 conv C -> C/r, ReLU, 1x1 conv C/r -> C, sigmoid: weights in (0, 1);
    scale: the input times its channel weights, N x C x H x W.
    The two 1x1 convolutions on a 1 x 1 map are the paper's two fully connected layers.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        check_int("channels", channels)
        check_int("reduction", reduction)
        if reduction > channels:
            raise ValueError(
                f"reduction={reduction} is larger than the {channels} channels it squeezes; "
                f"allowed: 1 <= reduction <= {channels}"
            )
        self.reduction = reduction
        hidden = channels // reduction
        self.squeeze = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1)
        self.gate = nn.Sigmoid()

    def channel_weights(self, x: torch.Tensor) -> torch.Tensor:
        """The excitation alone: N x C x H x W -> N x C x 1 x 1, each in (0, 1)."""
        return self.gate(self.fc2(self.relu(self.fc1(self.squeeze(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.channel_weights(x)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 -> 1x1 expand (x4), plus a shortcut; optionally with SE.

    N x in_channels x H x W -> N x 4*width x ceil(H/stride) x ceil(W/stride).
    The shortcut is a projection (1x1 conv + BN: the "Conv Block") when the shape
    changes, else the input itself (the "Identity Block"). ``stride_at="1x1"`` puts
    the stride on the first 1x1 conv as in the original ResNet and Caffe SE-ResNet
    ("v1"); ``"3x3"`` puts it on the 3x3 conv as torchvision does ("v1.5").
    ``reduction`` adds squeeze-and-excitation, placed as ``se_position`` says:

    - ``"standard"``: on the residual branch, after its last BN, before the addition (SENet);
    - ``"pre"``: on the block's input, before the residual branch (the shortcut takes x as it is);
    - ``"post"``: on the block's output, after the addition and its ReLU;
    - ``"identity"``: on the shortcut, in parallel with the residual branch.
    """

    expansion = EXPANSION

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int = 1,
        reduction: int | None = None,
        stride_at: str = "1x1",
        se_position: str = "standard",
    ):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("width", width), ("stride", stride)):
            check_int(name, value)
        check_choice("stride_at", stride_at, STRIDE_PLACEMENTS)
        check_choice("se_position", se_position, SE_POSITIONS)
        self.se_position = se_position
        out_channels = width * EXPANSION
        stride_1x1, stride_3x3 = (stride, 1) if stride_at == "1x1" else (1, stride)
        self.conv1 = conv1x1(in_channels, width, stride_1x1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride_3x3)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        se_channels = in_channels if se_position == "pre" else out_channels
        self.se = nn.Identity() if reduction is None else SqueezeExcitation(se_channels, reduction)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        position = self.se_position
        shortcut = self.shortcut(x)
        out = self.se(x) if position == "pre" else x
        out = self.relu(self.bn1(self.conv1(out)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))  # no ReLU yet: the sum is activated below
        if position == "standard":
            out = self.se(out)
        elif position == "identity":
            shortcut = self.se(shortcut)
        out = self.relu(out + shortcut)
        return self.se(out) if position == "post" else out
