"""Figures say what the code computes: shapes on the diagrams come from running the modules."""

import runpy
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest
import torch

from seresnet_lib import Bottleneck, SqueezeExcitation, Stem, seresnet50
from seresnet_lib.figures.diagrams import draw_bottleneck, draw_network, draw_squeeze_excitation, draw_stem
from seresnet_lib.figures.plots import (plot_class_excitations, plot_confusion_matrix, plot_grouped_bars, plot_history,
                                        plot_runs_by_images_seen, show_feature_maps, show_image_grid)
from seresnet_lib.seeding import seed_everything
from seresnet_lib.training.data import normalize, sample_image

matplotlib.use("Agg")


def texts(figure):
    return {text.get_text() for ax in figure.axes for text in ax.texts} | {ax.get_title() for ax in figure.axes}


def test_stem_diagram_shows_the_shapes_and_layers():
    labels = texts(draw_stem(Stem("imagenet"), (3, 224, 224)))
    assert {"3 x 224 x 224", "64 x 112 x 112", "64 x 56 x 56"} <= labels
    assert {"7x7 conv, 64, stride 2, pad 3", "3x3 max-pool, stride 2, pad 1", "The ImageNet stem"} <= labels


def test_conv_block_diagram_shows_the_projection_and_the_stride():
    labels = texts(draw_bottleneck(Bottleneck(256, 128, stride=2, reduction=16), (256, 56, 56)))
    assert {"1x1 conv, 128, stride 2, BN, ReLU", "1x1 conv, 512, stride 2\n+ BN", "squeeze-excitation, r = 16"} <= labels
    assert {"256 x 56 x 56", "128 x 28 x 28", "512 x 28 x 28", "SE-Conv Block (projection shortcut)"} <= labels


def test_identity_block_and_se_diagrams():
    assert "identity" in texts(draw_bottleneck(Bottleneck(256, 64), (256, 56, 56)))
    labels = texts(draw_squeeze_excitation(SqueezeExcitation(256, reduction=8), (256, 14, 14)))
    assert {"256 x 1 x 1", "32 x 1 x 1", "256 x 14 x 14", "×", "Squeeze-and-Excitation, r = 8"} <= labels


def test_network_diagram_follows_the_stem():
    labels = texts(draw_network(seresnet50(10, stem="cifar"), (3, 32, 32)))
    assert {"2048 x 4 x 4", "stage3: 6 SE-bottlenecks, width 256", "SE-ResNet-50 on a 32x32 image"} <= labels


def test_learning_curves_mark_the_learning_rate_drops():
    epochs = [dict(epoch=e, train_acc=0.1 * e, test_acc=0.1 * e, train_loss=1 / e, test_loss=1 / e, lr=lr)
              for e, lr in [(1, 0.1), (2, 0.1), (3, 0.01), (4, 0.001)]]
    figure = plot_history(epochs, "run")
    assert {"lr 0.01", "lr 0.001"} <= texts(figure)
    assert len(figure.axes[0].lines) == 2 + 2  # train, test, and two drop markers


def test_runs_of_different_sizes_are_drawn_against_the_images_they_had_seen():
    short = [dict(epoch=e, train_acc=0.2 * e, test_acc=0.1 * e, lr=0.01) for e in (1, 2)]
    long = [dict(epoch=e, train_acc=0.1 * e, test_acc=0.05 * e, lr=0.01 if e < 3 else 0.001) for e in (1, 2, 3, 4)]
    figure = plot_runs_by_images_seen({"short": (1000, short), "long": (8000, long)}, "runs")
    lines = {line.get_label(): line for line in figure.axes[0].lines}
    assert list(lines["short: test"].get_xdata()) == [1000, 2000] and list(lines["long: test"].get_xdata()) == [
        8000, 16000, 24000, 32000]
    assert list(lines["long: train"].get_ydata()) == pytest.approx([10, 20, 30, 40])
    [no_drop, drop] = figure.axes[0].collections  # a circle where the learning rate dropped, in the long run only
    assert len(no_drop.get_offsets()) == 0 and len(drop.get_offsets()) == 1
    assert drop.get_offsets()[0].tolist() == pytest.approx([24000, 15])
    assert figure.axes[0].get_xscale() == "log"


def test_class_excitations_draw_each_class_and_their_mean_over_the_channels_asked_for():
    means = {"stage1.3": torch.rand(3, 8), "stage4.3": torch.rand(3, 16)}
    figure = plot_class_excitations(means, ["a", "b", "c"], columns=2, channels=4)
    for ax, by_class in zip(figure.axes, means.values()):
        *classes, mean = ax.lines
        assert [line.get_label() for line in classes] == ["a", "b", "c"] and mean.get_label() == "all classes"
        assert list(classes[1].get_ydata()) == pytest.approx(by_class[1, :4].tolist())
        assert list(mean.get_ydata()) == pytest.approx(by_class[:, :4].mean(0).tolist())
    assert [ax.get_title() for ax in figure.axes] == ["stage1.3 (4 of 8 channels)", "stage4.3 (4 of 16 channels)"]
    assert figure.axes[0].get_title() != plot_class_excitations(means, "abc", columns=2).axes[0].get_title()


def test_grouped_bars_draw_one_bar_per_series_and_group():
    figure = plot_grouped_bars({"a": [1, 2, 3], "b": [4, 5, 6]}, ["x", "y", "z"], "value", "bars")
    heights = [bar.get_height() for bar in figure.axes[0].patches]
    assert heights == [1, 2, 3, 4, 5, 6]
    assert [label.get_text() for label in figure.axes[0].get_xticklabels()] == ["x", "y", "z"]


def test_grids_and_confusion_matrix_draw_every_item():
    images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    grid = show_image_grid(images, list("abcdefghij"), "grid", columns=4)
    assert len(grid.axes[0].images) == 10 and set("abcdefghij") <= texts(grid)
    first = grid.axes[0].images[0]
    assert torch.equal(torch.from_numpy(first.get_array()), images[0].permute(1, 2, 0) / 255)
    matrix = torch.tensor([[3, 1], [0, 4]])
    assert {"3", "1", "0", "4"} <= texts(plot_confusion_matrix(matrix, ("a", "b"), "confusion"))


def test_feature_maps_show_every_channel_scaled_to_its_own_range():
    maps = torch.randn(5, 8, 8) * torch.arange(1, 6).view(5, 1, 1)  # channels of different ranges
    figure = show_feature_maps(maps, "maps", columns=4)
    [image] = figure.axes[0].images
    mosaic = torch.from_numpy(image.get_array().filled(float("nan")))
    assert mosaic.shape == (2 * 8 + 1, 4 * 8 + 3)  # 2 rows and 4 columns of 8 x 8, 1-pixel gaps
    for i in range(5):
        top, left = (i // 4) * 9, (i % 4) * 9
        tile = mosaic[top:top + 8, left:left + 8]
        expected = (maps[i] - maps[i].min()) / (maps[i].max() - maps[i].min())
        assert torch.allclose(tile, expected, atol=1e-6)
    assert mosaic[9:, 9:].isnan().all()  # no channels 5-7: blank
    axes = figure.axes[0]
    assert [label.get_text() for label in axes.get_yticklabels()] == ["0-3", "4-4"]
    assert axes.get_ylabel() == "channels"


def test_sample_image_is_an_offline_photo_in_unit_range():
    image = sample_image(96)
    assert image.shape == (3, 96, 96) and 0 <= image.min() and image.max() <= 1
    assert image.std() > 0.1  # a picture, not a flat colour
    assert normalize(image).mean().abs() < 1


def test_seed_everything_repeats_every_generator():
    import random

    import numpy as np

    def draws():
        return random.random(), np.random.rand(), torch.rand(1).item()

    seed_everything(5)
    first = draws()
    seed_everything(5)
    assert draws() == first


def test_the_seresnet_command_prints_the_summary():
    seresnet = Path(sys.executable).with_name("seresnet")  # the console script pip installs
    result = subprocess.run([str(seresnet), "summary"], capture_output=True, text=True, check=True)
    assert "SE-ResNet-50: 28,088,024 parameters, 3.86 G multiply-adds" in result.stdout


def test_python_dash_m_seresnet_lib_is_the_same_command_line(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["python -m seresnet_lib", "--help"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("seresnet_lib", run_name="__main__")
    assert done.value.code == 0 and "\n  summary " in capsys.readouterr().out
