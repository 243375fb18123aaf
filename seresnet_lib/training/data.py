"""Datasets for the lessons: CIFAR-10, an offline CIFAR-shaped stand-in, and a sample photo.

A split is held whole in memory as uint8 tensors (CIFAR-10's 50,000 training images
take 150 MB), ready for ``loader.BatchLoader`` to batch, augment and normalize.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib import cbook
from PIL import Image

from ..paths import resolve
from ..validate import check_choice, check_int

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
DATASETS = ("synthetic", "cifar10")
SYNTHETIC_CLASSES = (
    "disc", "ring", "square", "frame", "triangle",
    "cross", "h-stripes", "v-stripes", "checkers", "diagonals",
)
# Classes that look alike: a model's mistakes tend to stay inside a group.
CLASS_GROUPS = {
    "synthetic": {"shapes": SYNTHETIC_CLASSES[:6], "textures": SYNTHETIC_CLASSES[6:]},
    "cifar10": {"animals": ("bird", "cat", "deer", "dog", "frog", "horse"),
                "vehicles": ("airplane", "automobile", "ship", "truck")},
}


@dataclass
class ImageSplit:
    """A whole split in memory: ``images`` N x 3 x 32 x 32 uint8, ``labels`` N int64."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, n: int | None) -> ImageSplit:
        """The first ``n`` images (all of them when ``n`` is None)."""
        if n is None or n >= len(self):
            return self
        return ImageSplit(self.images[:n], self.labels[:n], self.classes)

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and standard deviation of the pixels, scaled to [0, 1]."""
        pixels = self.images.transpose(0, 1).reshape(3, -1).float() / 255
        return tuple(pixels.mean(1).tolist()), tuple(pixels.std(1).tolist())


def load_dataset(name: str, train_size: int | None = None, test_size: int | None = None, seed: int = 0,
                 data_dir: str | Path = "data", download: bool = True) -> tuple[ImageSplit, ImageSplit]:
    """The (train, test) splits of ``"cifar10"`` or ``"synthetic"``, cut to the sizes given."""
    check_choice("dataset", name, DATASETS)
    if name == "synthetic":
        train = synthetic_cifar(train_size or 10_000, seed=seed)
        test = synthetic_cifar(test_size or 2_000, seed=seed + 1_000_003)
        return train, test
    train, test = load_cifar10(data_dir, download=download)
    return train.take(train_size), test.take(test_size)


class DatasetUnavailable(RuntimeError):
    """CIFAR-10 is neither on disk nor downloadable."""


def load_cifar10(data_dir: str | Path = "data", download: bool = True) -> tuple[ImageSplit, ImageSplit]:
    """CIFAR-10 through ``torchvision.datasets.CIFAR10`` (downloaded into ``data_dir`` if asked)."""
    from torchvision.datasets import CIFAR10

    root = resolve(data_dir)
    fix = f"use dataset='synthetic' for the offline CIFAR-shaped stand-in, or copy cifar-10-batches-py/ into {root}/"
    try:
        splits = [CIFAR10(root, train=train, download=download) for train in (True, False)]
    except RuntimeError as error:  # torchvision: "Dataset not found or corrupted"
        if download or (root / "cifar-10-batches-py").exists():
            again = "download it again" if download else "copy it again or set download=True"
            raise DatasetUnavailable(f"CIFAR-10 in {root}/ is damaged ({error}). Delete "
                                     f"{root}/cifar-10-batches-py* and {again}, or {fix}.") from None
        raise DatasetUnavailable(
            f"CIFAR-10 is not in {root}/ and download=False ({error}). Set download=True with "
            f"network access (about 170 MB), or {fix}."
        ) from None
    except OSError as error:  # no network: URLError, socket errors
        raise DatasetUnavailable(
            f"CIFAR-10 could not be downloaded into {root}/: {error}. Without a network, {fix}."
        ) from None
    return tuple(
        ImageSplit(torch.from_numpy(split.data).permute(0, 3, 1, 2).contiguous(),
                   torch.tensor(split.targets, dtype=torch.int64), tuple(split.classes))
        for split in splits
    )


def synthetic_cifar(n: int, seed: int = 0) -> ImageSplit:
    """``n`` CIFAR-shaped images of 10 classes of shapes and textures, the same for the same seed.

    Every image draws its own foreground and background colours, size, position, stripe
    period and phase, and pixel noise, so the class is in the spatial pattern alone: the
    mean colour of an image says nothing about its class.
    """
    check_int("n", n)
    g = torch.Generator().manual_seed(seed)

    def uniform(low, high, *shape):
        return low + (high - low) * torch.rand(n, *shape, generator=g)

    labels = (torch.arange(n) % 10)[torch.randperm(n, generator=g)]
    centre = uniform(10.5, 20.5, 2, 1, 1)
    shape = dict(radius=uniform(6, 11, 1, 1), thickness=uniform(2, 3.5, 1, 1),
                 period=uniform(4, 8, 1, 1), phase=uniform(0, 8, 1, 1))
    coords = torch.arange(32, dtype=torch.float32)
    mask = torch.empty(n, 32, 32, dtype=torch.bool)
    for label in range(10):
        chosen = labels == label
        x = coords.view(1, 1, 32) - centre[chosen, 0]
        y = coords.view(1, 32, 1) - centre[chosen, 1]
        mask[chosen] = _pattern(label, x, y, **{k: v[chosen] for k, v in shape.items()})

    background, foreground = torch.rand(n, 3, 1, 1, generator=g), torch.rand(n, 3, 1, 1, generator=g)
    too_close = (foreground - background).abs().mean(1, keepdim=True) < 0.25
    foreground = torch.where(too_close, 1 - background, foreground)
    images = torch.where(mask.unsqueeze(1), foreground, background)
    images = images + 0.06 * torch.randn(n, 3, 32, 32, generator=g)
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    return ImageSplit(images, labels, SYNTHETIC_CLASSES)


def _pattern(label, x, y, radius, thickness, period, phase):
    """Foreground mask of class ``label``; ``x``, ``y``: pixel offsets from each image's centre."""
    dist, box = torch.sqrt(x**2 + y**2), torch.maximum(x.abs(), y.abs())

    def stripes(t):
        return torch.remainder(t + phase, period) < period / 2

    if label == 0:  # disc
        return dist <= radius
    if label == 1:  # ring
        return (dist <= radius) & (dist > radius - thickness)
    if label == 2:  # square
        return box <= 0.8 * radius
    if label == 3:  # frame
        return (box <= radius) & (box > radius - thickness)
    if label == 4:  # triangle, pointing up
        return (y >= -radius) & (y <= 0.8 * radius) & (x.abs() <= 0.6 * (y + radius))
    if label == 5:  # cross
        arm = thickness / 1.4
        return ((x.abs() <= arm) & (y.abs() <= radius)) | ((y.abs() <= arm) & (x.abs() <= radius))
    full = torch.zeros_like(dist)
    if label == 6:
        return stripes(y + full)
    if label == 7:
        return stripes(x + full)
    if label == 8:  # checkers
        return stripes(x + full) ^ stripes(y + 0.5 * phase)
    return stripes(x + y)  # diagonals


def sample_image(size: int = 224) -> torch.Tensor:
    """A real photograph that ships with matplotlib (Grace Hopper), no download needed.

    Returns a 3 x size x size float tensor with values in [0, 1].
    """
    check_int("size", size)
    with cbook.get_sample_data("grace_hopper.jpg") as file:
        image = Image.open(file).convert("RGB")
    scale = size / min(image.size)  # the shorter side becomes `size`, then the centre is cut out
    width, height = max(size, round(image.width * scale)), max(size, round(image.height * scale))
    image = image.resize((width, height), Image.Resampling.BICUBIC)  # PIL filters out detail when shrinking
    left, top = (width - size) // 2, (height - size) // 2
    image = image.crop((left, top, left + size, top + size))
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255


def normalize(images: torch.Tensor, mean=_IMAGENET_MEAN, std=_IMAGENET_STD) -> torch.Tensor:
    """Per-channel standardization of ... x 3 x H x W images in [0, 1]."""
    mean = torch.tensor(mean, device=images.device).view(3, 1, 1)
    std = torch.tensor(std, device=images.device).view(3, 1, 1)
    return (images - mean) / std

