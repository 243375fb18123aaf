"""Figures for the lessons: images, feature maps, parameter trade-offs."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import FormatStrFormatter


def show_image(image: torch.Tensor, title: str = ""):
    """Show one 3 x H x W image with values in [0, 1]."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.imshow(image.detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy())
    h, w = image.shape[1:]
    ax.set_title(f"{title} ({h} x {w})" if title else f"{h} x {w}", fontsize=14)
    ax.axis("off")
    return fig


def show_feature_maps(maps: torch.Tensor, title: str, columns: int = 8):
    """Show each channel of a C x H x W feature map as its own small image, in one mosaic.

    Each channel is scaled to its own range (dark: its lowest value, bright: its highest).
    """
    channels, height, width = maps.shape
    rows = math.ceil(channels / columns)
    maps = maps.detach().cpu().float()
    low = maps.amin(dim=(1, 2), keepdim=True)
    span = (maps.amax(dim=(1, 2), keepdim=True) - low).clamp_min(1e-12)
    gap = max(1, height // 16)
    mosaic = torch.full((rows * (height + gap) - gap, columns * (width + gap) - gap), float("nan"))
    for i, channel in enumerate((maps - low) / span):
        top, left = (i // columns) * (height + gap), (i % columns) * (width + gap)
        mosaic[top:top + height, left:left + width] = channel
    fig, ax = plt.subplots(figsize=(1.25 * columns, 1.25 * rows + 0.8))
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    ax.imshow(mosaic.numpy(), cmap=cmap, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([r * (height + gap) + height / 2 for r in range(rows)],
                  [f"{r * columns}-{min(channels, (r + 1) * columns) - 1}" for r in range(rows)], fontsize=9)
    ax.set_ylabel("channels", fontsize=11)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(f"{title}\n{channels} channels of {height} x {width}", fontsize=14)
    fig.tight_layout()
    return fig


def show_channel_weights(weights: torch.Tensor, title: str):
    """Bar chart of SE channel weights (C values in (0, 1))."""
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.bar(range(len(weights)), weights.detach().cpu().numpy(), width=1.0, color="#e69138")
    ax.set_ylim(0, 1)
    ax.set_xlim(-0.5, len(weights) - 0.5)
    ax.set_xlabel("channel", fontsize=12)
    ax.set_ylabel("weight (sigmoid output)", fontsize=12)
    ax.set_title(title, fontsize=14)
    fig.tight_layout()
    return fig


def plot_reduction_tradeoff(ratios, counts, paper_millions, baseline_count):
    """SE-ResNet-50 parameters for each reduction ratio r: our ``counts``, the paper's figures
    (in millions), and plain ResNet-50's ``baseline_count``."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(ratios, [n / 1e6 for n in counts], "o-", label="counted here", lw=2, markersize=8)
    ax.plot(ratios, paper_millions, "s--", label="SENet paper", lw=1.5, markersize=7)
    ax.axhline(baseline_count / 1e6, color="grey", ls=":", label="ResNet-50 (no SE)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ratios, [str(r) for r in ratios])
    ax.set_xlabel("reduction ratio r", fontsize=12)
    ax.set_ylabel("parameters (millions)", fontsize=12)
    ax.set_title("SE-ResNet-50 size against the reduction ratio", fontsize=14)
    ax.legend(fontsize=11)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def show_image_grid(images: torch.Tensor, titles: list[str], title: str, columns: int = 8):
    """Small images (N x 3 x H x W, uint8 or floats in [0, 1]) in a grid, each with its caption above it."""
    count, _, height, width = images.shape
    rows = math.ceil(count / columns)
    images = images.detach().cpu()
    if images.dtype == torch.uint8:
        images = images.float() / 255
    lines = max((caption.count("\n") + 1 for caption in titles), default=1)
    cell_width, cell_height = 1.2 * width, (1 + 0.3 * lines) * height  # room between images for captions
    fig, ax = plt.subplots(figsize=(1.5 * columns, (1.25 + 0.3 * lines) * rows + 0.6))
    for i, (image, caption) in enumerate(zip(images, titles, strict=True)):
        left, bottom = (i % columns) * cell_width, (i // columns) * cell_height + (cell_height - height)
        ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest",
                  extent=(left, left + width, bottom + height, bottom))
        ax.text(left + width / 2, bottom - 0.08 * height, caption, ha="center", va="bottom", fontsize=10)
    ax.set_xlim(-0.1 * width, columns * cell_width)
    ax.set_ylim(rows * cell_height, 0)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=14)
    fig.tight_layout()
    return fig


def plot_history(epochs: list[dict], title: str):
    """Accuracy and loss per epoch, train and test, from ``History.epochs``."""
    x = [row["epoch"] for row in epochs]
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(12, 4.5))
    for split, style in (("train", "o-"), ("test", "s-")):
        acc.plot(x, [100 * row[f"{split}_acc"] for row in epochs], style, label=split, lw=2)
        loss.plot(x, [row[f"{split}_loss"] for row in epochs], style, label=split, lw=2)
    acc.set_ylabel("accuracy (%)", fontsize=12)
    loss.set_ylabel("cross-entropy loss (log scale)", fontsize=12)
    loss.set_yscale("log")
    for axis in (loss.yaxis.set_major_formatter, loss.yaxis.set_minor_formatter):
        axis(FormatStrFormatter("%g"))  # 1.5, not 1.5 x 10^0
    for ax, name in ((acc, "Accuracy"), (loss, "Loss")):
        for before, after in zip(epochs, epochs[1:], strict=False):
            if after["lr"] < before["lr"]:  # mark each learning-rate drop
                ax.axvline(before["epoch"] + 0.5, color="grey", ls=":", lw=1.5)
                ax.text(before["epoch"] + 0.55, 0.02, f"lr {after['lr']:g}", transform=ax.get_xaxis_transform(),
                        fontsize=10, color="grey")
        ax.set_xlabel("epoch", fontsize=12)
        ax.set_xticks(x)
        ax.set_title(name, fontsize=13)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=11)
    fig.suptitle(title, fontsize=14)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(matrix: torch.Tensor, classes: tuple[str, ...], title: str):
    """Counts of (true class, predicted class); the diagonal holds the right answers."""
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    image = ax.imshow(matrix.numpy(), cmap="Blues")
    n = len(classes)
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    threshold = matrix.max().item() / 2
    for true in range(n):
        for predicted in range(n):
            count = matrix[true, predicted].item()
            ax.text(predicted, true, str(count), ha="center", va="center", fontsize=9,
                    color="white" if count > threshold else "black")
    ax.set_xlabel("predicted class", fontsize=12)
    ax.set_ylabel("true class", fontsize=12)
    ax.set_title(title, fontsize=14)
    fig.colorbar(image, ax=ax, shrink=0.8, label="images")
    fig.tight_layout()
    return fig


def show_predictions(images: torch.Tensor, probabilities: torch.Tensor, labels: torch.Tensor,
                     classes: tuple[str, ...], title: str, columns: int = 8):
    """Images with the predicted class, its probability and (if wrong) the true class."""
    confidence, predicted = probabilities.max(1)
    titles = []
    for p, c, t in zip(predicted.tolist(), confidence.tolist(), labels.tolist(), strict=True):
        titles.append(f"{classes[p]} {c:.0%}" if p == t else f"{classes[p]} {c:.0%}\n(is {classes[t]})")
    return show_image_grid(images, titles, title, columns)


def plot_sweep_accuracy(rows, labels: dict[str, str] | None = None, title: str = "Test accuracy against size"):
    """Each complete run of a sweep as a dot at (parameter count, final test accuracy), each setting's mean
    as a cross with a bar of one standard deviation. ``rows``: a sweep's results (``lab.collect``), each
    with ``setting``, ``status``, ``final_test_acc`` and ``model_parameters``; ``labels`` renames
    settings (keys: a row's ``setting``)."""
    groups = _by_setting(rows)
    fig, ax = plt.subplots(figsize=(9, 5))
    for color, (name, group) in zip(_colors(len(groups)), groups.items()):
        done = [row for row in group if row.status == "complete" and row.final_test_acc is not None
                and row.model_parameters is not None]  # as summarize() counts them
        if not done:
            continue
        x = done[0].model_parameters / 1e6
        accuracies = torch.tensor([row.final_test_acc * 100 for row in done])
        ax.scatter([x] * len(done), accuracies, color=color, alpha=0.45, s=30)
        spread = accuracies.std().item() if len(done) > 1 else 0.0
        ax.errorbar(x, accuracies.mean().item(), yerr=spread, color=color, marker="x", markersize=12, capsize=6,
                    linewidth=2, label=(labels or {}).get(name, name))
    ax.set_xlabel("parameters (millions)", fontsize=12)
    ax.set_ylabel("final test accuracy (%)", fontsize=12)
    ax.set_title(title, fontsize=14)
    ax.legend(fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_sweep_curves(rows, labels: dict[str, str] | None = None, title: str = "Learning curves"):
    """Test accuracy per epoch of every complete run (thin) and each setting's mean (thick), one color per
    setting. ``rows``: as ``plot_sweep_accuracy`` takes them, each with its ``curve``."""
    groups = _by_setting(rows)
    fig, ax = plt.subplots(figsize=(9, 5))
    for color, (name, group) in zip(_colors(len(groups)), groups.items()):
        curves = [row.curve for row in group if row.curve and row.status == "complete"]
        for curve in curves:
            ax.plot(range(1, len(curve) + 1), [100 * a for a in curve], color=color, alpha=0.3, linewidth=1)
        length = min(map(len, curves)) if curves else 0
        if length:
            mean = [100 * sum(curve[i] for curve in curves) / len(curves) for i in range(length)]
            ax.plot(range(1, length + 1), mean, color=color, linewidth=3, marker="o",
                    label=f"{(labels or {}).get(name, name)} (mean of {len(curves)})")
    ax.set_xlabel("epoch", fontsize=12)
    ax.set_ylabel("test accuracy (%)", fontsize=12)
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_title(title, fontsize=14)
    ax.legend(fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _by_setting(rows) -> dict:
    """The rows grouped by their ``setting`` (the text that names what a sweep varied), in order."""
    groups = {}
    for row in rows:
        groups.setdefault(row.setting, []).append(row)
    return groups


def _colors(count: int) -> list:
    return [plt.get_cmap("tab10")(i % 10) for i in range(count)]


def plot_class_excitations(means: dict[str, torch.Tensor], classes: list[str], columns: int = 3,
                           title: str = "Mean excitation per channel, by class", channels: int | None = None):
    """One panel per SE module: each class's mean excitation per channel (classes x C in ``means``,
    one thin line each) and the average over the classes (black), as in the SENet paper's figure.
    ``channels``: draw only the first that many of each module's channels (all if None), so that
    the lines of the classes can be told apart."""
    rows = math.ceil(len(means) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.6 * rows), squeeze=False)
    colors = _colors(len(classes))
    for ax, (name, by_class) in zip(axes.flat, means.items()):
        shown = by_class[:, :channels]
        for color, class_name, line in zip(colors, classes, shown):
            ax.plot(line.numpy(), color=color, linewidth=0.8, alpha=0.85, label=class_name)
        ax.plot(shown.mean(dim=0).numpy(), color="black", linewidth=1.4, label="all classes")
        part = f"{shown.shape[1]} of " if shown.shape[1] < by_class.shape[1] else ""
        ax.set_title(f"{name} ({part}{by_class.shape[1]} channels)", fontsize=12)
        ax.set_ylim(0, 1)
        ax.set_xlim(0, shown.shape[1] - 1)
        ax.set_xlabel("channel", fontsize=10)
        ax.set_ylabel("excitation", fontsize=10)
    for ax in list(axes.flat)[len(means):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=10, frameon=False)
    fig.suptitle(title, fontsize=14)
    fig.tight_layout(rect=(0, 0.08, 1, 0.96))
    return fig


def plot_runs_by_images_seen(runs: dict[str, tuple[int, list[dict]]], title: str):
    """Test (solid) and train (dotted) accuracy of runs of different lengths against the training images
    each had seen at the end of every epoch, on a log scale. ``runs``: label -> (training images per
    epoch, ``History.epochs``). A learning-rate drop is marked on each run's curve by an open circle."""
    fig, ax = plt.subplots(figsize=(10, 5))
    for color, (label, (images, epochs)) in zip(_colors(len(runs)), runs.items()):
        seen = [images * row["epoch"] for row in epochs]
        ax.plot(seen, [100 * row["test_acc"] for row in epochs], "o-", color=color, lw=2, label=f"{label}: test")
        ax.plot(seen, [100 * row["train_acc"] for row in epochs], ":", color=color, lw=1.5, label=f"{label}: train")
        drops = [(x, row) for x, before, row in zip(seen[1:], epochs, epochs[1:]) if row["lr"] < before["lr"]]
        ax.scatter([x for x, _ in drops], [100 * row["test_acc"] for _, row in drops], s=140, facecolors="none",
                   edgecolors=color, linewidths=1.5, zorder=3)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.set_xlabel("training images seen (log scale; an open circle: the first epoch after a learning-rate drop)",
                  fontsize=11)
    ax.set_ylabel("accuracy (%)", fontsize=12)
    ax.set_title(title, fontsize=14)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=10)
    fig.tight_layout()
    return fig


def plot_grouped_bars(values: dict[str, list[float]], groups: list[str], ylabel: str, title: str,
                      ylim: tuple[float, float] | None = None):
    """One group of bars per entry of ``groups`` (classes, blocks), one bar per series in each:
    ``values``: series label -> one value per group."""
    fig, ax = plt.subplots(figsize=(min(14.0, max(8.0, 0.5 * len(groups) * (len(values) + 1))), 4.5))
    width = 0.8 / len(values)
    for i, (color, (label, series)) in enumerate(zip(_colors(len(values)), values.items())):
        ax.bar([g + (i - (len(values) - 1) / 2) * width for g in range(len(groups))], series, width, color=color,
               label=label)
    ax.set_xticks(range(len(groups)), groups, rotation=30 if max(map(len, groups)) > 6 else 0, ha="center")
    ax.set_ylabel(ylabel, fontsize=12)
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_title(title, fontsize=14)
    ax.grid(alpha=0.3, axis="y")
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=len(values), fontsize=10, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))  # the legend below the bars, clear of them
    return fig
