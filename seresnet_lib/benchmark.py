"""Side-by-side throughput measurements, in one process and one run.

    python -m seresnet_lib.benchmark            # batch loader vs DataLoader, 10,000 images

The comparison is the point, not the absolute numbers: both loaders deliver the same
thing (augmented, normalized float batches) from the same images on the same machine.
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from .data import ImageSplit, synthetic_cifar
from .loader import BatchLoader


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


def images_per_second(batches) -> float:
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
        per_image_rate = images_per_second(per_image)
    result = {
        "DataLoader, per-image transforms": per_image_rate,
        "BatchLoader, batch-wise on the device": images_per_second(batched),
    }
    result["speed-up"] = result["BatchLoader, batch-wise on the device"] / result["DataLoader, per-image transforms"]
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m seresnet_lib.benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=4, help="DataLoader worker processes (the article's 4)")
    args = parser.parse_args(argv)
    print(f"one augmented epoch of {args.images:,} CIFAR-shaped images, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads, DataLoader with {args.workers} workers")
    result = compare_loaders(args.images, args.batch_size, args.workers)
    for name, value in result.items():
        print(f"  {name:<40} {value:10.1f}" + ("x" if name == "speed-up" else " images/s"))


if __name__ == "__main__":
    main()
