"""Training: ``fit`` runs epochs, evaluates, checkpoints and can resume where it stopped.

Each epoch writes, atomically, ``checkpoint.pt`` (model, optimizer, scheduler, random
states, history) and ``metrics.json`` into the run's folder. A run stopped after epoch k
and resumed ends with exactly the numbers of an uninterrupted run on a CPU (on a GPU,
cuDNN's convolutions may differ in the last bits from run to run).
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.std import tqdm

from .config import TrainConfig
from .loader import BatchLoader
from .measure import count_parameters
from .metrics import Tally, evaluate
from .models import resnet50, seresnet50
from .paths import display, resolve

CHECKPOINT, METRICS = "checkpoint.pt", "metrics.json"
CHECKPOINT_FORMAT = "seresnet_lib/checkpoint/1"
# Parameters that may change when a run is resumed; any other change is a different experiment.
# (epochs too, for the step schedule: the cosine schedule's shape depends on it.)
RESUMABLE_CHANGES = {"epochs", "resume", "out_dir", "device", "channels_last", "data_dir", "download"}


@dataclass
class History:
    """One dict per epoch: epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds."""

    epochs: list[dict] = field(default_factory=list)
    run_dir: Path | None = None

    @property
    def best(self) -> dict:
        """The epoch with the highest test accuracy."""
        return max(self.epochs, key=lambda row: row["test_acc"])


def build_model(config: TrainConfig, num_classes: int) -> nn.Module:
    """The model the config names, on the config's device, in channels-last layout if the config asks."""
    factory = seresnet50 if config.model == "seresnet50" else resnet50
    options = dict(reduction=config.reduction) if config.model == "seresnet50" else {}
    model = factory(num_classes, stem=config.stem, zero_init_residual=config.zero_init_residual, **options)
    layout = torch.channels_last if config.channels_last else torch.contiguous_format
    return model.to(config.torch_device, memory_format=layout)


def make_optimizer(model: nn.Module, config: TrainConfig):
    """SGD (momentum, Nesterov, weight decay) and its per-epoch learning-rate schedule."""
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay, nesterov=config.nesterov)
    return optimizer, make_scheduler(optimizer, config)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    """The config's per-epoch learning-rate schedule for ``optimizer``."""
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step, gamma=config.lr_gamma)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)


def train_one_epoch(model: nn.Module, batches, optimizer: torch.optim.Optimizer) -> tuple[float, float]:
    """One pass over ``batches`` of (images N x 3 x H x W, labels N): the mean loss and accuracy."""
    model.train()  # batch norm uses each batch's own statistics (and updates its running ones)
    tally = Tally(next(model.parameters()).device)  # running sums of the loss and the right answers
    for images, labels in batches:
        logits = model(images)  # forward pass: N x classes scores
        loss = nn.functional.cross_entropy(logits, labels)  # the mean over the batch
        optimizer.zero_grad(set_to_none=True)  # forget the previous batch's gradients
        loss.backward()  # backward pass: the gradient of the loss for every weight
        optimizer.step()  # SGD: every weight takes a step against its (momentum-smoothed) gradient
        tally.add(logits, labels, loss * len(labels))  # added up on the device: no waiting here
    return tally.result()  # one wait for the device, at the end of the epoch


def fit(model: nn.Module, train_loader: BatchLoader, test_loader: BatchLoader, config: TrainConfig,
        optimizer: torch.optim.Optimizer | None = None, scheduler=None, progress: str = "auto") -> History:
    """Train ``model`` for ``config.epochs`` epochs (or the rest of them, with ``config.resume``).

    Each epoch is one ``train_one_epoch``, a step of the learning-rate schedule, an evaluation
    on ``test_loader`` and a checkpoint. ``optimizer`` and ``scheduler``: the caller's own
    (the scheduler must drive that optimizer), else built from the config; a resumed run takes
    their state, learning rates included, from its checkpoint. A new run starts
    ``train_loader`` from its seed, so a model and config give the same run whatever used the
    loader before. ``progress``: "bar" (a progress bar per epoch), "lines" (one line per
    epoch, for papermill and CI), or "auto" (a bar in a terminal or an interactive notebook).
    """
    if progress not in ("auto", "bar", "lines"):
        raise ValueError(f"progress={progress!r} is not allowed; choose one of 'auto', 'bar', 'lines'")
    optimizer, scheduler = _optimizer_and_scheduler(model, config, optimizer, scheduler)
    bar = progress == "bar" or (progress == "auto" and _interactive())
    run_dir = _run_dir(resolve(config.out_dir), config.resume)
    history = History(run_dir=run_dir)
    if (run_dir / CHECKPOINT).exists():
        state = _read_checkpoint(run_dir / CHECKPOINT, config)
        for role, used in (("optimizer", optimizer), ("scheduler", scheduler)):
            saved = state.get(f"{role}_class", type(used).__name__)
            if saved != type(used).__name__:
                raise ValueError(f"cannot resume {display(run_dir)}: it was trained with {saved} as its "
                                 f"{role}, not {type(used).__name__}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        train_loader.generator.set_state(state["rng"]["loader"])
        history.epochs = state["history"]
        print(f"resumed {display(run_dir)} after epoch {len(history.epochs)}")
        if len(history.epochs) >= config.epochs:
            print(f"the run already has {len(history.epochs)} epochs: nothing to train (raise epochs to go on)")
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        train_loader.restart()
        print(f"new run in {display(run_dir)}")

    for epoch in range(len(history.epochs) + 1, config.epochs + 1):
        start = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        batches = tqdm(train_loader, desc=f"epoch {epoch}/{config.epochs}", leave=False, file=sys.stdout) \
            if bar else train_loader
        train_loss, train_acc = train_one_epoch(model, batches, optimizer)
        scheduler.step()
        test_loss, test_acc = evaluate(model, test_loader)
        row = dict(epoch=epoch, train_loss=train_loss, train_acc=train_acc, test_loss=test_loss,
                   test_acc=test_acc, lr=lr, seconds=round(time.perf_counter() - start, 2))
        history.epochs.append(row)
        _save_checkpoint(run_dir, model, optimizer, scheduler, train_loader, config, history)
        print(f"epoch {epoch:>3}/{config.epochs}  train loss {train_loss:.4f} acc {train_acc:6.2%}  "
              f"test loss {test_loss:.4f} acc {test_acc:6.2%}  lr {lr:.2g}  time {row['seconds']:.1f}s",
              flush=True)
    return history


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
        return optimizer, make_scheduler(optimizer, config)
    if getattr(scheduler, "optimizer", None) is not optimizer:
        raise ValueError("the scheduler drives another optimizer than the one given; "
                         "create it with the optimizer you pass to fit()")
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        raise ValueError("fit() steps the scheduler once per epoch without a metric, and ReduceLROnPlateau "
                         "needs one; use a schedule such as StepLR or CosineAnnealingLR")
    return optimizer, scheduler


def _interactive() -> bool:
    """A terminal, or a notebook whose frontend takes input (JupyterLab does; papermill and nbval don't)."""
    if os.environ.get("CI"):
        return False
    try:
        kernel = get_ipython().kernel  # noqa: F821 (defined inside IPython)
    except (NameError, AttributeError):
        return sys.stdout.isatty()
    return bool(getattr(kernel, "_allow_stdin", False))


def check_resumable(config: TrainConfig) -> None:
    """With ``config.resume``, fail now if the run to resume cannot continue with ``config``.

    Cheap (reads one checkpoint), so a notebook calls it before loading data or building a model.
    """
    if config.resume:
        checkpoint = _run_dir(resolve(config.out_dir), resume=True, quiet=True) / CHECKPOINT
        if checkpoint.exists():
            _read_checkpoint(checkpoint, config)


def _run_dir(out_dir: Path, resume: bool, quiet: bool = False) -> Path:
    """``out_dir/run-NNN``: the newest run when resuming, else a new one, so no run overwrites another."""
    numbers = [int(m.group(1)) for p in out_dir.glob("run-*") if (m := re.fullmatch(r"run-(\d+)", p.name))]
    if resume and numbers:
        return out_dir / f"run-{max(numbers):03d}"
    if resume and not quiet:
        print(f"nothing to resume in {display(out_dir)}: starting a new run")
    return out_dir / f"run-{max(numbers, default=0) + 1:03d}"


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file, flushed to disk, then renamed over ``path``.

    A crash at any moment leaves either the old file or the new one, never half of one.
    """
    temporary = path.with_name(path.name + ".tmp")
    try:
        with open(temporary, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _finite(value):
    """JSON has no NaN or infinity (a diverged run has them): write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _save_checkpoint(run_dir, model, optimizer, scheduler, train_loader, config, history) -> None:
    state = {
        "format": CHECKPOINT_FORMAT,
        "config": config.as_dict(),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "optimizer_class": type(optimizer).__name__,
        "scheduler_class": type(scheduler).__name__,
        # The loader draws its order and augmentations on a CPU generator, and nothing in
        # training draws from the GPU's, so these two states make a resumed run exact.
        "rng": {"torch": torch.get_rng_state(), "loader": train_loader.generator.get_state()},
        "history": history.epochs,
    }
    _atomic_write(run_dir / CHECKPOINT, lambda file: torch.save(state, file))
    best = history.best
    metrics = {
        "parameters": config.as_dict(),
        "epochs": history.epochs,
        "best_test_acc": best["test_acc"],
        "best_epoch": best["epoch"],
        "model_parameters": count_parameters(model),
        "device": str(next(model.parameters()).device),
    }
    text = json.dumps(_finite(metrics), indent=2, allow_nan=False)
    _atomic_write(run_dir / METRICS, lambda file: file.write(text.encode()))


def _read_checkpoint(path: Path, config: TrainConfig) -> dict:
    """The state ``_save_checkpoint`` wrote, on the CPU, checked to belong to a run of ``config``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
        raise ValueError(f"cannot read the checkpoint {display(path)} ({type(error).__name__}: {error}); "
                         f"it is truncated or was not written by fit(). Move it away or use resume=False.") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{display(path)} is not a checkpoint written by fit(); use resume=False "
                         f"or another out_dir")
    may_change = RESUMABLE_CHANGES - ({"epochs"} if config.schedule == "cosine" else set())
    changed = {k: (v, getattr(config, k)) for k, v in state["config"].items()
               if k not in may_change and getattr(config, k) != v}
    if changed:
        details = ", ".join(f"{k}={new!r} (the run used {old!r})" for k, (old, new) in changed.items())
        raise ValueError(f"cannot resume {display(path.parent)} with other parameters: {details}. "
                         f"Only {', '.join(sorted(may_change))} may change.")
    return state
