"""One epoch, as lesson 05 writes it out: ``train_one_epoch`` and ``evaluate``, in one process.

``fit`` calls these two; training in several processes wraps them (``steps.py``) rather
than changing them.
"""

from __future__ import annotations

import torch
from torch import nn

from .metrics import Tally, autocast


def train_one_epoch(model: nn.Module, batches, optimizer: torch.optim.Optimizer,
                    autocast_dtype: torch.dtype | None = None) -> tuple[float, float]:
    """One pass over ``batches`` of (images N x 3 x H x W, labels N): the mean loss
    and accuracy.

    ``autocast_dtype``: the forward pass in mixed precision (bfloat16 needs no loss
    scaling).
    """
    # batch norm uses each batch's own statistics (and updates its running ones)
    model.train()
    device = next(model.parameters()).device
    tally = Tally(device)  # running sums of the loss and the right answers
    for images, labels in batches:
        with autocast(device, autocast_dtype):
            logits = model(images)  # forward pass: N x classes scores
            loss = nn.functional.cross_entropy(logits, labels)  # mean over the batch
        optimizer.zero_grad(set_to_none=True)  # forget the previous batch's gradients
        loss.backward()  # backward pass: the gradient of the loss for every weight
        # SGD: every weight takes a step against its (momentum-smoothed) gradient
        optimizer.step()
        tally.add(logits, labels, loss * len(labels))  # added up on the device: no wait
    return tally.result()  # one wait for the device, at the end of the epoch


@torch.no_grad()
def evaluate(model: nn.Module, loader, autocast_dtype: torch.dtype | None = None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` (in eval mode) over every batch of ``loader``.

    ``autocast_dtype``: run the model in mixed precision (the loss is computed in fp32).
    """
    model.eval()
    device = next(model.parameters()).device
    tally = Tally(device)
    for images, labels in loader:
        with autocast(device, autocast_dtype):
            logits = model(images)
        logits = logits.float()
        tally.add(logits, labels, nn.functional.cross_entropy(logits, labels, reduction="sum"))
    return tally.result()
