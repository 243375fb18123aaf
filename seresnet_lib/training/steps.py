"""How ``fit``'s epochs run their steps: in one process or several, compiled or not, in
float32 or bfloat16. The loop calls ``Steps`` and never asks which.

In one process, ``Steps`` calls ``train_one_epoch`` and ``evaluate`` on the model as they
are. In several (torchrun, ``distributed.py``) it also:

- wraps the model in DistributedDataParallel, which averages the processes' gradients;
- weighs each process's gradient by its share of the batch, so that uneven shares of a
  batch give the gradient of the whole batch's mean loss;
- with ``sync_bn``, takes batch norm's statistics over all processes;
- before evaluating, gives every process rank 0's batch-norm running statistics;
- adds the processes' losses and right answers, so that every image counts once.

On a GPU, cuDNN times each convolution's algorithms once and keeps the fastest while the
steps run (``cudnn.benchmark``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from . import distributed
from .config import TrainConfig
from .distributed import synchronize_batch_norm
from .epoch import evaluate, train_one_epoch


class Steps:
    """``with Steps(model, config, train_loader, test_loader) as steps``: ``steps.train_one_epoch``
    and ``steps.evaluate`` as ``fit`` calls them. The loaders must be made for this process's
    shard of each batch (``run_data`` does); ``sync_bn`` converts ``model``'s batch norm layers
    in place (the same parameters: an optimizer made before still updates them)."""

    def __init__(self, model: nn.Module, config: TrainConfig, train_loader, test_loader):
        _check_shards(train_loader, test_loader)
        if config.sync_bn and distributed.active():
            synchronize_batch_norm(model)
        self.model, self.config, self.train_loader = model, config, train_loader
        self.stepping = stepping_model(model, config)

    def __enter__(self) -> Steps:
        self._benchmark = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = self._benchmark or next(self.model.parameters()).is_cuda
        return self

    def __exit__(self, *error) -> None:
        torch.backends.cudnn.benchmark = self._benchmark

    def train_one_epoch(self, batches, optimizer: torch.optim.Optimizer) -> tuple[float, float]:
        """An epoch of ``batches`` (the training loader's, a progress bar around it, say): mean loss, accuracy."""
        if isinstance(self.stepping, _WeightedShares):
            self.stepping.weights = iter(self.train_loader.loss_weights())
        result = train_one_epoch(self.stepping, batches, optimizer, self.config.autocast_dtype)
        return _over_processes(result, self.train_loader)

    def evaluate(self, loader) -> tuple[float, float]:
        """Mean loss and accuracy over ``loader``, every process's share counted once."""
        if not self.config.sync_bn:
            distributed.copy_buffers_from_main(self.model)  # every process keeps rank 0's statistics
        return _over_processes(evaluate(self.model, loader, self.config.autocast_dtype), loader)


def stepping_model(model: nn.Module, config: TrainConfig) -> nn.Module:
    """What the training steps call: ``model`` itself; in DistributedDataParallel, its gradients
    weighed by each process's share, when several processes train; compiled if
    ``config.torch_compile``. Its weights are ``model``'s."""
    if not distributed.active():
        return torch.compile(model) if config.torch_compile else model
    parallel = DistributedDataParallel(model)
    return _WeightedShares(torch.compile(parallel) if config.torch_compile else parallel)


class _ScaleGradient(torch.autograd.Function):
    """The identity forward; backward multiplies the gradient by ``weight``."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.weight = weight
        return logits.view_as(logits)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.weight, None


class _WeightedShares(nn.Module):
    """DistributedDataParallel averages the processes' gradients, as if every share of a batch
    were as large as the others. Each training forward pass here multiplies the gradient that
    reaches the logits (N x classes) by the next of ``weights`` (``BatchLoader.loss_weights``:
    own share x processes / batch), so the average is the whole batch's mean-loss gradient."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module
        self.weights = iter(())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.module(images)
        return _ScaleGradient.apply(logits, next(self.weights)) if self.training else logits


def _over_processes(result: tuple[float, float], loader) -> tuple[float, float]:
    """A process's mean loss and accuracy over its shares of ``loader``'s batches, made the means
    over every process's images (unchanged in one process)."""
    if not distributed.active():
        return result
    images = sum(end - start for start, end in (loader.share(*bounds) for bounds in loader.batch_bounds()))
    loss, accuracy = result if images else (0.0, 0.0)  # a process may hold none of a small test set
    sums = torch.tensor([loss * images, round(accuracy * images), images], dtype=torch.float64,
                        device=loader.device)  # the summed loss, the right answers, the images
    loss_sum, correct, seen = distributed.sum_over_processes(sums).tolist()
    return loss_sum / seen, correct / seen


def _check_shards(train_loader, test_loader) -> None:
    """Refuse loaders that do not split the batches among the processes that train."""
    expected = distributed.shard()
    for role, loader in (("train_loader", train_loader), ("test_loader", test_loader)):
        shard = getattr(loader, "shard", (0, 1))
        if shard != expected:
            raise ValueError(f"{role} is made for shard {shard} (rank, processes), but this process is rank "
                             f"{expected[0]} of {expected[1]}; make both loaders with shard=({expected[0]}, "
                             f"{expected[1]}) (run_data does)")
