"""Training in several processes with PyTorch's DistributedDataParallel, as ``torchrun`` starts them.

    torchrun --nproc_per_node=4 -m seresnet_lib.training train notebooks/params/cifar10_strong.yaml

Every process holds the same model. Each takes its own share of every batch (the batch
loader's order and augmentations are drawn from the same seed in all of them), computes its
gradients, and DDP averages the gradients of all processes with an all-reduce before the
optimizer steps: the weights stay identical everywhere, and the global batch is
``batch_size`` as in a single process. Losses and accuracies are summed over the processes,
so every image counts once; only rank 0 prints and writes checkpoints and ``metrics.json``.

``torchrun`` tells each process its place through environment variables (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR, MASTER_PORT); ``setup()`` reads them. Without torchrun, nothing
here does anything, and training runs in one process.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch import nn


def _launched() -> bool:
    """True in a process that torchrun started as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """True once the process group is up with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def shard() -> tuple[int, int]:
    """(rank, processes): this process's place, as ``BatchLoader(shard=...)`` takes it; (0, 1) alone."""
    return rank(), world_size()


def is_main() -> bool:
    """The process that prints and writes files (rank 0; the only one without torchrun)."""
    return rank() == 0


def say(message: str) -> None:
    """Print, from rank 0 only when several processes train."""
    if is_main():
        print(message, flush=True)


def setup(device: str = "auto") -> None:
    """Join the process group torchrun prepared.

    NCCL and one GPU per process (``cuda:LOCAL_RANK``, made the current device, so that
    "cuda" means it) where CUDA is available and ``device`` is not "cpu"; else gloo on the
    CPU, each process with an equal share of the CPU threads. Nothing in a process torchrun
    did not start.
    """
    if not _launched():
        return
    on_gpu = device != "cpu" and torch.cuda.is_available()
    if on_gpu:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
    else:
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        torch.set_num_threads(max(1, cores // local_world))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if on_gpu else "gloo")


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _broadcast_object(value):
    """Rank 0's ``value`` in every process (a folder name, say)."""
    if not active():
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def sum_over_processes(values: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of ``values`` over all processes (``values`` itself with one)."""
    if active():
        values = values.clone()
        dist.all_reduce(values)
    return values


def copy_buffers_from_main(model: nn.Module) -> None:
    """Give every process rank 0's buffers (batch norm's running statistics).

    Without SyncBatchNorm each process updates them from its own share of the batch, so they
    drift apart between DDP's broadcasts; before evaluating or saving, all take rank 0's.
    """
    if active():
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def from_main(function):
    """``function()`` run by rank 0 alone, its result returned in every process.

    An exception there is raised in every process, so that none waits for the others in a
    collective that will never come.
    """
    if not active():
        return function()
    outcome = None
    if is_main():
        try:
            outcome = (True, function())
        except Exception as error:
            outcome = (False, error)
    succeeded, value = _broadcast_object(outcome)
    if not succeeded:
        raise value
    return value


@contextmanager
def main_first():
    """Rank 0 runs the block first (a download, say); the others once it has succeeded.

    If it fails there, it fails in every process with rank 0's error.
    """
    if not active():
        yield
    elif is_main():
        try:
            yield
        except Exception as error:
            _broadcast_object(error)
            raise
        _broadcast_object(None)
    else:
        error = _broadcast_object(None)
        if error is not None:
            raise error
        yield


def _batch_statistics(x: torch.Tensor) -> tuple[float, torch.Tensor, torch.Tensor]:
    """The number of values per channel, their mean and (biased) variance over all processes' batches.

    x: N x C x H x W, this process's share; the sums are taken in float64, so that the shares add up
    to the single-process statistics to the last bits. Returns (count, mean C, variance C).
    """
    local_count = x.new_full((1,), x.numel() // x.shape[1], dtype=torch.float64)
    sums = sum_over_processes(torch.cat([x.sum((0, 2, 3), dtype=torch.float64), local_count]))
    count = sums[-1].item()
    mean = sums[:-1] / count
    squares = (x - mean.to(x.dtype).view(1, -1, 1, 1)).square().sum((0, 2, 3), dtype=torch.float64)
    return count, mean, sum_over_processes(squares) / count


class _NormalizeOverProcesses(torch.autograd.Function):
    """(x - mean) * invstd * weight + bias, with batch norm's backward pass over all processes' batches.

    Each process adds its sums of the output gradient to the others' (an all-reduce), so its input
    gradient is what one process would compute for these images in the whole batch. The weight and
    bias get this process's share; DDP averages those over processes like any other gradient.
    x: N x C x H x W; weight, bias, mean, invstd: C.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, mean, invstd, count):
        normalized = (x - mean.view(1, -1, 1, 1)) * invstd.view(1, -1, 1, 1)
        ctx.save_for_backward(normalized, weight, invstd)
        ctx.count = count
        return normalized * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)

    @staticmethod
    def backward(ctx, grad_output):
        normalized, weight, invstd = ctx.saved_tensors
        local = torch.stack([grad_output.sum((0, 2, 3)), (grad_output * normalized).sum((0, 2, 3))])
        grad_bias, grad_weight = local
        mean_grad, mean_grad_normalized = (sum_over_processes(local) / ctx.count).unbind()
        grad_input = (grad_output - mean_grad.view(1, -1, 1, 1) - normalized * mean_grad_normalized.view(1, -1, 1, 1)) \
            * (weight * invstd).view(1, -1, 1, 1)
        return grad_input, grad_weight, grad_bias, None, None, None


class ProcessGroupBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the whole batch, over every process.

    ``nn.SyncBatchNorm`` does this on GPUs only; this one serves the CPU (gloo) with the same
    arithmetic. N x C x H x W -> N x C x H x W.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and active()):
            return super().forward(x)
        dtype, x = x.dtype, x.float()  # under bfloat16 autocast too, the statistics are kept in float32
        with torch.no_grad():
            count, mean, variance = _batch_statistics(x)
            self.num_batches_tracked.add_(1)
            # an exponential average, or with momentum=None the plain mean of all batches so far
            weight = self.momentum if self.momentum is not None else 1 / self.num_batches_tracked.item()
            self.running_mean.lerp_(mean.float(), weight)
            self.running_var.lerp_((variance * count / max(count - 1, 1)).float(), weight)
            mean, invstd = mean.float(), torch.rsqrt(variance + self.eps).float()
        return _NormalizeOverProcesses.apply(x, self.weight, self.bias, mean, invstd, count).to(dtype)


def synchronize_batch_norm(model: nn.Module) -> nn.Module:
    """``model`` with every BatchNorm2d computing its statistics over all processes.

    On GPUs PyTorch's ``nn.SyncBatchNorm``; on the CPU ``ProcessGroupBatchNorm2d``. The
    weights and running statistics are kept (the same tensors: an optimizer made for ``model``
    still updates them), and a checkpoint loads into either form. Changes ``model`` in place.
    """
    if next(model.parameters()).is_cuda:
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _replace_batch_norm(model)


def _replace_batch_norm(model: nn.Module) -> nn.Module:
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d and child.affine and child.track_running_stats:
            replacement = ProcessGroupBatchNorm2d(child.num_features, child.eps, child.momentum)
            # the very parameters and buffers, so that an optimizer made before still updates them
            replacement.weight, replacement.bias = child.weight, child.bias
            for buffer in ("running_mean", "running_var", "num_batches_tracked"):
                setattr(replacement, buffer, getattr(child, buffer))
            replacement.train(child.training)
            setattr(model, name, replacement)
        else:
            _replace_batch_norm(child)
    return model
