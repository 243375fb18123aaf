"""Training, for lesson 05 and anyone who trains: the config, the data and its loader, one
epoch (``train_one_epoch``, ``evaluate``), ``fit`` and the ``Run`` that keeps its folder,
recipes for a whole run, and training in several processes (``distributed``)."""

from .config import TrainConfig, load_preset, read_yaml
from .data import (CLASS_GROUPS, DatasetUnavailable, ImageSplit, load_cifar10, load_dataset, normalize, sample_image,
                   synthetic_cifar)
from .epoch import evaluate, train_one_epoch
from .folders import (RunInUse, RunSummary, atomic_write, check_writable_folder, describe_run, hold, read_metrics,
                      run_folders)
from .loader import BatchLoader, visible_shift
from .loop import fit, make_optimizer
from .metrics import Tally, autocast, confusion_matrix, per_class_accuracy, predict, share_of_mistakes_within_groups
from .recipes import RunData, build_model, initial_model, load_trained, run_data, train_or_load, train_run
from .run import History, Run, TrainingDiverged, check_run_folder

__all__ = [
    "atomic_write", "autocast", "BatchLoader", "build_model", "check_run_folder", "check_writable_folder",
    "CLASS_GROUPS",
    "confusion_matrix", "DatasetUnavailable", "describe_run", "evaluate", "fit", "History", "hold",
    "ImageSplit", "initial_model", "load_cifar10", "load_dataset", "load_preset", "load_trained",
    "make_optimizer", "normalize", "per_class_accuracy", "predict", "read_metrics", "read_yaml", "Run",
    "run_data", "run_folders", "RunData", "RunInUse", "RunSummary", "sample_image",
    "share_of_mistakes_within_groups", "synthetic_cifar", "Tally", "train_one_epoch", "train_or_load",
    "train_run", "TrainConfig", "TrainingDiverged", "visible_shift",
]
