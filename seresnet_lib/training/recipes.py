"""Lesson 05's run in a few calls: the model a config names, the run's data, a whole run
(``train_run``), and a trained model read back (``load_trained``, ``train_or_load``)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from ..model.models import ResNet
from ..paths import display, resolve
from ..seeding import seed_everything
from . import distributed
from .config import TrainConfig
from .data import ImageSplit, load_dataset
from .folders import CHECKPOINT, RUN_NAME, find_run, found_runs, read_metrics, run_folders
from .loader import BatchLoader
from .loop import fit
from .run import History, check_run_folder, made_with, read_checkpoint


def build_model(config: TrainConfig, num_classes: int) -> nn.Module:
    """The model the config names, on the config's device, in channels-last layout if the config asks."""
    layout = torch.channels_last if config.channels_last else torch.contiguous_format
    return ResNet(config.network(num_classes)).to(config.torch_device, memory_format=layout)


def initial_model(config: TrainConfig, num_classes: int) -> nn.Module:
    """The model a run of ``config`` starts from: built after seeding with ``config.seed``."""
    seed_everything(config.seed)
    return build_model(config, num_classes)


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
    run_dir = find_run(out_dir, run, fits=lambda metrics: metrics.get("status") == "complete", parameter="run",
                       missing=FileNotFoundError)
    if run_dir is None:
        raise FileNotFoundError(f"no run with a checkpoint in {display(out_dir)}: {found_runs(out_dir)}")
    state = read_checkpoint(run_dir / CHECKPOINT)
    config = TrainConfig(**{**state["config"], "device": device})
    model = build_model(config, num_classes=state["model"]["fc.weight"].shape[0])
    model.load_state_dict(state["model"])
    return model.eval(), config, run_dir


def _trained_as(metrics: dict | None, config: TrainConfig) -> bool:
    """Whether a run's metrics are those of a complete run of ``config`` (how it was computed aside)."""
    return (metrics or {}).get("status") == "complete" and made_with(metrics.get("parameters"), config) \
        and len(metrics["epochs"]) == config.epochs
