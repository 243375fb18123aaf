"""Training, for lesson 05 and anyone who trains: the config, the data and its loader, one
epoch (``train_one_epoch``, ``evaluate``), ``fit`` and the ``Run`` that keeps its folder,
recipes for a whole run, and training in several processes (``distributed``)."""

from .config import TrainConfig, load_preset, read_yaml
from .data import (CLASS_GROUPS, DatasetUnavailable, ImageSplit, load_cifar10, load_dataset, normalize, sample_image,
                   synthetic_cifar)
from .epoch import evaluate, train_one_epoch
from .folders import RunInUse, atomic_write, hold, read_metrics, run_folders
from .loader import BatchLoader, visible_shift
from .loop import fit, make_optimizer
from .metrics import Tally, autocast, confusion_matrix, per_class_accuracy, predict, share_of_mistakes_within_groups
from .recipes import RunData, build_model, initial_model, load_trained, run_data, train_or_load, train_run
from .run import History, Run, TrainingDiverged, check_run_folder

__all__ = [
    "BatchLoader", "CLASS_GROUPS", "DatasetUnavailable", "History", "ImageSplit", "Run", "RunData", "RunInUse", "Tally",
    "TrainConfig", "TrainingDiverged", "atomic_write", "autocast", "build_model", "check_run_folder",
    "confusion_matrix", "evaluate", "fit", "hold", "initial_model", "load_cifar10", "load_dataset", "load_preset",
    "load_trained", "make_optimizer", "normalize", "per_class_accuracy", "predict", "read_metrics", "read_yaml",
    "run_data", "run_folders", "sample_image", "share_of_mistakes_within_groups", "synthetic_cifar",
    "train_one_epoch", "train_or_load", "train_run", "visible_shift",
]
