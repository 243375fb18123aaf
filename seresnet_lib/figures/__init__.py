"""Figures for the lessons: diagrams of the network's parts drawn from the modules
themselves, and plots of images, feature maps, training curves and results. They take data
and labels as arguments and know nothing of sweeps or runs."""

from .diagrams import draw_bottleneck, draw_network, draw_squeeze_excitation, draw_stem
from .plots import (plot_class_excitations, plot_confusion_matrix, plot_grouped_bars, plot_history,
                    plot_reduction_tradeoff, plot_runs_by_images_seen, plot_sweep_accuracy, plot_sweep_curves,
                    show_channel_weights, show_feature_maps, show_image, show_image_grid, show_predictions)

__all__ = [
    "draw_bottleneck", "draw_network", "draw_squeeze_excitation", "draw_stem", "plot_class_excitations",
    "plot_confusion_matrix", "plot_grouped_bars", "plot_history", "plot_reduction_tradeoff",
    "plot_runs_by_images_seen", "plot_sweep_accuracy", "plot_sweep_curves", "show_channel_weights",
    "show_feature_maps", "show_image", "show_image_grid", "show_predictions",
]
