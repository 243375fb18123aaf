"""Measures of a model's answers: a running tally of loss and accuracy, predictions with
probabilities, per-class views."""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch
from torch import nn


class Tally:
    """Running loss and accuracy over batches, summed on the device: no host sync until ``result()``."""

    def __init__(self, device: torch.device):
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.seen = 0

    def add(self, logits: torch.Tensor, labels: torch.Tensor, loss_sum: torch.Tensor) -> None:
        """One batch: N x classes logits, N labels, and the batch's summed (not mean) loss."""
        self.loss_sum += loss_sum.detach()
        self.correct += (logits.argmax(1) == labels).sum()
        self.seen += len(labels)

    def result(self) -> tuple[float, float]:
        """Mean loss and accuracy over everything added (NaN for nothing added)."""
        if not self.seen:
            return math.nan, math.nan
        return self.loss_sum.item() / self.seen, self.correct.item() / self.seen


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Mixed precision on ``device`` in ``dtype`` (bfloat16, say), or nothing at all with None."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


@torch.no_grad()
def predict(model: nn.Module, loader) -> tuple[torch.Tensor, torch.Tensor]:
    """Class probabilities (N x classes) and true labels (N) for every image of ``loader``, on the CPU."""
    model.eval()
    probabilities, labels = [], []
    for images, batch_labels in loader:
        probabilities.append(model(images).softmax(1).cpu())
        labels.append(batch_labels.cpu())
    return torch.cat(probabilities), torch.cat(labels)


def confusion_matrix(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``matrix[true, predicted]`` counts, num_classes x num_classes."""
    return torch.bincount(labels * num_classes + predicted, minlength=num_classes**2).view(num_classes, num_classes)


def per_class_accuracy(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The fraction of each class's images predicted right (NaN for a class with no images)."""
    matrix = confusion_matrix(predicted, labels, num_classes).double()
    return (matrix.diag() / matrix.sum(1)).float()


def share_of_mistakes_within_groups(matrix: torch.Tensor, classes: tuple[str, ...],
                                    groups: dict[str, tuple[str, ...]]) -> float:
    """The fraction of the mistakes in a confusion ``matrix`` whose predicted class lies in the
    true class's group (``groups``: name -> class names; each class in exactly one). With no
    mistakes at all, 1.0."""
    group_of = {name: group for group, members in groups.items() for name in members}
    missing = [name for name in classes if name not in group_of]
    if missing:
        raise ValueError(f"classes {missing} are in none of the groups {list(groups)}")
    if sum(map(len, groups.values())) != len(group_of):
        raise ValueError(f"a class is in more than one of the groups {dict(groups)}")
    same = torch.tensor([[group_of[t] == group_of[p] for p in classes] for t in classes])
    mistakes = matrix.clone()
    mistakes.fill_diagonal_(0)
    total = mistakes.sum().item()
    return mistakes[same].sum().item() / total if total else 1.0
