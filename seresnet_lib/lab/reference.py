"""What SE does in a trained run, and the reference run's record of it.

Lesson 07 measures a trained SE-ResNet-50 live: each class's mean excitation in the SENet
paper's six blocks, how class-specific those are beside the same network untrained, and what
switching each stage's SE off costs. The reference run (``notebooks/params/reference.yaml``:
lesson 05 trained long enough to level off) was measured the same way once, and its small
results are committed in ``notebooks/results/reference/`` for lessons 05-07 to show beside
the reader's live run:

    seresnet sweep notebooks/params/sweep_reference.yaml --runner inline --jobs 2
    seresnet reference record runs/sweeps/reference/model=seresnet50-seed=0/run-001 \\
        --step-rate 190.9 174.1 --made-with "seresnet sweep ..."

The folder holds:

- ``metrics.json``: the run's own, as ``fit`` wrote it (parameters, every epoch), less who made it and where;
- ``excitations.npz``: each class's mean excitation in the six blocks (classes x C per block);
- ``switch_off.csv``: the test accuracy with each stage's SE at scale 1, and fixed at its mean;
- ``summary.json``: accuracy per class, class spread per block (trained, untrained, labels shuffled), and how,
  when and on what machine it was made.
"""

from __future__ import annotations

import csv
import datetime
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..model.excitations import (PAPER_BLOCKS, class_means, class_spread, class_spreads, excitations, se_modules,
                                 shuffled, stage_of, switched_off)
from ..paths import RESULTS, display
from ..training import (atomic_write, evaluate, initial_model, load_trained, per_class_accuracy, predict, read_metrics,
                        run_data)
from ..training.folders import METRICS
from .machine import machine
from .results import write_rows_csv

REFERENCE = RESULTS / "reference"
_FILES = (METRICS, "excitations.npz", "switch_off.csv", "summary.json")
_SUMMARY_KEYS = ("classes", "blocks", "train_images", "test_images", "accuracy", "per_class_accuracy", "class_spread",
                 "untrained_class_spread", "shuffled_class_spread", "recorded")


def switch_off_table(model: nn.Module, loader, mean_weights: dict[str, torch.Tensor]) -> list[dict]:
    """The test accuracy with each stage's SE switched off, one row per stage that has SE:
    ``scale_one`` with its gates returning 1 (a plain ResNet block with these weights), ``mean_scale``
    with them fixed at ``mean_weights`` (name -> C, each channel's mean excitation) for every image."""
    stages = sorted({stage_of(name) for name in se_modules(model)})
    rows = []
    for stage in stages:
        with switched_off(model, [stage]):
            _, scale_one = evaluate(model, loader)
        with switched_off(model, [stage], fixed=mean_weights):
            _, mean_scale = evaluate(model, loader)
        rows.append(dict(stage=stage, scale_one=scale_one, mean_scale=mean_scale))
    return rows


@dataclass
class Reference:
    """The reference run's committed results (``load_reference``)."""

    metrics: dict  # the run's metrics.json: "parameters", "epochs", ...
    classes: tuple[str, ...]
    class_means: dict[str, torch.Tensor]  # block -> classes x C mean excitations on the test set
    switch_off: list[dict]  # stage, scale_one, mean_scale: test accuracies
    summary: dict  # accuracy, per_class_accuracy, class_spread (trained, untrained, shuffled labels), recorded

    @property
    def parameters(self) -> dict:
        return self.metrics["parameters"]

    @property
    def epochs(self) -> list[dict]:
        return self.metrics["epochs"]

    @property
    def accuracy(self) -> float:
        return self.summary["accuracy"]

    @property
    def label(self) -> str:
        """What the run was, for a figure's legend: "reference: 8,000 images, 12 epochs, recorded on 2026-12-06"."""
        return (f"reference: {self.summary['train_images']:,} images, {len(self.epochs)} epochs, "
                f"recorded on {self.summary['recorded']['date']}")


def load_reference(folder: str | Path = REFERENCE) -> Reference:
    """The committed results of the reference run (``notebooks/results/reference/``)."""
    folder = Path(folder)
    again = "record it again with seresnet reference record RUN_DIR"
    if not folder.is_dir():
        raise FileNotFoundError(f"{display(folder)} does not exist: the reference run's results come with the lessons, "
                                "in notebooks/results/reference/; run the lesson from a copy of the whole notebooks/ "
                                "folder (a clone of the repository), or set SERESNET_NOTEBOOKS to one and restart the "
                                "kernel")
    missing = [name for name in _FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{display(folder)} lacks {', '.join(missing)}: {again}")
    try:
        summary = json.loads((folder / "summary.json").read_text())
        with np.load(folder / "excitations.npz") as arrays:
            means = {name: torch.from_numpy(arrays[name]) for name in summary["blocks"]}
        with open(folder / "switch_off.csv", newline="") as file:
            table = [{"stage": int(row["stage"]), "scale_one": float(row["scale_one"]),
                      "mean_scale": float(row["mean_scale"])} for row in csv.DictReader(file)]
        metrics = json.loads((folder / METRICS).read_text())
        lacking = [key for key in _SUMMARY_KEYS if key not in summary] + [
            f"{METRICS}: {key}" for key in ("parameters", "epochs") if key not in metrics]
        if lacking:
            raise KeyError(", ".join(lacking))
        reference = Reference(metrics, tuple(summary["classes"]), means, table, summary)
    except (KeyError, TypeError, ValueError, OSError) as error:
        raise ValueError(f"{display(folder)} is damaged ({type(error).__name__}: {error}); {again}") from None
    return reference


@torch.no_grad()
def record_reference(run_dir: str | Path, folder: str | Path = REFERENCE, step_rate: list[float] | None = None,
           made_with: str | None = None) -> Reference:
    """Measure a complete run of lesson 05 as lesson 07 does and write its results into ``folder``.

    ``step_rate``: R, the speed unit of the series' time budgets, read before and after the run;
    ``made_with``: the command that trained it. Both go into ``summary.json`` with the date, the machine and the run's
    seconds, so that the record says how it was made."""
    run_dir = Path(run_dir).resolve()
    metrics = read_metrics(run_dir)
    if not metrics or metrics.get("status") != "complete":
        raise ValueError(f"{display(run_dir)} is not a complete run of fit() (its metrics.json says "
                         f"{(metrics or {}).get('status', 'nothing')}); record a run that finished")
    model, config, _ = load_trained(run_dir.parent, str(run_dir), device="cpu")
    have = set(se_modules(model)) if config.model == "seresnet50" else set()
    if not set(PAPER_BLOCKS) <= have:
        raise ValueError(f"{display(run_dir)} trained {config.model} with SE in stages {config.se_stages}; the "
                         f"record needs SE in all four (the blocks {', '.join(PAPER_BLOCKS)})")
    data = run_data(config)
    classes = data.test_set.classes
    probabilities, labels = predict(model, data.test_loader)
    predicted = probabilities.argmax(1)
    accuracy = (predicted == labels).sum().item() / len(labels)
    per_class = per_class_accuracy(predicted, labels, len(classes))
    recorded, labels = excitations(model, data.test_loader)  # every block: the switch-off needs their means
    paper = {name: recorded[name] for name in PAPER_BLOCKS}
    means = {name: class_means(weights, labels, len(classes)) for name, weights in paper.items()}
    table = switch_off_table(model, data.test_loader, {name: w.mean(0) for name, w in recorded.items()})
    untrained, untrained_labels = excitations(initial_model(config, len(classes)), data.test_loader, PAPER_BLOCKS)
    summary = dict(
        classes=list(classes), blocks=list(PAPER_BLOCKS), train_images=len(data.train_set),
        test_images=len(data.test_set), accuracy=accuracy,
        per_class_accuracy=dict(zip(classes, per_class.tolist())),
        class_spread={name: class_spread(means[name]) for name in PAPER_BLOCKS},
        untrained_class_spread=class_spreads(untrained, untrained_labels, len(classes)),
        shuffled_class_spread=class_spreads(paper, shuffled(labels), len(classes)),
        recorded=dict(date=datetime.date.today().isoformat(), source=display(run_dir), made_with=made_with,
                      step_rate=step_rate, seconds=round(sum(row["seconds"] for row in metrics["epochs"]), 1),
                      machine=machine()),
    )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shared = {key: value for key, value in metrics.items() if key not in ("owner", "host")}  # committed: no names
    atomic_write(folder / METRICS, lambda file: file.write(json.dumps(shared, indent=2).encode()))
    atomic_write(folder / "excitations.npz",
                 lambda file: np.savez_compressed(file, **{k: v.numpy() for k, v in means.items()}))
    write_rows_csv(folder / "switch_off.csv", table)
    atomic_write(folder / "summary.json", lambda file: file.write(json.dumps(summary, indent=2).encode()))
    return load_reference(folder)
