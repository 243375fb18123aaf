"""Inside the SE modules: record their excitations with forward hooks, or switch them off.

Every SE module ends in a sigmoid (``gate``) whose output, N x C x 1 x 1, is the excitation:
the weight each channel of the block's output is multiplied by. A forward hook on the gate
sees it without changing anything; a hook that returns ones turns the module into the
identity (scale 1): a stage's SE blocks switched off without retraining. Both kinds of hook are removed when their ``with`` block ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from .layers import SqueezeExcitation

# The blocks the SENet paper plots (Hu et al., TPAMI 2019, Fig. 6): the last of stages 1-3 and every
# block of stage 4, its SE_2_3, SE_3_4, SE_4_6, SE_5_1, SE_5_2 and SE_5_3 (its stages count conv1).
PAPER_BLOCKS = ("stage1.3", "stage2.4", "stage3.6", "stage4.1", "stage4.2", "stage4.3")


def se_modules(model: nn.Module) -> dict[str, SqueezeExcitation]:
    """The model's SE modules by block, in order: ``"stage1.1"`` ... ``"stage4.3"`` (stage, block,
    counted from 1). The paper names block b of our stage s ``SE_{s+1}_{b}``: its stages count conv1."""
    found = {}
    for stage in (1, 2, 3, 4):
        for block, module in enumerate(getattr(model, f"stage{stage}", []), start=1):
            if isinstance(getattr(module, "se", None), SqueezeExcitation):
                found[f"stage{stage}.{block}"] = module.se
    if not found:
        raise ValueError("the model has no SE modules (a ResNet-50, or SE switched off in every stage)")
    return found


def _pick(model: nn.Module, names: Iterable[str] | None) -> dict[str, SqueezeExcitation]:
    modules = se_modules(model)
    if names is None:
        return modules
    names = list(names)
    unknown = [name for name in names if name not in modules]
    if unknown:
        raise ValueError(f"no SE module {', '.join(map(repr, unknown))}; the model has: {', '.join(modules)}")
    return {name: modules[name] for name in names}


@contextmanager
def recording(model: nn.Module, names: Iterable[str] | None = None) -> Iterator[dict[str, list[torch.Tensor]]]:
    """While the block runs, every forward pass appends each SE module's excitations (N x C, on the
    CPU) to the list of its name in the dictionary yielded. ``names``: the modules to record (all)."""
    recorded: dict[str, list[torch.Tensor]] = {}
    handles = []
    for name, module in _pick(model, names).items():
        recorded[name] = []

        def keep(_gate, _inputs, output, store=recorded[name]):
            store.append(output.detach().flatten(1).float().cpu())

        handles.append(module.gate.register_forward_hook(keep))
    try:
        yield recorded
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def excitations(model: nn.Module, loader, names: Iterable[str] | None = None) -> tuple[dict[str, torch.Tensor],
                                                                                      torch.Tensor]:
    """Each SE module's excitations for every image of ``loader`` (name -> N x C), and the labels (N).

    The model is put in evaluation mode (batch norm with its running statistics) and stays so."""
    model.eval()
    labels = []
    with recording(model, names) as recorded:
        for images, batch_labels in loader:
            model(images)
            labels.append(batch_labels.cpu())
    return {name: torch.cat(batches) for name, batches in recorded.items()}, torch.cat(labels)


def class_means(excitation: torch.Tensor, labels: torch.Tensor, classes: int) -> torch.Tensor:
    """The mean excitation of each channel over the images of each class: N x C -> classes x C."""
    counts = torch.bincount(labels, minlength=classes).clamp_min(1).unsqueeze(1)
    sums = torch.zeros(classes, excitation.shape[1]).index_add_(0, labels, excitation)
    return sums / counts


def shuffled(labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The labels in a random order: classes that mean nothing, with the same number of images each.
    ``class_spread`` of them is what per-image differences alone give, the yardstick for the real one."""
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]


def class_spread(means: torch.Tensor) -> float:
    """How class-specific a module is: the standard deviation across classes of each channel's mean
    excitation, averaged over channels (0 when every class gets the same weights)."""
    return means.std(dim=0).mean().item()


def class_spreads(recorded: dict[str, torch.Tensor], labels: torch.Tensor, classes: int) -> dict[str, float]:
    """``class_spread`` of each module's excitations (name -> N x C, as ``excitations`` gives them) over
    the images' ``labels`` (N)."""
    return {name: class_spread(class_means(weights, labels, classes)) for name, weights in recorded.items()}


@contextmanager
def switched_off(model: nn.Module, stages: Iterable[int], fixed: dict[str, torch.Tensor] | None = None
                 ) -> Iterator[list[str]]:
    """While the block runs, the SE modules of ``stages`` scale every channel by 1 (no retraining);
    with ``fixed`` (name -> C weights, e.g. each channel's mean excitation) by those weights
    instead, the same for every image. Yields the modules' names."""
    stages = set(stages)
    if not stages <= {1, 2, 3, 4}:
        raise ValueError(f"stages must be among 1, 2, 3, 4, got {sorted(stages)}")
    modules = {name: module for name, module in se_modules(model).items() if stage_of(name) in stages}
    without = sorted(stages - {stage_of(name) for name in modules})
    if without:
        raise ValueError(f"stage(s) {', '.join(map(str, without))} of this model have no SE modules to switch off")
    missing = sorted(set(modules) - set(fixed)) if fixed is not None else []
    if missing:
        raise ValueError(f"fixed has no weights for {', '.join(missing)}")
    handles = []
    for name, module in modules.items():
        def replace(_gate, _inputs, output, weights=None if fixed is None else fixed[name]):
            if weights is None:
                return torch.ones_like(output)
            return weights.to(output).view(1, -1, 1, 1).expand_as(output)

        handles.append(module.gate.register_forward_hook(replace))
    try:
        yield list(modules)
    finally:
        for handle in handles:
            handle.remove()


def hook_count(model: nn.Module) -> int:
    """Forward hooks and pre-hooks registered on the model's modules (0 once every hook has been removed)."""
    return sum(len(module._forward_hooks) + len(module._forward_pre_hooks) for module in model.modules())


def stage_of(name: str) -> int:
    """``"stage4.2"`` -> 4."""
    return int(name.split(".")[0].removeprefix("stage"))
