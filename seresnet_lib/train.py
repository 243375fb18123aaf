"""Training: ``fit`` runs epochs, evaluates, checkpoints and can resume where it stopped.

Each epoch writes, atomically, ``checkpoint.pt`` (model, optimizer, scheduler, random
states, history) and ``metrics.json`` into the run's folder. A run stopped after epoch k
and resumed ends with exactly the numbers of an uninterrupted run on a CPU.
"""

from __future__ import annotations

import json
import os
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
from .metrics import evaluate
from .models import resnet50, seresnet50
from .paths import display, resolve

CHECKPOINT, METRICS = "checkpoint.pt", "metrics.json"
CHECKPOINT_FORMAT = "seresnet_lib/checkpoint/1"
# Parameters that may change when a run is resumed; any other change is a different experiment.
RESUMABLE_CHANGES = {"epochs", "resume", "out_dir", "device", "data_dir", "download"}


@dataclass
class History:
    """One dict per epoch: epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds."""

    epochs: list[dict] = field(default_factory=list)
    run_dir: Path | None = None

    def column(self, key: str) -> list:
        return [row[key] for row in self.epochs]

    @property
    def best(self) -> dict:
        """The epoch with the highest test accuracy."""
        return max(self.epochs, key=lambda row: row["test_acc"])


def build_model(config: TrainConfig, num_classes: int) -> nn.Module:
    """The model the config names, on the config's device."""
    if config.model == "seresnet50":
        model = seresnet50(num_classes, reduction=config.reduction, stem=config.stem)
    else:
        model = resnet50(num_classes, stem=config.stem)
    return model.to(config.torch_device)


def make_optimizer(model: nn.Module, config: TrainConfig):
    """SGD (momentum, Nesterov, weight decay) and its per-epoch learning-rate schedule."""
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay, nesterov=config.nesterov)
    if config.schedule == "step":
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step, gamma=config.lr_gamma)
    else:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return optimizer, scheduler


def fit(model: nn.Module, train_loader: BatchLoader, test_loader: BatchLoader, config: TrainConfig,
        progress: str = "auto") -> History:
    """Train ``model`` for ``config.epochs`` epochs (or the rest of them, with ``config.resume``).

    ``progress``: "bar" (a progress bar per epoch), "lines" (one line per epoch, for
    papermill and CI), or "auto" (a bar in a terminal or an interactive notebook).
    """
    if progress not in ("auto", "bar", "lines"):
        raise ValueError(f"progress={progress!r} is not allowed; choose one of 'auto', 'bar', 'lines'")
    bar = progress == "bar" or (progress == "auto" and _interactive())
    optimizer, scheduler = make_optimizer(model, config)
    run_dir = _run_dir(resolve(config.out_dir), config.resume)
    history = History(run_dir=run_dir)
    if (run_dir / CHECKPOINT).exists():
        history.epochs = _load_checkpoint(run_dir / CHECKPOINT, model, optimizer, scheduler, train_loader, config)
        print(f"resumed {display(run_dir)} after epoch {len(history.epochs)}")
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        print(f"new run in {display(run_dir)}")

    for epoch in range(len(history.epochs) + 1, config.epochs + 1):
        start = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        batches = tqdm(train_loader, desc=f"epoch {epoch}/{config.epochs}", leave=False, file=sys.stdout) \
            if bar else train_loader
        train_loss, train_acc = _train_epoch(model, batches, optimizer)
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


def _train_epoch(model: nn.Module, batches, optimizer) -> tuple[float, float]:
    """One pass over the training batches: mean loss and accuracy."""
    model.train()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    for images, labels in batches:
        logits = model(images)
        loss = nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * len(labels)  # stays on the device: no sync per batch
        correct += (logits.argmax(1) == labels).sum()
        seen += len(labels)
    return loss_sum.item() / seen, correct.item() / seen


def _interactive() -> bool:
    """A terminal, or a notebook whose frontend takes input (JupyterLab does; papermill and nbval don't)."""
    if os.environ.get("CI"):
        return False
    try:
        kernel = get_ipython().kernel  # noqa: F821 (defined inside IPython)
    except (NameError, AttributeError):
        return sys.stdout.isatty()
    return bool(getattr(kernel, "_allow_stdin", False))


def _run_dir(out_dir: Path, resume: bool) -> Path:
    """``out_dir/run-NNN``: the newest run when resuming, else a new one, so no run overwrites another."""
    numbers = [int(m.group(1)) for p in out_dir.glob("run-*") if (m := re.fullmatch(r"run-(\d+)", p.name))]
    if resume and numbers:
        return out_dir / f"run-{max(numbers):03d}"
    if resume:
        print(f"nothing to resume in {display(out_dir)}: starting a new run")
    return out_dir / f"run-{max(numbers, default=0) + 1:03d}"


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file and rename it over ``path``: a crash never leaves half a file."""
    temporary = path.with_name(path.name + ".tmp")
    write(temporary)
    os.replace(temporary, path)


def _save_checkpoint(run_dir, model, optimizer, scheduler, train_loader, config, history) -> None:
    state = {
        "format": CHECKPOINT_FORMAT,
        "config": config.as_dict(),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": {"torch": torch.get_rng_state(), "loader": train_loader.generator.get_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
        "history": history.epochs,
    }
    _atomic_write(run_dir / CHECKPOINT, lambda path: torch.save(state, path))
    best = history.best
    metrics = {
        "parameters": config.as_dict(),
        "epochs": history.epochs,
        "best_test_acc": best["test_acc"],
        "best_epoch": best["epoch"],
        "model_parameters": sum(p.numel() for p in model.parameters()),
        "device": str(next(model.parameters()).device),
    }
    _atomic_write(run_dir / METRICS, lambda path: path.write_text(json.dumps(metrics, indent=2)))


def _load_checkpoint(path, model, optimizer, scheduler, train_loader, config) -> list[dict]:
    """Restore everything ``_save_checkpoint`` wrote; return the history so far."""
    try:
        state = torch.load(path, map_location=next(model.parameters()).device, weights_only=True)
    except Exception as error:  # truncated files and foreign pickles fail in many ways
        raise ValueError(f"cannot read the checkpoint {display(path)} ({type(error).__name__}: {error}); "
                         f"it is truncated or was not written by fit(). Move it away or use resume=False.") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{display(path)} is not a checkpoint written by fit(); use resume=False "
                         f"or another out_dir")
    changed = {k: (v, getattr(config, k)) for k, v in state["config"].items()
               if k not in RESUMABLE_CHANGES and getattr(config, k) != v}
    if changed:
        details = ", ".join(f"{k}={new!r} (the run used {old!r})" for k, (old, new) in changed.items())
        raise ValueError(f"cannot resume {display(path.parent)} with other parameters: {details}. "
                         f"Only {', '.join(sorted(RESUMABLE_CHANGES))} may change.")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    train_loader.generator.set_state(state["rng"]["loader"])
    if state["rng"]["cuda"]:
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return state["history"]
