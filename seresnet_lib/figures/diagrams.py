"""Block diagrams of the network's parts, with the tensor shapes on the arrows.

The shapes are not typed in: each ``draw_*`` function runs the module it is given
on a zero input and reads the shapes off forward hooks (``measure.output_shapes``),
so a diagram always shows what the code computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch
from torch import nn

from ..model.measure import output_shapes, stage_shapes

_COLORS = {"conv": "#cfe2f3", "se": "#fce5cd", "pool": "#d9ead3", "act": "#eeeeee", "fc": "#ead1dc"}


@dataclass
class _Step:
    """One box of a diagram and the shape of the tensor that leaves it."""

    label: str
    shape: tuple[int, ...]
    color: str = _COLORS["conv"]


def _shape_text(shape: tuple[int, ...]) -> str:
    return " x ".join(str(s) for s in shape)


def _conv_text(conv: nn.Conv2d) -> str:
    """E.g. "7x7 conv, 64, stride 2, pad 3": kernel, filters, and stride and padding where not 1 and 0."""
    k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    return f"{k}x{k} conv, {conv.out_channels}" + (f", stride {s}" if s > 1 else "") + (f", pad {p}" if p else "")


def _draw_flow(
    input_shape: tuple[int, ...],
    steps: list[_Step],
    title: str,
    *,
    merge_after: int | None = None,
    merge_symbol: str = "+",
    side_label: str = "",
    merge_shape: tuple[int, ...] | None = None,
):
    """Draw boxes top to bottom, shapes on the arrows between them.

    With ``merge_after=i`` a side path leaves the input, carries ``side_label`` and
    joins the main path in a ``merge_symbol`` node placed after step ``i``; the
    merged tensor has ``merge_shape`` (by default the shape of step ``i``).
    """
    rows = len(steps) + (merge_after is not None)
    fig, ax = plt.subplots(figsize=(7.5, 1.4 + 0.85 * rows))
    ax.set_xlim(0, 1)
    ax.set_ylim(-rows - 1.0, 0.8)
    ax.axis("off")
    ax.set_title(title, fontsize=15, fontweight="bold")
    x, text = 0.38, dict(ha="center", va="center", fontsize=12)

    def arrow(y_from, y_to, shape):
        ax.annotate("", (x, y_to), (x, y_from), arrowprops=dict(arrowstyle="->", lw=1.5))
        ax.text(x + 0.03, (y_from + y_to) / 2, _shape_text(shape), ha="left", va="center", fontsize=11, color="#444")

    ax.text(x, 0.55, "input", **text)
    y, shape = 0.35, input_shape
    row = 0
    for i, step in enumerate(steps):
        row += 1
        arrow(y, -row + 0.3, shape)
        ax.add_patch(FancyBboxPatch((x - 0.25, -row - 0.28), 0.5, 0.56, boxstyle="round,pad=0.02",
                                    facecolor=step.color, edgecolor="#333"))
        ax.text(x, -row, step.label, **text)
        y, shape = -row - 0.3, step.shape
        if merge_after == i:
            row += 1
            arrow(y, -row + 0.2, shape)
            ax.text(x, -row, merge_symbol, fontsize=15, ha="center", va="center",
                    bbox=dict(boxstyle="circle", facecolor="white", edgecolor="#333", lw=1.5))
            side_x = 0.85
            ax.plot([x, side_x, side_x], [0.42, 0.42, -row], color="#c00", lw=1.5)
            ax.annotate("", (x + 0.05, -row), (side_x, -row), arrowprops=dict(arrowstyle="->", lw=1.5, color="#c00"))
            ax.text(side_x, -row / 2, side_label, ha="center", va="center", fontsize=11, color="#c00",
                    bbox=dict(facecolor="white", edgecolor="#c00", boxstyle="round"))
            y, shape = -row - 0.2, merge_shape or shape
    arrow(y, -rows - 0.7, shape)
    ax.text(x, -rows - 0.85, "output", **text)
    fig.tight_layout()
    return fig


def draw_stem(stem: nn.Module, input_shape: tuple[int, int, int] = (3, 224, 224)):
    """The stem: conv, BN + ReLU, max-pool (a ``Stem`` or any module with conv/bn/pool)."""
    shapes = output_shapes(stem, input_shape, ["conv", "pool"])
    pool = stem.pool
    if isinstance(pool, nn.Identity):
        pool_text = "no max-pool"
    else:
        pool_text = f"{pool.kernel_size}x{pool.kernel_size} max-pool, stride {pool.stride}, pad {pool.padding}"
    steps = [
        _Step(_conv_text(stem.conv), shapes["conv"]),
        _Step("BN, ReLU", shapes["conv"], _COLORS["act"]),
        _Step(pool_text, shapes["pool"], _COLORS["pool"]),
    ]
    kind = {"imagenet": "ImageNet ", "cifar": "CIFAR "}.get(getattr(stem, "kind", ""), "")
    return _draw_flow(input_shape, steps, f"The {kind}stem")


def draw_bottleneck(block: nn.Module, input_shape: tuple[int, int, int], title: str | None = None):
    """A bottleneck block: three convs on the main path, the shortcut on the side."""
    has_se = not isinstance(block.se, nn.Identity)
    shapes = output_shapes(block, input_shape, ["conv1", "conv2", "conv3"])
    steps = [
        _Step(_conv_text(block.conv1) + ", BN, ReLU", shapes["conv1"]),
        _Step(_conv_text(block.conv2) + ", BN, ReLU", shapes["conv2"]),
        _Step(_conv_text(block.conv3) + ", BN", shapes["conv3"]),
    ]
    if has_se:
        steps.append(_Step(f"squeeze-excitation, r = {block.se.reduction}",
                          shapes["conv3"], _COLORS["se"]))
    steps.append(_Step("ReLU", shapes[""], _COLORS["act"]))
    projection = not isinstance(block.shortcut, nn.Identity)
    side = _conv_text(block.shortcut[0]) + "\n+ BN" if projection else "identity"
    if title is None:
        title = ("SE-" if has_se else "") + ("Conv Block (projection shortcut)" if projection else "Identity Block")
    return _draw_flow(input_shape, steps, title, merge_after=len(steps) - 2, side_label=side)


def draw_squeeze_excitation(se: nn.Module, input_shape: tuple[int, int, int]):
    """The SE module: squeeze, excitation, and the channel-wise scale of the input."""
    c, hidden = se.fc1.in_channels, se.fc1.out_channels
    shapes = output_shapes(se, input_shape, ["squeeze", "fc1", "fc2", "gate"])
    steps = [
        _Step("squeeze: global average pool", shapes["squeeze"], _COLORS["pool"]),
        _Step(f"1x1 conv (FC), {c} -> {hidden}", shapes["fc1"]),
        _Step("ReLU", shapes["fc1"], _COLORS["act"]),
        _Step(f"1x1 conv (FC), {hidden} -> {c}", shapes["fc2"]),
        _Step("sigmoid: channel weights", shapes["gate"], _COLORS["se"]),
    ]
    return _draw_flow(input_shape, steps, f"Squeeze-and-Excitation, r = {se.reduction}", merge_after=4,
                     merge_symbol="×", side_label="the input x", merge_shape=shapes[""])


def draw_network(model: nn.Module, input_size: tuple[int, int, int] = (3, 224, 224)):
    """A ResNet at stage level: stem, four stages, pool, classifier."""
    shapes = stage_shapes(model, input_size)
    se = model.config.reduction is not None
    steps = [_Step(f"stem ({model.config.stem})", shapes["stem"], _COLORS["pool"])]
    for i in range(1, 5):
        stage = getattr(model, f"stage{i}")
        width = stage[0].conv1.out_channels
        kind = "SE-bottlenecks" if se else "bottlenecks"
        steps.append(_Step(f"stage{i}: {len(stage)} {kind}, width {width}", shapes[f"stage{i}"],
                          _COLORS["se"] if se else _COLORS["conv"]))
    steps.append(_Step("global average pool", shapes["pool"], _COLORS["pool"]))
    steps.append(_Step(f"fully connected, {model.config.num_classes}", shapes["fc"], _COLORS["fc"]))
    name = ("SE-" if se else "") + ("ResNet-50" if model.config.blocks == (3, 4, 6, 3) else "ResNet")
    return _draw_flow(input_size, steps, f"{name} on a {input_size[1]}x{input_size[2]} image")
