"""``fit``: the epochs of a run, each ``train_one_epoch``, a step of the learning-rate
schedule and an evaluation, recorded by ``Run``.

The run's folder, lock, checkpoints, resume and status are ``Run``'s (``run.py``); how the
steps run (several processes, compiling, bfloat16) is ``Steps``' (``steps.py``).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from tqdm.std import tqdm

from ..validate import check_choice
from .config import TrainConfig
from .distributed import is_main, say
from .run import History, Run
from .steps import Steps

_PROGRESS = ("auto", "bar", "lines")


def make_optimizer(model: nn.Module, config: TrainConfig):
    """SGD (momentum, Nesterov, weight decay) and its per-epoch learning-rate schedule.

    On a CPU or a GPU, SGD's fused form: one kernel updates every weight (the same arithmetic).
    """
    fused = next(model.parameters()).device.type in ("cpu", "cuda")
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay, nesterov=config.nesterov, fused=fused)
    return optimizer, _make_scheduler(optimizer, config)


def fit(model: nn.Module, train_loader, test_loader, config: TrainConfig,
        optimizer: torch.optim.Optimizer | None = None, scheduler=None, progress: str = "auto") -> History:
    """Train ``model`` for ``config.epochs`` epochs (or the rest of them, with ``config.resume``).

    Each epoch is one ``train_one_epoch``, a step of the learning-rate schedule, an evaluation
    on ``test_loader`` and a checkpoint. ``optimizer`` and ``scheduler``: the caller's own
    (the scheduler must drive that optimizer), else built from the config; a resumed run takes
    their state, learning rates included, from its checkpoint. A new run starts
    ``train_loader`` from its seed, so a model and config give the same run whatever used the
    loader before. ``progress``: "bar" (a progress bar per epoch), "lines" (one line per
    epoch, for papermill and CI), or "auto" (a bar in a terminal or an interactive notebook).

    ``Run`` keeps the run's folder, checkpoints and status; ``Steps`` runs the epochs' steps, in
    several processes under torchrun (the loaders made for this process's shard, as ``run_data``
    makes them; ``sync_bn`` converts ``model``'s batch norm in place; rank 0 alone writes).
    SIGTERM (torchrun stopping its processes, a batch system's time limit) interrupts it as Ctrl-C
    does: the run is recorded as stopped, after its last checkpoint.
    """
    check_choice("progress", progress, _PROGRESS)
    optimizer, scheduler = _optimizer_and_scheduler(model, config, optimizer, scheduler)
    bar = progress == "bar" or (progress == "auto" and _interactive())
    with _terminate_as_interrupt(), Steps(model, config, train_loader, test_loader) as steps, \
            Run.open(config) as run:
        history = run.start(model, optimizer, scheduler, train_loader)
        for epoch in range(len(history.epochs) + 1, config.epochs + 1):
            start = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            batches = _with_bar(train_loader, epoch, config.epochs) if bar else train_loader
            train_loss, train_acc = steps.train_one_epoch(batches, optimizer)
            scheduler.step()
            test_loss, test_acc = steps.evaluate(test_loader)
            row = dict(epoch=epoch, train_loss=train_loss, train_acc=train_acc, test_loss=test_loss,
                       test_acc=test_acc, lr=lr, seconds=round(time.perf_counter() - start, 2))
            say(f"epoch {epoch:>3}/{config.epochs}  train loss {train_loss:.4f} acc {train_acc:6.2%}  "
                f"test loss {test_loss:.4f} acc {test_acc:6.2%}  lr {lr:.2g}  time {row['seconds']:.1f}s")
            run.end_epoch(row, model, optimizer, scheduler, train_loader)
    return history


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises KeyboardInterrupt, as Ctrl-C does (from the main thread only, the one
    Python delivers signals to); the handler there before comes back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _interrupt(number: int, frame) -> None:
    signal.signal(number, signal.SIG_IGN)  # once: a second SIGTERM must not cut short recording the stop
    raise KeyboardInterrupt(f"stopped by {signal.Signals(number).name}")


def _make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    """The config's per-epoch learning-rate schedule for ``optimizer``."""
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step, gamma=config.lr_gamma)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)


def _optimizer_and_scheduler(model, config, optimizer, scheduler):
    """The caller's optimizer and scheduler, completed from the config where one is missing."""
    if optimizer is None:
        if scheduler is not None:
            raise ValueError("a scheduler was given without its optimizer; pass optimizer= as well")
        return make_optimizer(model, config)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    own = {id(p) for p in model.parameters()}
    if any(id(p) not in own for group in optimizer.param_groups for p in group["params"]):
        raise ValueError("the optimizer updates parameters that are not this model's (was it made for a copy "
                         "of the model?); create it from model.parameters()")
    if scheduler is None:
        return optimizer, _make_scheduler(optimizer, config)
    if getattr(scheduler, "optimizer", None) is not optimizer:
        raise ValueError("the scheduler drives another optimizer than the one given; "
                         "create it with the optimizer you pass to fit()")
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        raise ValueError("fit() steps the scheduler once per epoch without a metric, and ReduceLROnPlateau "
                         "needs one; use a schedule such as StepLR or CosineAnnealingLR")
    return optimizer, scheduler


def _with_bar(batches, epoch: int, epochs: int):
    """``batches`` behind a progress bar (from rank 0 only, when several processes train)."""
    if not is_main():
        return batches
    return tqdm(batches, desc=f"epoch {epoch}/{epochs}", leave=False, file=sys.stdout)


def _interactive() -> bool:
    """A terminal, or a notebook whose frontend takes input (JupyterLab does; papermill and nbval don't)."""
    if os.environ.get("CI"):
        return False
    try:
        kernel = get_ipython().kernel  # noqa: F821 (defined inside IPython)
    except (NameError, AttributeError):
        return sys.stdout.isatty()
    return bool(getattr(kernel, "_allow_stdin", False))
