"""What a model costs and what shapes flow through it."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    """The number of learnable values (weights and biases, not BN running statistics)."""
    return sum(p.numel() for p in model.parameters())


def _probe(model: nn.Module, input_size: tuple[int, int, int]) -> torch.Tensor:
    """A zero image batch of one, on the model's device."""
    device = next(model.parameters()).device
    return torch.zeros(1, *input_size, device=device)


def count_multiply_adds(model: nn.Module, input_size: tuple[int, int, int] = (3, 224, 224)) -> int:
    """Multiply-adds of one forward pass on one image of ``input_size`` (C, H, W).

    Counts convolutions and matrix products, as papers do when they quote "FLOPs"
    for ResNets; torch's counter reports 2 FLOPs per multiply-add.
    """
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(_probe(model, input_size))
    model.train(was_training)
    return counter.get_total_flops() // 2


def stage_shapes(model: nn.Module, input_size: tuple[int, int, int] = (3, 224, 224)) -> dict[str, tuple[int, ...]]:
    """The output shape (without the batch dimension) of each top-level part.

    >>> stage_shapes(seresnet50())["stage4"]
    (2048, 7, 7)
    """
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [
        child.register_forward_hook(lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:])))
        for name, child in model.named_children()
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(_probe(model, input_size))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return shapes
