"""``Run``: a training run's bookkeeping, so that ``fit`` is only its loop.

A run lives in its own folder, ``out_dir/run-NNN`` (``folders.py``). While it trains, its
process holds the folder's lock; after each epoch it writes, atomically, ``checkpoint.pt``
(model, optimizer, scheduler, random states, history) and ``metrics.json`` (the run's
status: running, complete, stopped or diverged; its parameters; every epoch; the user and host
that made it, so that ``keep_checkpoints`` prunes only one's own runs). metrics.json never
claims an epoch the checkpoint lacks: an epoch counts once its checkpoint is on disk, and a
checkpoint the disk has no room for is refused before a byte of it is written. A run stopped
after epoch k and resumed ends with exactly the numbers of an uninterrupted run on a CPU.
With several processes (torchrun), rank 0 chooses the folder, holds the lock and writes.
"""

from __future__ import annotations

import json
import math
import pickle
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..model.measure import count_parameters
from ..paths import display, resolve
from . import distributed
from .config import TrainConfig
from .distributed import say
from .folders import (CHECKPOINT, METRICS, Maker, atomic_write, check_free, check_space, check_writable_folder,
                      checkpoints_kept_for_their_maker, delete_temporary_files, find_run, found_runs, hold,
                      keep_newest_checkpoints, new_run, size_text)

_CHECKPOINT_FORMAT = "seresnet_lib/checkpoint/1"
# Parameters that may change when a run is resumed; any other change is a different experiment.
# (epochs too, for the step schedule: the cosine schedule's shape depends on it.)
# How a run is computed (device, layout, precision, compiling, processes) may change too: a run
# started on a GPU can go on on a CPU.
_RESUMABLE_CHANGES = {"epochs", "resume", "keep_checkpoints", "out_dir", "device", "channels_last", "data_dir",
                     "download", "precision", "torch_compile", "sync_bn"}
_BYTES_PER_TENSOR = 320  # what a checkpoint spends on each tensor besides its data: zip records, alignment, pickle


@dataclass
class History:
    """One dict per epoch: epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds."""

    epochs: list[dict] = field(default_factory=list)
    run_dir: Path | None = None

    @property
    def best(self) -> dict | None:
        """The epoch with the highest test accuracy among those with finite losses (None if none)."""
        good = [row for row in self.epochs if math.isfinite(row["train_loss"]) and math.isfinite(row["test_loss"])]
        return max(good, key=lambda row: row["test_acc"], default=None)


class TrainingDiverged(RuntimeError):
    """The loss stopped being a finite number: the run cannot recover."""


class Run:
    """The folder of one run of ``config``: opened (new, or resumed with ``config.resume``) by
    ``with Run.open(config) as run``, which holds its lock; ``start`` restores or starts the
    training state, ``end_epoch`` records each epoch. Leaving the block by an error marks the
    run stopped (a divergence marks it diverged)."""

    def __init__(self, folder: Path, config: TrainConfig, resuming: bool):
        self.folder, self.config, self.resuming = folder, config, resuming
        self.history = History(run_dir=folder)
        self.writes = distributed.is_main()
        self._model: nn.Module | None = None  # set once start() has restored or started the run
        # who made the run: kept when it is resumed (by anyone); a run older than that record is adopted
        self.maker = (resuming and Maker.of(folder)) or Maker.here()

    @classmethod
    def open(cls, config: TrainConfig) -> Run:
        """The run ``config`` asks for: the one ``config.resume`` names, else a new folder in ``out_dir``."""
        folder, resuming = distributed.from_main(lambda: _choose(config))
        return cls(folder, config, resuming)

    def __enter__(self) -> Run:
        self._held = ExitStack()
        distributed.from_main(self._lock)  # in rank 0's process
        return self

    def __exit__(self, kind, error, traceback) -> None:
        with self._held:
            if error is not None and not isinstance(error, TrainingDiverged) and self._model is not None:
                self._record_stop()  # interrupted or failed: say so to whoever reads metrics.json

    def _lock(self) -> None:
        """Hold the run's folder; a resumed one's temporary files are then a killed write's, and go."""
        self._held.enter_context(hold(self.folder))
        if self.resuming and (deleted := delete_temporary_files(self.folder)):
            say(deleted)

    def _record_stop(self) -> None:
        """``"status": "stopped"`` in metrics.json, if the disk takes it: the error that stopped the run stays
        the one raised (metrics.json then says running, which ``runs list`` shows as stopped)."""
        try:
            self._write_metrics("stopped")
        except OSError as failure:
            say(f"note: metrics.json could not be updated to say the run stopped: {failure}")

    def start(self, model: nn.Module, optimizer, scheduler, train_loader) -> History:
        """Restore a resumed run's model, optimizer, scheduler, random states and history, or start
        ``train_loader`` from its seed for a new one; the history so far (empty when new)."""
        if self.resuming:
            self._restore(model, optimizer, scheduler, train_loader)
        else:
            train_loader.restart()
            say(f"new run in {display(self.folder)}")
        keep = self.config.keep_checkpoints
        if self.writes and keep != 0:  # a disk too full for one checkpoint fails now
            self._check_space(self._checkpoint(self.history.epochs, model, optimizer, scheduler, train_loader))
        if self.writes and keep is not None and (kept := checkpoints_kept_for_their_maker(self.folder, keep)):
            say(kept)
        self._model = model
        self._write_metrics(self._status())
        return self.history

    def end_epoch(self, row: dict, model: nn.Module, optimizer, scheduler, train_loader) -> None:
        """Record a trained epoch: checkpoint, ``metrics.json``, older runs' checkpoints pruned.

        TrainingDiverged if its losses are not finite (the last good checkpoint is kept). If its
        checkpoint cannot be written (DiskFull), the epoch is not recorded: the run stops at the last one.
        """
        if not (math.isfinite(row["train_loss"]) and math.isfinite(row["test_loss"])):
            self._write_metrics("diverged", diverged=row)
            raise TrainingDiverged(self._divergence_message(row, optimizer))
        keep = self.config.keep_checkpoints
        if self.writes and keep != 0:
            state = self._checkpoint(self.history.epochs + [row], model, optimizer, scheduler, train_loader)
            self._check_space(state)
            atomic_write(self.folder / CHECKPOINT, lambda file: torch.save(state, file))
        self.history.epochs.append(row)  # only now that its checkpoint is on disk
        if not self.writes:
            return
        self._write_metrics(self._status())
        if keep is not None and (deleted := keep_newest_checkpoints(self.folder, keep)):
            say(deleted)

    def _restore(self, model, optimizer, scheduler, train_loader) -> None:
        if not (self.folder / CHECKPOINT).is_file():
            raise ValueError(f"the checkpoint of {display(self.folder)} disappeared before training could resume "
                             f"it (pruned?). {found_runs(self.folder.parent)}")
        state = read_checkpoint(self.folder / CHECKPOINT, self.config)
        for role, used in (("optimizer", optimizer), ("scheduler", scheduler)):
            saved = state.get(f"{role}_class", type(used).__name__)
            if saved != type(used).__name__:
                raise ValueError(f"cannot resume {display(self.folder)}: it was trained with {saved} as its "
                                 f"{role}, not {type(used).__name__}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        train_loader.generator.set_state(state["rng"]["loader"])
        self.history.epochs = state["history"]
        say(f"resumed {display(self.folder)} after epoch {len(self.history.epochs)}")
        processes, now, config = state.get("processes", 1), distributed.world_size(), self.config
        if processes != now and not config.sync_bn:
            say(f"note: the run was trained by {processes} process(es) and goes on with {now}; the global batch is "
                f"the same, but batch norm's statistics now come from {config.batch_size // now} images per process "
                f"instead of {config.batch_size // processes} (sync_bn=True takes them over the whole batch)")
        if len(self.history.epochs) >= config.epochs:
            say(f"the run already has {len(self.history.epochs)} epochs: nothing to train (raise epochs to go on)")

    def _status(self) -> str:
        return "complete" if len(self.history.epochs) >= self.config.epochs else "running"

    def _divergence_message(self, row: dict, optimizer) -> str:
        epochs = self.history.epochs
        kept = f"the checkpoint after epoch {len(epochs)}" if epochs else "no checkpoint (none was good)"
        if self.config.keep_checkpoints == 0:
            kept = "no checkpoint (keep_checkpoints=0)"
        losses = {"training": row["train_loss"], "test": row["test_loss"]}
        broken = " and ".join(f"the {kind} loss is {value}" for kind, value in losses.items()
                              if not math.isfinite(value))
        group = optimizer.param_groups[0]
        start = group.get("initial_lr", group["lr"])  # schedulers keep the run's starting rate here
        return (f"training diverged in epoch {row['epoch']}: {broken}, and the run cannot recover. The likely "
                f"cause is a learning rate too high for this model and batch size (lr={start:g}); try "
                f"lr={start / 10:g}. {display(self.folder)} keeps {kept}; its metrics.json says "
                f'"status": "diverged".')

    def _checkpoint(self, epochs: list[dict], model, optimizer, scheduler, train_loader) -> dict:
        """What a checkpoint after ``epochs`` holds."""
        return {
            "format": _CHECKPOINT_FORMAT,
            "config": self.config.as_dict(),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "optimizer_class": type(optimizer).__name__,
            "scheduler_class": type(scheduler).__name__,
            # The loader draws its order and augmentations on a CPU generator, and nothing in
            # training draws from the GPU's, so these two states make a resumed run exact.
            "rng": {"torch": torch.get_rng_state(), "loader": train_loader.generator.get_state()},
            "history": epochs,
            "processes": distributed.world_size(),
        }

    def _check_space(self, state: dict) -> None:
        """DiskFull, before anything is written, if the disk has no room for ``state`` as a checkpoint: as much
        as the last checkpoint took, or its tensors' bytes and their records if that is more."""
        path = self.folder / CHECKPOINT
        needed = sum(tensor.nbytes + _BYTES_PER_TENSOR for tensor in _tensors(state))
        check_space(path, max(needed, path.stat().st_size if path.is_file() else 0))

    def _write_metrics(self, status: str, diverged: dict | None = None) -> None:
        """``metrics.json``: the status sweeps read (running, complete, stopped, diverged), the parameters,
        every epoch (a diverged one last, its non-finite losses as null) and the best good one."""
        if not self.writes:
            return
        best, model = self.history.best, self._model
        metrics = {
            "status": status,
            "parameters": self.config.as_dict(),
            "epochs": self.history.epochs + ([diverged] if diverged else []),
            "best_test_acc": best and best["test_acc"],
            "best_epoch": best and best["epoch"],
            "model_parameters": count_parameters(model),
            "device": str(next(model.parameters()).device),
            "processes": distributed.world_size(),
            **self.maker.record(),
        }
        if diverged:
            metrics["diverged_epoch"] = diverged["epoch"]
        text = json.dumps(_finite(metrics), indent=2, allow_nan=False)
        atomic_write(self.folder / METRICS, lambda file: file.write(text.encode()))


def check_run_folder(config: TrainConfig) -> None:
    """Fail now, before any data is loaded or model built, if the run could not be written or continued.

    ``out_dir`` must be a folder this process can write in (it is created if missing); with
    ``config.resume``, the run to continue must be free and hold a checkpoint of these parameters.
    """
    out_dir = resolve(config.out_dir)
    check_writable_folder(out_dir, "out_dir")
    if config.resume:
        run_dir = _run_to_resume(out_dir, config)
        if run_dir is not None:
            check_free(run_dir)
            check_writable_folder(run_dir, "the run's folder")
            read_checkpoint(run_dir / CHECKPOINT, config)


def read_checkpoint(path: Path, config: TrainConfig | None = None) -> dict:
    """The state a run saved, on the CPU, checked to belong to a run of ``config`` if given."""
    fix = "Move it away, or start a new run (resume=False)."
    size = path.stat().st_size
    if not zipfile.is_zipfile(path):  # what torch.save writes, and fit() reads nothing else
        raise ValueError(f"{display(path)} is not a PyTorch checkpoint (damaged, truncated, or never one): its "
                         f"{size_text(size)} are not the zip archive torch.save writes. {fix}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(f"{display(path)} holds Python objects other than tensors and plain values, which are "
                         f"not loaded because loading them can run any code; fit() never writes such a "
                         f"checkpoint. {fix}") from None
    except (RuntimeError, EOFError, ValueError) as error:
        raise ValueError(f"cannot read the checkpoint {display(path)} ({type(error).__name__}: {error}); "
                         f"it is truncated or was not written by fit(). {fix}") from None
    if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"{display(path)} is not a checkpoint written by fit(). {fix}")
    parts = {"config": dict, "model": dict, "optimizer": dict, "scheduler": dict, "rng": dict, "history": list}
    broken = [name for name, kind in parts.items() if not isinstance(state.get(name), kind)]
    broken += [f"rng.{name}" for name in ("torch", "loader")
               if "rng" not in broken and not isinstance(state["rng"].get(name), torch.Tensor)]
    if broken:
        raise ValueError(f"{display(path)} has the format of fit()'s checkpoints, but its {', '.join(broken)} "
                         f"{'is' if len(broken) == 1 else 'are'} missing or of the wrong kind: it is damaged. {fix}")
    changed = differences(state["config"], config) if config is not None else {}
    if changed:
        details = ", ".join(f"{k}={new!r} (the run used {old!r})" for k, (old, new) in changed.items())
        raise ValueError(f"cannot resume {display(path.parent)} with other parameters: {details}. "
                         f"Only {', '.join(sorted(_resumable_changes(config)))} may change; to continue another run, "
                         f"name it: resume='run-NNN'. {found_runs(path.parent.parent)}")
    return state


def differences(saved: dict, config: TrainConfig) -> dict:
    """The parameters a run was made with that ``config`` changes, where a resume may not change them:
    name -> (saved, new). Those the chosen options ignore (``config.unused()``) do not count."""
    may_change = _resumable_changes(config) | set(config.unused())
    ours = json.loads(json.dumps(config.as_dict()))  # tuples as lists, as metrics.json holds them
    return {k: (v, getattr(config, k)) for k, v in json.loads(json.dumps(saved, default=str)).items()
            if k not in may_change and k in ours and ours[k] != v}


def made_with(saved: dict | None, config: TrainConfig) -> bool:
    """Whether a run's recorded parameters are ``config``'s, as far as a resume is concerned."""
    return isinstance(saved, dict) and not differences(saved, config)


def _choose(config: TrainConfig) -> tuple[Path, bool]:
    """The run folder to train in, and whether it is a run to resume (else a new one)."""
    out_dir = resolve(config.out_dir)
    if config.resume:
        run_dir = _run_to_resume(out_dir, config)
        if run_dir is not None:
            return run_dir, True
        say(f"nothing to resume: {found_runs(out_dir)} Starting a new run.")
    return new_run(out_dir), False


def _run_to_resume(out_dir: Path, config: TrainConfig) -> Path | None:
    """The run ``config.resume`` names in ``out_dir`` (with True, preferring one made with these parameters)."""
    return find_run(out_dir, config.resume, fits=lambda metrics: made_with(metrics.get("parameters"), config))


def _resumable_changes(config: TrainConfig) -> set[str]:
    """The parameters a resume may change (epochs too, with the step schedule: the cosine one's shape needs it)."""
    return _RESUMABLE_CHANGES - ({"epochs"} if config.schedule == "cosine" else set())


def _tensors(value) -> Iterator[torch.Tensor]:
    """The tensors in a nest of dicts, lists and tuples."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (dict, list, tuple)):
        for part in value.values() if isinstance(value, dict) else value:
            yield from _tensors(part)


def _finite(value):
    """JSON has no NaN or infinity (a diverged run has them): write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
