"""Datasets: the offline stand-in is deterministic and learnable only from its patterns;
CIFAR-10 loads, or says how to fix what is missing."""

import pickle
import urllib.error

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from seresnet_lib.training.data import DatasetUnavailable, ImageSplit, load_cifar10, load_dataset, synthetic_cifar


def test_synthetic_is_cifar_shaped_and_balanced():
    split = synthetic_cifar(1000, seed=0)
    assert split.images.shape == (1000, 3, 32, 32) and split.images.dtype == torch.uint8
    assert split.labels.dtype == torch.int64
    assert len(split.classes) == 10
    assert torch.bincount(split.labels).tolist() == [100] * 10


def test_synthetic_is_the_same_for_the_same_seed_only():
    a, b, c = synthetic_cifar(500, seed=3), synthetic_cifar(500, seed=3), synthetic_cifar(500, seed=4)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)


def mean_colour(split):
    return split.images.float().mean((2, 3)) / 255


def test_mean_colour_does_not_give_the_class_away():
    train, test = synthetic_cifar(5000, seed=0), synthetic_cifar(2000, seed=1)
    features, labels = mean_colour(train), train.labels
    centroids = torch.stack([features[labels == c].mean(0) for c in range(10)])
    nearest = torch.cdist(mean_colour(test), centroids).argmin(1)
    assert (nearest == test.labels).float().mean() < 0.15  # chance is 0.10

    torch.manual_seed(0)
    linear = nn.Linear(3, 10)
    optimizer = torch.optim.Adam(linear.parameters(), lr=0.05)
    for _ in range(200):
        optimizer.zero_grad()
        nn.functional.cross_entropy(linear(features), labels).backward()
        optimizer.step()
    assert (linear(mean_colour(test)).argmax(1) == test.labels).float().mean() < 0.15


def test_a_small_cnn_learns_the_patterns():
    torch.manual_seed(0)
    train, test = synthetic_cifar(1500, seed=0), synthetic_cifar(500, seed=1)  # 60% after 3 epochs here
    net = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(64, 10),
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    images, labels = train.images.float() / 255, train.labels
    for _ in range(3):
        for batch in torch.randperm(len(labels)).split(100):
            optimizer.zero_grad()
            nn.functional.cross_entropy(net(images[batch]), labels[batch]).backward()
            optimizer.step()
    net.eval()
    with torch.no_grad():
        accuracy = (net(test.images.float() / 255).argmax(1) == test.labels).float().mean()
    assert accuracy > 0.5


def test_load_dataset_cuts_to_the_sizes_asked():
    train, test = load_dataset("synthetic", train_size=300, test_size=100, seed=0)
    assert (len(train), len(test)) == (300, 100)
    assert not torch.equal(train.images[:100], test.images)


def test_take_and_channel_stats():
    split = ImageSplit(torch.full((4, 3, 2, 2), 51, dtype=torch.uint8), torch.arange(4), ("a",))
    assert len(split.take(2)) == 2 and split.take(None) is split and split.take(10) is split
    mean, std = split.channel_stats()
    assert mean == pytest.approx((0.2, 0.2, 0.2)) and std == pytest.approx((0, 0, 0))


def test_missing_cifar10_without_download_says_how_to_fix_it(tmp_path):
    with pytest.raises(DatasetUnavailable) as error:
        load_cifar10(tmp_path, download=False)
    message = str(error.value)
    assert "download=False" in message and "download=True" in message and "dataset='synthetic'" in message


def test_a_damaged_cifar10_folder_is_called_damaged_and_named_for_deletion(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(b"half a file")  # an interrupted copy, say
    with pytest.raises(DatasetUnavailable) as error:
        load_cifar10(tmp_path, download=False)
    message = str(error.value)
    assert f"CIFAR-10 in {tmp_path}/ is damaged" in message and "is not in" not in message
    assert f"Delete {tmp_path}/cifar-10-batches-py* and copy it again or set download=True" in message


def test_failed_download_says_how_to_fix_it(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", no_network)
    with pytest.raises(DatasetUnavailable) as error:
        load_cifar10(tmp_path, download=True)
    message = str(error.value)
    assert "could not be downloaded" in message and "Name or service not known" in message
    assert "dataset='synthetic'" in message


def test_cifar10_files_become_channel_first_uint8_tensors(tmp_path, monkeypatch):
    """The real loading path, on files in CIFAR-10's own format (pickled HWC rows)."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (4, 3 * 32 * 32), dtype=np.uint8)  # CIFAR rows: R plane, G plane, B plane
        labels = rng.integers(0, 10, 4).tolist()
        batches[name] = (data, labels)
        with open(folder / name, "wb") as file:
            pickle.dump({"data": data, "labels": labels}, file)
    with open(folder / "batches.meta", "wb") as file:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, file)
    # Our hand-made files cannot have the real ones' checksums: accept them.
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: True)

    train, test = load_cifar10(tmp_path, download=False)
    assert train.images.shape == (20, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (4, 3, 32, 32)
    data, labels = batches["test_batch"]
    assert torch.equal(test.images, torch.from_numpy(data).view(4, 3, 32, 32))
    assert test.labels.tolist() == labels
    assert train.classes == tuple(f"class{i}" for i in range(10))
