"""Side-by-side throughput measurements, in one process and one run.

    seresnet benchmark                  # all four comparisons (about 8 minutes on 2 cores)
    seresnet benchmark step eval        # some of them
    seresnet benchmark --json out.json  # the figures as JSON too

- **step**: one SGD training step (Nesterov momentum, weight decay) of the library's SE-ResNet-50
  and of timm's ``legacy_seresnet50`` (the same architecture), each in contiguous and
  channels-last layout with the same optimizer; then the step ``fit`` takes (channels-last,
  fused SGD) and every speed option the library offers (bfloat16 autocast, ``torch.compile``).
- **eval**: evaluation throughput of both models.
- **fit**: one epoch of ``fit`` (loading, augmentation, training, evaluation) against the
  article's loop with the same model: a ``DataLoader`` with per-image transforms and 4 workers,
  contiguous layout, SGD's default form (on the CPU a loop over the weights) and ``.item()`` every step.
- **loader**: the batch loader against a ``DataLoader`` with per-image transforms.

Steps are timed in turns (every variant once per round, so a machine slowing down or speeding
up touches all alike) after warm-up steps, and the median round is reported. The comparison
is the point, not the absolute numbers, which differ 4-5x between machines. Everything runs on
the CPU: the GPU path is ``fit``'s (see README, Performance).
"""

from __future__ import annotations

import copy
import io
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from contextlib import redirect_stdout

import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from ..model import seresnet50
from ..seeding import seed_everything
from ..training import BatchLoader, ImageSplit, TrainConfig, autocast, fit, synthetic_cifar
from .machine import machine

PARTS = ("step", "eval", "fit", "loader")
_CLASSES = 10


class PerImageDataset(Dataset):
    """What ``torchvision.datasets.CIFAR10`` does per item: HWC uint8 array -> PIL image -> transform."""

    def __init__(self, split: ImageSplit, transform):
        self.images = split.images.permute(0, 2, 3, 1).numpy()
        self.labels = split.labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return self.transform(Image.fromarray(self.images[index])), self.labels[index]


def _timm_seresnet50(num_classes: int = _CLASSES) -> nn.Module:
    """timm's ``legacy_seresnet50``: the Caffe-faithful SE-ResNet-50, the reference of our tests."""
    import timm  # the bench extra, imported only here

    return timm.create_model("legacy_seresnet50", num_classes=num_classes)


def _in_turns(runs: dict[str, Callable[[], None]], images: int, repeats: int, warmup: int = 1) -> dict[str, float]:
    """Images per second of each run, each called ``warmup`` times, then once per round for ``repeats``
    rounds, in turns; the median round of each (every call processes ``images`` images)."""
    for run in runs.values():
        for _ in range(warmup):
            run()
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            rates[name].append(images / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def _training_step(model: nn.Module, batch_size: int, layout=torch.channels_last, fused: bool = False,
                   autocast_dtype: torch.dtype | None = None, steps: int = 2, seed: int = 0) -> Callable[[], None]:
    """``steps`` SGD steps of ``model`` on a fixed random batch (batch_size x 3 x 32 x 32), as ``fit`` takes them:
    lr 0.01, Nesterov momentum 0.9, weight decay 5e-4, gradients set to None, no host synchronisation."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, 3, 32, 32, generator=generator).contiguous(memory_format=layout)
    labels = torch.randint(0, _CLASSES, (batch_size,), generator=generator)
    model = model.to(memory_format=layout).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True,
                                fused=fused)

    def run() -> None:
        for _ in range(steps):
            with autocast(images.device, autocast_dtype):
                loss = nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return run


FIT_STEP = "fit's step (channels_last, fused SGD)"
OPTIONS = {"bf16 autocast": "fit's step + bf16 autocast", "torch.compile": "fit's step + torch.compile"}


def _compare_training_steps(batch_size: int = 128, repeats: int = 5, steps: int = 2, with_compile: bool = True,
                            seed: int = 0) -> dict:
    """Training steps per second (as images/s) of both models in both layouts and of fit's options.

    Returns {"images/s": {variant: rate}, "ratios": {...}, "compile seconds": s or None, "compile error":
    why torch.compile could not run, or None}.
    """
    cl, contiguous = torch.channels_last, torch.contiguous_format
    seed_everything(seed)
    ours, timm = seresnet50(_CLASSES), _timm_seresnet50()  # each variant trains its own copy
    runs = {
        "ours, contiguous": _training_step(copy.deepcopy(ours), batch_size, contiguous, steps=steps),
        "ours, channels_last": _training_step(copy.deepcopy(ours), batch_size, cl, steps=steps),
        "timm, contiguous": _training_step(copy.deepcopy(timm), batch_size, contiguous, steps=steps),
        "timm, channels_last": _training_step(copy.deepcopy(timm), batch_size, cl, steps=steps),
        FIT_STEP: _training_step(copy.deepcopy(ours), batch_size, cl, fused=True, steps=steps),
        OPTIONS["bf16 autocast"]: _training_step(copy.deepcopy(ours), batch_size, cl, fused=True,
                                                 autocast_dtype=torch.bfloat16, steps=steps),
    }
    compile_seconds = compile_error = None
    if with_compile:
        compiled = torch.compile(copy.deepcopy(ours).to(memory_format=cl))
        start = time.perf_counter()
        try:
            _training_step(compiled, batch_size, cl, fused=True, steps=1)()  # compiles forward and backward
            compile_seconds = time.perf_counter() - start
            runs[OPTIONS["torch.compile"]] = _training_step(compiled, batch_size, cl, fused=True, steps=steps)
        except Exception as error:  # no C++ compiler, say: the other figures still stand
            compile_error = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    rates = _in_turns(runs, batch_size * steps, repeats)
    timm_best = max(rates["timm, contiguous"], rates["timm, channels_last"])
    ours_best = max(rates["ours, contiguous"], rates["ours, channels_last"])
    ratios = {
        "ours / timm, each in its faster layout (same SGD)": ours_best / timm_best,
        "channels_last / contiguous, ours": rates["ours, channels_last"] / rates["ours, contiguous"],
        "fit's step / timm's faster layout": rates[FIT_STEP] / timm_best,
    }
    fastest = max((option for option, name in OPTIONS.items() if name in rates), key=lambda o: rates[OPTIONS[o]])
    ratios[f"fastest option ({fastest}) / timm's faster layout"] = rates[OPTIONS[fastest]] / timm_best
    return {"images/s": rates, "ratios": ratios, "compile seconds": compile_seconds, "compile error": compile_error}


def _compare_evaluation(batch_size: int = 500, repeats: int = 5, seed: int = 0) -> dict:
    """Forward passes without gradients (eval mode, channels-last) of both models, and ours in bf16."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, 3, 32, 32, generator=generator).contiguous(memory_format=torch.channels_last)
    seed_everything(seed)
    models = {"ours": seresnet50(_CLASSES), "timm": _timm_seresnet50()}

    def forward(model: nn.Module, dtype=None) -> Callable[[], None]:
        model = model.to(memory_format=torch.channels_last).eval()

        def run() -> None:
            with torch.no_grad(), autocast(images.device, dtype):
                model(images)
        return run

    rates = _in_turns({"ours": forward(models["ours"]), "timm": forward(models["timm"]),
                      "ours, bf16 autocast": forward(models["ours"], torch.bfloat16)}, batch_size, repeats)
    return {"images/s": rates, "ratios": {"ours / timm": rates["ours"] / rates["timm"],
                                          "ours bf16 / timm": rates["ours, bf16 autocast"] / rates["timm"]}}


def _article_epoch(model: nn.Module, train: ImageSplit, test: ImageSplit, batch_size: int, workers: int,
                   augment: bool) -> tuple[float, float]:
    """The article's loop: per-image transforms in DataLoader workers, plain SGD, ``.item()`` every step,
    then the test set. Returns (training loss, test accuracy)."""
    steps = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()] if augment else []
    with warnings.catch_warnings():  # on 2 cores torch advises fewer than the article's 4 workers
        warnings.filterwarnings("ignore", message="This DataLoader will create")
        train_batches = DataLoader(PerImageDataset(train, transforms.Compose([*steps, transforms.ToTensor()])),
                                   batch_size=batch_size, shuffle=True, num_workers=workers)
        test_batches = DataLoader(PerImageDataset(test, transforms.ToTensor()), batch_size=batch_size,
                                  num_workers=workers)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True)
        model.train()
        total = 0.0
        for images, labels in train_batches:
            loss = nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(labels)
        model.eval()
        correct = 0
        with torch.no_grad():
            for images, labels in test_batches:
                correct += (model(images).argmax(1) == labels).sum().item()
    return total / len(train.labels), correct / len(test.labels)


def _compare_fit_epoch(n: int = 10_000, test_size: int = 2_000, batch_size: int = 128, workers: int = 4,
                       augment: bool = True, rounds: int = 2, seed: int = 0) -> dict:
    """Epochs of ``fit`` against the article's loop, same model and initial weights, in seconds.

    Both train on ``n`` synthetic images (random crop and flip with ``augment``), from their
    loaders' construction on, and evaluate on ``test_size`` (the article's loop in batches of
    ``batch_size``, ``fit`` in the batches of 500 that ``run_data`` makes). ``fit`` runs as
    configured by default (channels-last, fused SGD, the batch loader) without writing a
    checkpoint, as the article's loop writes none. Each layout takes a warm-up step first, so
    that neither side pays for starting PyTorch's kernels. ``rounds`` epochs each, in the order
    article, fit, fit, article, ... (a machine that speeds up or slows down meanwhile touches both
    alike); the mean of each side's.
    """
    train, test = synthetic_cifar(n, seed=seed), synthetic_cifar(test_size, seed=seed + 1)
    seed_everything(seed)
    initial = seresnet50(_CLASSES)

    def fresh(layout) -> nn.Module:
        return copy.deepcopy(initial).to(memory_format=layout)

    def article() -> None:
        _article_epoch(fresh(torch.contiguous_format), train, test, batch_size, workers, augment)

    def library() -> None:
        with tempfile.TemporaryDirectory() as out_dir, redirect_stdout(io.StringIO()):  # fit's epoch line
            config = TrainConfig(epochs=1, batch_size=batch_size, augment=augment, device="cpu", seed=seed,
                                 keep_checkpoints=0, out_dir=out_dir)
            train_loader = BatchLoader(train, batch_size, shuffle=True, augment=augment, seed=seed)
            fit(fresh(torch.channels_last), train_loader, BatchLoader(test, 500), config, progress="lines")

    for layout in (torch.contiguous_format, torch.channels_last):
        _training_step(fresh(layout), min(batch_size, 8), layout, steps=1)()
    times: dict[str, list[float]] = {"the article's loop": [], "fit": []}
    for index in range(rounds):
        order = [("the article's loop", article), ("fit", library)]
        for name, epoch in order if index % 2 == 0 else reversed(order):
            start = time.perf_counter()
            epoch()
            times[name].append(time.perf_counter() - start)
    seconds = {name: statistics.fmean(values) for name, values in times.items()}
    return {"seconds": seconds, "images/s": {name: n / s for name, s in seconds.items()},
            "ratios": {"fit / the article's loop": seconds["the article's loop"] / seconds["fit"]},
            "rounds": times}


def _images_per_second(batches) -> float:
    """Drain one epoch of (images, labels) batches; augmented images delivered per second."""
    start, count = time.perf_counter(), 0
    for images, _ in batches:
        count += len(images)
    return count / (time.perf_counter() - start)


def compare_loaders(n: int = 10_000, batch_size: int = 128, workers: int = 4, seed: int = 0) -> dict[str, float]:
    """One augmented epoch (crop with 4-pixel padding, flip, normalize) through both loaders."""
    split = synthetic_cifar(n, seed=seed)
    mean, std = split.channel_stats()
    batched = BatchLoader(split, batch_size, shuffle=True, augment=True, mean=mean, std=std, seed=seed)
    torch.manual_seed(seed)
    with warnings.catch_warnings():  # on 2 cores torch advises fewer than the article's 4 workers
        warnings.filterwarnings("ignore", message="This DataLoader will create")
        per_image = DataLoader(
            PerImageDataset(split, transforms.Compose([
                transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                transforms.ToTensor(), transforms.Normalize(mean, std),
            ])),
            batch_size=batch_size, shuffle=True, num_workers=workers,
        )
        per_image_rate = _images_per_second(per_image)
    result = {
        "DataLoader, per-image transforms": per_image_rate,
        "BatchLoader, batch-wise on the device": _images_per_second(batched),
    }
    result["speed-up"] = result["BatchLoader, batch-wise on the device"] / result["DataLoader, per-image transforms"]
    return result


def run(parts=PARTS, images: int = 10_000, batch_size: int = 128, repeats: int = 5, workers: int = 4,
        with_compile: bool = True, steps: int = 2, fit_rounds: int = 2, report: Callable[[str], None] = print) -> dict:
    """The comparisons named in ``parts``, each reported as it ends; all figures in one dict."""
    check_parts(parts)
    results: dict = {"machine": machine()}
    report(f"{results['machine']}; batch {batch_size}, 32 x 32 images, fp32 unless said")
    if "step" in parts:
        step = results["step"] = _compare_training_steps(batch_size, repeats, steps, with_compile)
        note = ("torch.compile not measured (--no-compile)" if not with_compile else
                f"torch.compile failed: {step['compile error']}" if step["compile error"] else
                f"torch.compile took {step['compile seconds']:.0f} s before its first step")
        _report(report, f"training step, median of {repeats} rounds in turns", step, note)
    if "eval" in parts:
        results["eval"] = _compare_evaluation(min(500, images), repeats)
        _report(report, f"evaluation, median of {repeats} rounds in turns", results["eval"])
    if "fit" in parts:
        results["fit"] = _compare_fit_epoch(images, max(images // 5, 2), batch_size, workers, rounds=fit_rounds)
        _report(report, f"one epoch of {images:,} images with crop and flip, then {max(images // 5, 2):,} test "
                        f"images (DataLoader: {workers} workers), mean of {fit_rounds} each", results["fit"])
    if "loader" in parts:
        loaders = compare_loaders(images, batch_size, workers)
        results["loader"] = {"images/s": {k: v for k, v in loaders.items() if k != "speed-up"},
                             "ratios": {"BatchLoader / DataLoader": loaders["speed-up"]}}
        _report(report, f"one augmented epoch of {images:,} images through each loader "
                        f"(DataLoader: {workers} workers)", results["loader"])
    return results


def check_parts(parts) -> None:
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ValueError(f"unknown part(s) {', '.join(unknown)}; the parts are: {', '.join(PARTS)}")


def _report(report, title: str, result: dict, note: str | None = None) -> None:
    report(f"\n{title}")
    for name, ratio in result["ratios"].items():
        report(f"  {name:<62} {ratio:6.2f}x")
    for name, rate in result["images/s"].items():
        report(f"  {name:<62} {rate:8.1f} images/s")
    for name, value in result.get("seconds", {}).items():
        report(f"  {name:<62} {value:8.1f} s")
    if note:
        report(f"  {note}")
