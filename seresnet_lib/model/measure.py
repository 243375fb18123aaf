"""What a model costs and what shapes flow through it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn


def count_parameters(model: nn.Module) -> int:
    """The number of learnable values (weights and biases, not BN running statistics)."""
    return sum(p.numel() for p in model.parameters())


@contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule in eval mode for the block, then give each its own mode back."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes.items():
            module.training = training


def _probe_input(model: nn.Module, input_size: Sequence[int]) -> torch.Tensor:
    """A zero batch of one ``input_size`` (C, H, W) tensor, on the model's device."""
    if not (isinstance(input_size, Sequence) and all(isinstance(s, int) and s > 0 for s in input_size)):
        raise ValueError(f"input_size must be a sequence of positive ints such as (3, 224, 224), got {input_size!r}")
    device = next(model.parameters()).device
    return torch.zeros(1, *input_size, device=device)


def _run_probe(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` in eval mode without gradients; a model that fails says so in one line.

    The error names the model, the input shape and the model's own error, without the
    long traceback through the measuring code (call the model directly to see that).
    """
    try:
        with evaluation_mode(model), torch.no_grad():
            return model(x)
    except Exception as error:  # whatever the model raises
        shape = " x ".join(map(str, x.shape))
        raise RuntimeError(f"{type(model).__name__} fails on a {shape} input: {type(error).__name__}: {error} "
                           f"(if it is an exercise, its self-check names the mistake)") from None


def count_multiply_adds(model: nn.Module, input_size: Sequence[int] = (3, 224, 224)) -> int:
    """Multiply-adds of one forward pass on one image of ``input_size`` (C, H, W).

    Counts what papers count when they quote "FLOPs" for ResNets: the multiply-adds of the
    convolutions (``nn.Conv2d``) and fully connected layers (``nn.Linear``). Each output value
    of a convolution takes in_channels / groups x kernel height x kernel width of them, each
    output of a linear layer in_features. Layers called as functions (``F.conv2d``, ``@``) are
    not seen; for networks built from these modules torch's ``FlopCounterMode`` gives the same
    total, at 2 FLOPs per multiply-add (the tests check it).
    """
    x = _probe_input(model, input_size)
    total = 0

    def count(module, _inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            height, width = module.kernel_size
            total += output.numel() * module.in_channels // module.groups * height * width
        else:
            total += output.numel() * module.in_features

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        _run_probe(model, x)
    finally:
        for hook in hooks:
            hook.remove()
    return total


def output_shapes(model: nn.Module, input_size: Sequence[int], names: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Output shapes (batch dimension dropped) of the named submodules, and of the model under "".

    The model runs once, in eval mode, on a zero input of ``input_size`` (C, H, W).
    """
    x = _probe_input(model, input_size)
    shapes: dict[str, tuple[int, ...]] = {}
    modules = dict(model.named_modules())

    def record(name):
        return lambda _module, _inputs, output: shapes.__setitem__(name, tuple(output.shape[1:]))

    hooks = [modules[name].register_forward_hook(record(name)) for name in names]
    try:
        shapes[""] = tuple(_run_probe(model, x).shape[1:])
    finally:
        for hook in hooks:
            hook.remove()
    return shapes


def stage_shapes(model: nn.Module, input_size: Sequence[int] = (3, 224, 224)) -> dict[str, tuple[int, ...]]:
    """The output shape (without the batch dimension) of each top-level part.

    >>> stage_shapes(seresnet50())["stage4"]
    (2048, 7, 7)
    """
    names = [name for name, _ in model.named_children()]
    shapes = output_shapes(model, input_size, names)
    return {name: shapes[name] for name in names}
