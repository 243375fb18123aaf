"""The benchmark runs and compares like with like (speed is measured by `make benchmark`, not asserted)."""

import json

import pytest
import torch
from torchvision.transforms.functional import pil_to_tensor

from seresnet_lib.cli import main
from seresnet_lib.lab import benchmark
from seresnet_lib.lab.benchmark import PerImageDataset, compare_loaders
from seresnet_lib.training.data import synthetic_cifar


def test_per_image_dataset_matches_the_split():
    split = synthetic_cifar(8, seed=0)
    image, label = PerImageDataset(split, pil_to_tensor)[3]
    assert label == split.labels[3].item()
    assert torch.equal(image, split.images[3])


def test_both_loaders_deliver_the_same_batches_without_augmentation():
    from torch.utils.data import DataLoader
    from torchvision import transforms

    from seresnet_lib.training.loader import BatchLoader

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


def test_the_whole_benchmark_runs_at_a_tiny_size_and_its_ratios_are_its_figures(tmp_path, capsys):
    """Every part, as `make benchmark` runs it, on 16 images in batches of 4 (torch.compile left out)."""
    out = tmp_path / "benchmark.json"
    assert main(["benchmark", "--images", "16", "--batch-size", "4", "--repeats", "1", "--steps", "1", "--workers",
                           "0", "--fit-rounds", "1", "--no-compile", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert set(results) == {"machine", *benchmark.PARTS}
    step = results["step"]["images/s"]
    assert set(step) == {"ours, contiguous", "ours, channels_last", "timm, contiguous", "timm, channels_last",
                         benchmark.FIT_STEP, benchmark.OPTIONS["bf16 autocast"]}
    ratios = results["step"]["ratios"]
    assert ratios["ours / timm, each in its faster layout (same SGD)"] == pytest.approx(
        max(step["ours, contiguous"], step["ours, channels_last"]) / max(step["timm, contiguous"],
                                                                         step["timm, channels_last"]))
    fit = results["fit"]
    assert fit["ratios"]["fit / the article's loop"] == pytest.approx(
        fit["seconds"]["the article's loop"] / fit["seconds"]["fit"])
    assert results["eval"]["ratios"]["ours / timm"] == pytest.approx(
        results["eval"]["images/s"]["ours"] / results["eval"]["images/s"]["timm"])
    printed = capsys.readouterr().out
    for title in ("training step", "evaluation", "one epoch of 16 images", "through each loader"):
        assert title in printed


def test_an_unknown_part_is_refused_before_any_measurement(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["benchmark", "steps"])
    assert exit.value.code == 2
    assert "unknown part(s) steps; the parts are: step, eval, fit, loader" in capsys.readouterr().err
