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


def test_both_loaders_deliver_the_same_batches_without_augmentation():
    from torch.utils.data import DataLoader
    from torchvision import transforms

    from seresnet_lib.loader import BatchLoader

    split = synthetic_cifar(100, seed=0)
    mean, std = split.channel_stats()
    per_image = DataLoader(PerImageDataset(split, transforms.Compose([
        transforms.ToTensor(), transforms.Normalize(mean, std)])), batch_size=25)
    batched = BatchLoader(split, 25, mean=mean, std=std)
    for (a, a_labels), (b, b_labels) in zip(per_image, batched, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        assert torch.equal(a_labels, b_labels)


def test_compare_loaders_reports_both_and_their_ratio():
    result = compare_loaders(n=256, batch_size=64, workers=0)
    per_image = result["DataLoader, per-image transforms"]
    batched = result["BatchLoader, batch-wise on the device"]
    assert per_image > 0 and batched > 0
    assert result["speed-up"] == batched / per_image
