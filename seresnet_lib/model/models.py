"""ResNet-50 and SE-ResNet-50, assembled from the parts in ``layers``.

    image N x 3 x 224 x 224
    stem    -> N x   64 x 56 x 56
    stage1  -> N x  256 x 56 x 56   (3 bottlenecks, width  64)
    stage2  -> N x  512 x 28 x 28   (4 bottlenecks, width 128)
    stage3  -> N x 1024 x 14 x 14   (6 bottlenecks, width 256)
    stage4  -> N x 2048 x  7 x  7   (3 bottlenecks, width 512)
    pool    -> N x 2048 x  1 x  1
    fc      -> N x num_classes
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..validate import check_bool, check_choice, check_int
from .layers import EXPANSION, SE_POSITIONS, STEMS, STRIDE_PLACEMENTS, Bottleneck, Stem

DEFAULT_REDUCTION = 16  # SE's reduction ratio r in the paper's SE-ResNet-50


@dataclass(frozen=True)
class ResNetConfig:
    """Everything that defines one network; checked when created.

    ``reduction=None`` builds a plain ResNet, an integer r adds squeeze-and-excitation
    with reduction ratio r to every bottleneck of the stages in ``se_stages`` (numbered 1-4),
    placed in the block as ``se_position`` says (see ``Bottleneck``). ``zero_init_residual`` starts the scale
    of each block's last BN at zero, so that every block begins as the identity
    (Goyal et al., 2017; torchvision's option of the same name): only the initial
    weights change, not the architecture.
    """

    blocks: tuple[int, int, int, int] = (3, 4, 6, 3)
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    num_classes: int = 1000
    reduction: int | None = None
    stem: str = "imagenet"
    stride_at: str = "1x1"
    zero_init_residual: bool = False
    se_stages: tuple[int, ...] = (1, 2, 3, 4)
    se_position: str = "standard"

    def __post_init__(self):
        for name in ("blocks", "widths"):
            values = getattr(self, name)
            if not isinstance(values, (tuple, list)) or len(values) != 4:
                raise ValueError(f"{name} must give 4 stages, e.g. (3, 4, 6, 3), got {values!r}")
            for i, value in enumerate(values):
                check_int(f"{name}[{i}]", value)
            object.__setattr__(self, name, tuple(values))  # lists (from YAML, say) become tuples
        check_int("num_classes", self.num_classes)
        check_choice("stem", self.stem, STEMS)
        check_choice("stride_at", self.stride_at, STRIDE_PLACEMENTS)
        check_bool("zero_init_residual", self.zero_init_residual)
        check_choice("se_position", self.se_position, SE_POSITIONS)
        stages = self.se_stages
        if (not isinstance(stages, (tuple, list)) or not stages or len(set(stages)) != len(stages)
                or not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 4 for s in stages)):
            raise ValueError(f"se_stages must name one or more of the stages 1, 2, 3, 4, each once, e.g. (4,); "
                             f"got {stages!r}")
        object.__setattr__(self, "se_stages", tuple(sorted(stages)))
        if self.reduction is not None:
            check_int("reduction", self.reduction)
            narrowest = min(self.se_channels())
            if self.reduction > narrowest:
                raise ValueError(
                    f"reduction={self.reduction} is larger than the {narrowest} channels of the "
                    f"narrowest SE module; allowed: 1 <= reduction <= {narrowest}"
                )

    def stage_inputs(self) -> list[int]:
        """The channels entering each of the four stages."""
        return [Stem.out_channels] + [width * EXPANSION for width in self.widths[:3]]

    def se_channels(self) -> list[int]:
        """The channels of every place an SE module sits (with ``reduction`` set)."""
        channels = []
        for stage in self.se_stages:
            out = self.widths[stage - 1] * EXPANSION
            first = self.stage_inputs()[stage - 1] if self.se_position == "pre" else out
            channels += [first] + [out] * (self.blocks[stage - 1] - 1)
        return channels


def make_stage(in_channels: int, width: int, blocks: int, stride: int, **block_options) -> nn.Sequential:
    """One Conv Block (projection shortcut, carries the stride) then identity blocks.

    N x in_channels x H x W -> N x 4*width x H/stride x W/stride.
    """
    check_int("blocks", blocks)
    out_channels = width * EXPANSION
    layers = [Bottleneck(in_channels, width, stride, **block_options)]
    layers += [Bottleneck(out_channels, width, 1, **block_options) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNet(nn.Module):
    """A bottleneck ResNet: stem, four stages, global average pool, linear classifier.

    N x 3 x H x W -> N x num_classes logits.
    """

    def __init__(self, config: ResNetConfig = ResNetConfig()):
        super().__init__()
        self.config = config
        blocks, widths, inputs = config.blocks, config.widths, config.stage_inputs()

        def stage(number: int, stride: int) -> nn.Sequential:
            se = config.reduction if number in config.se_stages else None
            return make_stage(inputs[number - 1], widths[number - 1], blocks[number - 1], stride, reduction=se,
                              stride_at=config.stride_at, se_position=config.se_position)

        self.stem = Stem(config.stem)
        self.stage1 = stage(1, stride=1)
        self.stage2 = stage(2, stride=2)
        self.stage3 = stage(3, stride=2)
        self.stage4 = stage(4, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[3] * EXPANSION, config.num_classes)
        self._init_weights()

    def _init_weights(self):
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, Bottleneck) and self.config.zero_init_residual:
                nn.init.zeros_(module.bn3.weight)  # the branch adds nothing yet: the block is ReLU(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_image_batch(x)
        x = self.stem(x)
        x = self.stage1(x)
        x = self.stage2(x)
        x = self.stage3(x)
        x = self.stage4(x)
        x = self.pool(x).flatten(1)
        return self.fc(x)


def _check_image_batch(x: torch.Tensor) -> None:
    """Raise ValueError unless ``x`` is a batch of RGB images, N x 3 x H x W."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"expected a torch.Tensor of shape N x 3 x H x W, got {type(x).__name__}")
    if x.ndim == 4 and x.shape[1] == 3:
        return
    shape = " x ".join(str(s) for s in x.shape)
    message = f"expected a batch of RGB images of shape N x 3 x H x W, got a tensor of shape {shape}"
    if x.ndim == 3 and x.shape[0] == 3:
        message += "; for a single image add the batch dimension: x.unsqueeze(0)"
    elif x.ndim == 4 and x.shape[1] == 1:
        message += "; for greyscale images repeat the channel: x.expand(-1, 3, -1, -1)"
    raise ValueError(message)


def resnet50(num_classes: int = 1000, *, stem: str = "imagenet", stride_at: str = "1x1",
             zero_init_residual: bool = False) -> ResNet:
    """ResNet-50 (He et al., 2016): 25,557,032 parameters with 1000 classes."""
    return ResNet(ResNetConfig(num_classes=num_classes, stem=stem, stride_at=stride_at,
                               zero_init_residual=zero_init_residual))


def seresnet50(num_classes: int = 1000, reduction: int = DEFAULT_REDUCTION, *, stem: str = "imagenet",
               stride_at: str = "1x1", zero_init_residual: bool = False, se_stages: tuple[int, ...] = (1, 2, 3, 4),
               se_position: str = "standard") -> ResNet:
    """SE-ResNet-50 (Hu et al., 2018): 28,088,024 parameters with 1000 classes and r = 16.

    ``se_stages`` and ``se_position`` give the variants of the paper's ablations.
    """
    if reduction is None:
        raise ValueError("reduction must be a positive integer for SE-ResNet-50; use resnet50() for no SE")
    return ResNet(ResNetConfig(num_classes=num_classes, reduction=reduction, stem=stem, stride_at=stride_at,
                               zero_init_residual=zero_init_residual, se_stages=se_stages,
                               se_position=se_position))
