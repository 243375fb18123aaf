"""Training: ``fit`` runs epochs, evaluates, checkpoints and can resume where it stopped.

Each epoch writes, atomically, ``checkpoint.pt`` (model, optimizer, scheduler, random
states, history) and ``metrics.json`` (with the run's status: running, complete or
diverged) into the run's own folder (``runs.py``). A run stopped after epoch k and resumed
ends with exactly the numbers of an uninterrupted run on a CPU (on a GPU, cuDNN's
convolutions may differ in the last bits from run to run). A run whose loss stops being a
number ends with ``TrainingDiverged``, its last good checkpoint kept.

    python -m seresnet_lib.train notebooks/params/article_recipe.yaml -p epochs 1
    torchrun --nproc_per_node=4 -m seresnet_lib.train notebooks/params/cifar10_strong.yaml
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.std import tqdm

from . import distributed
from .config import TrainConfig, load_preset
from .data import ImageSplit, load_dataset
from .distributed import synchronize_batch_norm
from .loader import BatchLoader
from .measure import count_parameters
from .metrics import Tally, autocast, evaluate
from .models import resnet50, seresnet50
from .paths import display, resolve
from .runs import CHECKPOINT, METRICS, atomic_write, check_free, check_writable_folder, find_run, found_runs, \
    RUN_NAME, hold, keep_newest_checkpoints, new_run, read_metrics, run_folders
from .seeding import seed_everything

CHECKPOINT_FORMAT = "seresnet_lib/checkpoint/1"
# Parameters that may change when a run is resumed; any other change is a different experiment.
# (epochs too, for the step schedule: the cosine schedule's shape depends on it.)
# How a run is computed (device, layout, precision, compiling, processes) may change too: a run
# started on a GPU can go on on a CPU.
RESUMABLE_CHANGES = {"epochs", "resume", "keep_checkpoints", "out_dir", "device", "channels_last", "data_dir",
                     "download", "precision", "torch_compile", "sync_bn"}


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


def build_model(config: TrainConfig, num_classes: int) -> nn.Module:
    """The model the config names, on the config's device, in channels-last layout if the config asks."""
    factory = seresnet50 if config.model == "seresnet50" else resnet50
    options = dict(reduction=config.reduction, se_stages=config.se_stages, se_position=config.se_position) \
        if config.model == "seresnet50" else {}
    model = factory(num_classes, stem=config.stem, zero_init_residual=config.zero_init_residual, **options)
    layout = torch.channels_last if config.channels_last else torch.contiguous_format
    return model.to(config.torch_device, memory_format=layout)


def make_optimizer(model: nn.Module, config: TrainConfig):
    """SGD (momentum, Nesterov, weight decay) and its per-epoch learning-rate schedule.

    On a CPU or a GPU, SGD's fused form: one kernel updates every weight (the same arithmetic).
    """
    fused = next(model.parameters()).device.type in ("cpu", "cuda")
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay, nesterov=config.nesterov, fused=fused)
    return optimizer, make_scheduler(optimizer, config)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    """The config's per-epoch learning-rate schedule for ``optimizer``."""
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step, gamma=config.lr_gamma)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)


def train_one_epoch(model: nn.Module, batches, optimizer: torch.optim.Optimizer,
                    autocast_dtype: torch.dtype | None = None, loss_weights: list[float] | None = None
                    ) -> tuple[float, float]:
    """One pass over ``batches`` of (images N x 3 x H x W, labels N): the mean loss and accuracy.

    ``autocast_dtype``: the forward pass in mixed precision (bfloat16 needs no loss scaling).
    ``loss_weights``: one per batch, for several processes (``BatchLoader.loss_weights``).
    """
    model.train()  # batch norm uses each batch's own statistics (and updates its running ones)
    device = next(model.parameters()).device
    tally = Tally(device)  # running sums of the loss and the right answers
    weights = iter(loss_weights) if loss_weights is not None else None
    for images, labels in batches:
        with autocast(device, autocast_dtype):
            logits = model(images)  # forward pass: N x classes scores
            loss = nn.functional.cross_entropy(logits, labels)  # the mean over the batch
        optimizer.zero_grad(set_to_none=True)  # forget the previous batch's gradients
        # backward pass: the gradient of the loss for every weight
        (loss if weights is None else loss * next(weights)).backward()
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

    How the steps run comes from the config too: ``precision`` (bfloat16 autocast),
    ``torch_compile``, and, in processes that torchrun started (``distributed.py``),
    DistributedDataParallel, with ``sync_bn`` batch norm over all processes (which converts
    ``model``'s batch norm layers in place). Then the loaders must be made for this process's
    shard (``run_data`` does), and only rank 0 prints and writes files.
    """
    if progress not in ("auto", "bar", "lines"):
        raise ValueError(f"progress={progress!r} is not allowed; choose one of 'auto', 'bar', 'lines'")
    _check_shards(train_loader, test_loader)
    optimizer, scheduler = _optimizer_and_scheduler(model, config, optimizer, scheduler)
    if config.sync_bn and distributed.active():
        synchronize_batch_norm(model)  # the same parameters: the optimizer still holds them
    main = distributed.is_main()
    bar = main and (progress == "bar" or (progress == "auto" and _interactive()))
    run_dir, resuming = distributed.from_main(lambda: _choose_run(config))
    history = History(run_dir=run_dir)
    with ExitStack() as held:
        distributed.from_main(lambda: held.enter_context(hold(run_dir)))  # the lock, in rank 0's process
        held.enter_context(_cudnn_benchmark(next(model.parameters()).is_cuda))
        if resuming:
            _resume(run_dir, config, model, optimizer, scheduler, train_loader, history)
        else:
            train_loader.restart()
            _say(f"new run in {display(run_dir)}")
        if main:
            _write_metrics(run_dir, config, model, history, _status(history, config))
        try:
            _train_epochs(model, train_loader, test_loader, config, optimizer, scheduler, history, bar)
        except TrainingDiverged:
            raise
        except BaseException:  # interrupted or failed: say so to whoever reads metrics.json
            if main:
                _write_metrics(run_dir, config, model, history, "stopped")
            raise
    return history


def stepping_model(model: nn.Module, config: TrainConfig) -> nn.Module:
    """What the training steps call: ``model`` itself, in DistributedDataParallel when several
    processes train, compiled if ``config.torch_compile``. Its weights are ``model``'s."""
    if distributed.active():
        model = DistributedDataParallel(model)
    return torch.compile(model) if config.torch_compile else model


@contextmanager
def _cudnn_benchmark(on_gpu: bool):
    """On a GPU, cuDNN times each convolution's algorithms once and keeps the fastest, while fit runs."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = before or on_gpu
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def train_run(config: TrainConfig, progress: str = "lines") -> History:
    """Lesson 05's run without its demonstrations: the data, the loaders, the seeded model, ``fit``.

    Same config, same numbers as executing the lesson (on one machine), in a fraction of the
    time: sweeps of short runs use it to skip a kernel start, the imports and the figures per run.
    """
    distributed.setup(config.device)
    check_run_folder(config)
    data = run_data(config)
    model = initial_model(config, num_classes=len(data.train_set.classes))
    return fit(model, data.train_loader, data.test_loader, config, progress=progress)


def initial_model(config: TrainConfig, num_classes: int) -> nn.Module:
    """The model a run of ``config`` starts from: built after seeding with ``config.seed``."""
    seed_everything(config.seed)
    return build_model(config, num_classes)


def train_or_load(config: TrainConfig) -> tuple[nn.Module, TrainConfig, Path]:
    """The model of the newest complete run in ``config.out_dir`` trained with these parameters, as
    ``load_trained`` gives it; if there is none with its checkpoint, ``train_run`` trains it first."""
    if config.keep_checkpoints == 0:
        raise ValueError("keep_checkpoints=0 writes no checkpoint, so the run could not be loaded once trained; "
                         "use keep_checkpoints=1 (or None to keep every run's)")
    out_dir = resolve(config.out_dir)
    done = [run for run in reversed(run_folders(out_dir))
            if (run / CHECKPOINT).is_file() and _trained_as(read_metrics(run), config)]
    run_dir = done[0] if done else train_run(config).run_dir
    return load_trained(run_dir, device=config.device)


def _trained_as(metrics: dict | None, config: TrainConfig) -> bool:
    """Whether a run's metrics are those of a complete run of ``config`` (how it was computed aside)."""
    return (metrics or {}).get("status") == "complete" and _fits(metrics.get("parameters"), config) \
        and len(metrics["epochs"]) == config.epochs


class RunData(NamedTuple):
    train_set: ImageSplit
    test_set: ImageSplit
    train_loader: BatchLoader
    test_loader: BatchLoader


def run_data(config: TrainConfig) -> RunData:
    """A run's data as lesson 05 prepares it: the splits its seed picks, a shuffled (and, if asked,
    augmented) training loader, and a test loader in batches of 500, both standardized with the
    training set's channel statistics if ``config.normalize``."""
    with distributed.main_first():  # with several processes, one downloads and the others read
        train_set, test_set = load_dataset(config.dataset, config.train_size, config.test_size, seed=config.seed,
                                           data_dir=config.data_dir, download=config.download)
    mean, std = train_set.channel_stats() if config.normalize else (None, None)
    shard = distributed.shard()
    train_loader = BatchLoader(train_set, config.batch_size, shuffle=True, augment=config.augment,
                               mean=mean, std=std, device=config.torch_device, seed=config.seed, shard=shard)
    test_loader = BatchLoader(test_set, 500, mean=mean, std=std, device=config.torch_device, shard=shard)
    return RunData(train_set, test_set, train_loader, test_loader)


def load_trained(out_dir: str | Path, run: bool | str = True, device: str = "auto") -> tuple[nn.Module, TrainConfig,
                                                                                            Path]:
    """The model a run trained, from its checkpoint, in evaluation mode on ``device``; its config and folder.

    ``run=True``: the newest run of ``out_dir`` that completed and kept its checkpoint (else the
    newest with a checkpoint); ``"run-001"`` or a path: that run. ``out_dir`` may also be a run's own
    folder (``runs/05_train_cifar10/run-001``). FileNotFoundError if there is none.
    """
    out_dir = resolve(out_dir)
    if run is True and RUN_NAME.fullmatch(out_dir.name):
        out_dir, run = out_dir.parent, out_dir.name
    try:
        run_dir = find_run(out_dir, run, fits=lambda metrics: metrics.get("status") == "complete")
    except ValueError as missing:  # a named run that does not exist or has no checkpoint
        raise FileNotFoundError(str(missing).replace(f"resume={run!r}", f"run={run!r}", 1)) from None
    if run_dir is None:
        raise FileNotFoundError(f"no run with a checkpoint in {display(out_dir)}: {found_runs(out_dir)}")
    state = _read_checkpoint(run_dir / CHECKPOINT)
    config = TrainConfig(**{**state["config"], "device": device})
    model = build_model(config, num_classes=state["model"]["fc.weight"].shape[0])
    model.load_state_dict(state["model"])
    return model.eval(), config, run_dir


def _train_epochs(model, train_loader, test_loader, config, optimizer, scheduler, history, bar) -> None:
    """The epochs still to train, each checkpointed; TrainingDiverged when a loss is not finite."""
    run_dir, main = history.run_dir, distributed.is_main()
    stepper = stepping_model(model, config)
    weights = train_loader.loss_weights() if distributed.active() else None
    for epoch in range(len(history.epochs) + 1, config.epochs + 1):
        start = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        batches = tqdm(train_loader, desc=f"epoch {epoch}/{config.epochs}", leave=False, file=sys.stdout) \
            if bar else train_loader
        train_loss, train_acc = train_one_epoch(stepper, batches, optimizer, config.autocast_dtype, weights)
        scheduler.step()
        if not config.sync_bn:
            distributed.copy_buffers_from_main(model)  # every process evaluates and keeps rank 0's statistics
        test_loss, test_acc = evaluate(model, test_loader, config.autocast_dtype)
        row = dict(epoch=epoch, train_loss=train_loss, train_acc=train_acc, test_loss=test_loss,
                   test_acc=test_acc, lr=lr, seconds=round(time.perf_counter() - start, 2))
        _say(f"epoch {epoch:>3}/{config.epochs}  train loss {train_loss:.4f} acc {train_acc:6.2%}  "
             f"test loss {test_loss:.4f} acc {test_acc:6.2%}  lr {lr:.2g}  time {row['seconds']:.1f}s")
        if not (math.isfinite(train_loss) and math.isfinite(test_loss)):
            if main:
                _write_metrics(run_dir, config, model, history, "diverged", diverged=row)
            losses = {"training": train_loss, "test": test_loss}
            raise TrainingDiverged(_divergence_message(run_dir, epoch, losses, optimizer, history,
                                                      config.keep_checkpoints))
        history.epochs.append(row)
        if not main:
            continue
        if config.keep_checkpoints != 0:
            _save_checkpoint(run_dir, model, optimizer, scheduler, train_loader, config, history)
        _write_metrics(run_dir, config, model, history, _status(history, config))
        if config.keep_checkpoints is not None and (deleted := keep_newest_checkpoints(run_dir,
                                                                                        config.keep_checkpoints)):
            _say(deleted)


def _say(message: str) -> None:
    """Print (from rank 0 only, when several processes train)."""
    if distributed.is_main():
        print(message, flush=True)


def _check_shards(train_loader, test_loader) -> None:
    """Refuse loaders that do not split the batches among the processes that train."""
    expected = distributed.shard()
    for role, loader in (("train_loader", train_loader), ("test_loader", test_loader)):
        shard = getattr(loader, "shard", (0, 1))
        if shard != expected:
            raise ValueError(f"{role} is made for shard {shard} (rank, processes), but this process is rank "
                             f"{expected[0]} of {expected[1]}; make both loaders with shard=({expected[0]}, "
                             f"{expected[1]}) (run_data does)")


def _choose_run(config: TrainConfig) -> tuple[Path, bool]:
    """The run folder to train in, and whether it is a run to resume (else a new one)."""
    out_dir = resolve(config.out_dir)
    if config.resume:
        run_dir = _run_to_resume(out_dir, config)
        if run_dir is not None:
            return run_dir, True
        _say(f"nothing to resume: {found_runs(out_dir)} Starting a new run.")
    return new_run(out_dir), False


def _run_to_resume(out_dir: Path, config: TrainConfig) -> Path | None:
    """The run ``config.resume`` names in ``out_dir`` (with True, preferring one made with these parameters)."""
    return find_run(out_dir, config.resume, fits=lambda metrics: _fits(metrics.get("parameters"), config))


def _resumable_changes(config: TrainConfig) -> set[str]:
    """The parameters a resume may change (epochs too, with the step schedule: the cosine one's shape needs it)."""
    return RESUMABLE_CHANGES - ({"epochs"} if config.schedule == "cosine" else set())


def _differences(saved: dict, config: TrainConfig) -> dict:
    """The parameters a run was made with that ``config`` changes, where a resume may not change them.

    Those the chosen options ignore (``config.unused()``) do not count.
    """
    may_change = _resumable_changes(config) | set(config.unused())
    ours = json.loads(json.dumps(config.as_dict()))  # tuples as lists, as metrics.json holds them
    return {k: (v, getattr(config, k)) for k, v in json.loads(json.dumps(saved, default=str)).items()
            if k not in may_change and k in ours and ours[k] != v}


def _fits(saved: dict | None, config: TrainConfig) -> bool:
    return isinstance(saved, dict) and not _differences(saved, config)


def _resume(run_dir, config, model, optimizer, scheduler, train_loader, history) -> None:
    """Load the run's checkpoint into the model, optimizer, scheduler, random states and history."""
    if not (run_dir / CHECKPOINT).is_file():
        raise ValueError(f"the checkpoint of {display(run_dir)} disappeared before training could resume it "
                         f"(pruned?). {found_runs(run_dir.parent)}")
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
    _say(f"resumed {display(run_dir)} after epoch {len(history.epochs)}")
    processes, now = state.get("processes", 1), distributed.world_size()
    if processes != now and not config.sync_bn:
        _say(f"note: the run was trained by {processes} process(es) and goes on with {now}; the global batch is the "
             f"same, but batch norm's statistics now come from {config.batch_size // now} images per process "
             f"instead of {config.batch_size // processes} (sync_bn=True takes them over the whole batch)")
    if len(history.epochs) >= config.epochs:
        _say(f"the run already has {len(history.epochs)} epochs: nothing to train (raise epochs to go on)")


def _status(history: History, config: TrainConfig) -> str:
    return "complete" if len(history.epochs) >= config.epochs else "running"


def _divergence_message(run_dir: Path, epoch: int, losses: dict, optimizer, history: History,
                        keep_checkpoints: int | None) -> str:
    kept = f"the checkpoint after epoch {len(history.epochs)}" if history.epochs else "no checkpoint (none was good)"
    if keep_checkpoints == 0:
        kept = "no checkpoint (keep_checkpoints=0)"
    broken = " and ".join(f"the {kind} loss is {value}" for kind, value in losses.items() if not math.isfinite(value))
    group = optimizer.param_groups[0]
    start = group.get("initial_lr", group["lr"])  # schedulers keep the run's starting rate here
    return (f"training diverged in epoch {epoch}: {broken}, and the run cannot recover. The likely cause is a "
            f"learning rate too high for this model and batch size (lr={start:g}); try lr={start / 10:g}. "
            f'{display(run_dir)} keeps {kept}; its metrics.json says "status": "diverged".')


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
            _read_checkpoint(run_dir / CHECKPOINT, config)


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
        "processes": distributed.world_size(),
    }
    atomic_write(run_dir / CHECKPOINT, lambda file: torch.save(state, file))


def _write_metrics(run_dir, config, model, history, status: str, diverged: dict | None = None) -> None:
    """``metrics.json``: the status sweeps read (running, complete, stopped, diverged), the parameters,
    every epoch (a diverged one last, its non-finite losses as null) and the best good one."""
    best = history.best
    metrics = {
        "status": status,
        "parameters": config.as_dict(),
        "epochs": history.epochs + ([diverged] if diverged else []),
        "best_test_acc": best and best["test_acc"],
        "best_epoch": best and best["epoch"],
        "model_parameters": count_parameters(model),
        "device": str(next(model.parameters()).device),
        "processes": distributed.world_size(),
    }
    if diverged:
        metrics["diverged_epoch"] = diverged["epoch"]
    text = json.dumps(_finite(metrics), indent=2, allow_nan=False)
    atomic_write(run_dir / METRICS, lambda file: file.write(text.encode()))


def _read_checkpoint(path: Path, config: TrainConfig | None = None) -> dict:
    """The state ``_save_checkpoint`` wrote, on the CPU, checked to belong to a run of ``config`` if given."""
    fix = "Move it away, or start a new run (resume=False)."
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(f"{display(path)} holds Python objects other than tensors and plain values, which are "
                         f"not loaded because loading them can run any code; fit() never writes such a "
                         f"checkpoint. {fix}") from None
    except (RuntimeError, EOFError, ValueError) as error:
        raise ValueError(f"cannot read the checkpoint {display(path)} ({type(error).__name__}: {error}); "
                         f"it is truncated or was not written by fit(). {fix}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{display(path)} is not a checkpoint written by fit(). {fix}")
    parts = {"config": dict, "model": dict, "optimizer": dict, "scheduler": dict, "rng": dict, "history": list}
    broken = [name for name, kind in parts.items() if not isinstance(state.get(name), kind)]
    broken += [f"rng.{name}" for name in ("torch", "loader")
               if "rng" not in broken and not isinstance(state["rng"].get(name), torch.Tensor)]
    if broken:
        raise ValueError(f"{display(path)} has the format of fit()'s checkpoints, but its {', '.join(broken)} "
                         f"{'is' if len(broken) == 1 else 'are'} missing or of the wrong kind: it is damaged. {fix}")
    changed = _differences(state["config"], config) if config is not None else {}
    if changed:
        details = ", ".join(f"{k}={new!r} (the run used {old!r})" for k, (old, new) in changed.items())
        raise ValueError(f"cannot resume {display(path.parent)} with other parameters: {details}. "
                         f"Only {', '.join(sorted(_resumable_changes(config)))} may change; to continue another run, "
                         f"name it: resume='run-NNN'. {found_runs(path.parent.parent)}")
    return state


def main(argv: list[str] | None = None) -> int:
    """``python -m seresnet_lib.train [PRESET.yaml] [-p NAME VALUE]...``: lesson 05's run, without the notebook.

    Under ``torchrun --nproc_per_node=N`` every process runs this, and they train together (DDP).
    """
    parser = argparse.ArgumentParser(
        prog="python -m seresnet_lib.train",
        description="Train as lesson 05 does (data, loaders, seeded model, fit), with a preset's parameters. "
                    "Under torchrun, in several processes with DistributedDataParallel.",
        epilog="examples: python -m seresnet_lib.train notebooks/params/article_recipe.yaml -p epochs 1\n"
               "          torchrun --nproc_per_node=4 -m seresnet_lib.train notebooks/params/cifar10_strong.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset", nargs="?", help="a YAML file of parameters (notebooks/params/); the rest keep "
                                                  "their defaults")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a parameter, read as YAML (-p epochs 3 -p sync_bn true); wins over the preset")
    args = parser.parse_args(argv)
    try:
        preset = load_preset(args.preset) if args.preset else {}
        parameters = {**preset, **{name: yaml.safe_load(value) for name, value in args.parameter}}
        unknown = sorted(set(parameters) - set(TrainConfig().as_dict()))
        if unknown:
            raise ValueError(f"unknown parameter(s): {', '.join(unknown)}; the parameters are: "
                             f"{', '.join(TrainConfig().as_dict())}")
        config = TrainConfig(**parameters)
    except (OSError, ValueError, yaml.YAMLError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        history = train_run(config)
        best = history.best
        _say(f"{display(history.run_dir)}: best test accuracy {best['test_acc']:.2%} (epoch {best['epoch']})"
             if best else f"{display(history.run_dir)}: no epoch trained")
    finally:
        distributed.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
