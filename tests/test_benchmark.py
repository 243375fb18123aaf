"""The loader benchmark runs and compares like with like (speed is measured by `make benchmark`, not asserted)."""

import torch
from torchvision.transforms.functional import pil_to_tensor

from seresnet_lib.benchmark import PerImageDataset, compare_loaders
from seresnet_lib.data import synthetic_cifar


def test_per_image_dataset_matches_the_split():
    split = synthetic_cifar(8, seed=0)
    image, label = PerImageDataset(split, pil_to_tensor)[3]
    assert label == split.labels[3].item()
    assert torch.equal(image, split.images[3])


def test_compare_loaders_reports_both_and_their_ratio():
    result = compare_loaders(n=256, batch_size=64, workers=0)
    per_image = result["DataLoader, per-image transforms"]
    batched = result["BatchLoader, batch-wise on the device"]
    assert per_image > 0 and batched > 0
    assert result["speed-up"] == batched / per_image
