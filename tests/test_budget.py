"""Lesson 05's default parameters keep it within its time budget: counted in images, not timed.

Machines differ 4-5x in speed, so the budget is in image-equivalents: seconds x R, where R is
the images per second of one reference SE-ResNet-50 training step on the same machine (32 x 32,
batch 128, fp32). Lesson 05 may cost 10,000 of them: about 3 minutes on a slow laptop CPU
(R = 56), under 1 minute on a fast one. The cost of each part, in image-equivalents, measured on
a 2-core AVX-512 CPU (R = 167-183) and with PyTorch's and oneDNN's portable kernels (R = 55):
"""

import ast
from pathlib import Path

import nbformat

from seresnet_lib.training.config import TrainConfig

LESSON_BUDGET = 10_000
TRAIN_IMAGE = 1.25  # one image through a training step at batch >= 64, channels-last (measured 1.07-1.20)
EVAL_IMAGE = 0.3  # one image through an evaluation pass at batch 500 (measured 0.20-0.27)
OVERHEAD = 1_600  # kernel start, imports, data, model, figures, checkpoints (measured 8-9 s at R = 183-196)
SMALLEST_BATCH = 64  # below it a training step costs more per image than TRAIN_IMAGE
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "05_train_cifar10.ipynb"


def default_parameters() -> TrainConfig:
    """The values the lesson's parameters cell assigns."""
    [cell] = [c for c in nbformat.read(NOTEBOOK, as_version=4).cells if "parameters" in c.metadata.get("tags", [])]
    values = {}
    exec(compile(ast.parse(cell.source), "<parameters>", "exec"), {}, values)
    return TrainConfig(**values)


def image_equivalents(config: TrainConfig) -> float:
    """What a run of lesson 05 with ``config`` costs: training, evaluating after each epoch, the
    two-batch loop demonstration (twice), predicting the test set once, and the fixed overhead."""
    trained = config.train_size * config.epochs + 2 * 2 * config.batch_size
    evaluated = config.test_size * (config.epochs + 1)
    return TRAIN_IMAGE * trained + EVAL_IMAGE * evaluated + OVERHEAD


def test_lesson_05_defaults_fit_the_budget():
    config = default_parameters()
    assert config.dataset == "synthetic" and config.train_size and config.test_size  # offline, and sized
    assert config.stem == "imagenet" and config.channels_last and not config.augment  # as measured
    assert config.batch_size >= SMALLEST_BATCH
    assert image_equivalents(config) <= LESSON_BUDGET


def test_the_count_is_images_times_epochs():
    config = default_parameters()
    doubled = TrainConfig(**{**config.as_dict(), "epochs": 2 * config.epochs})
    added = image_equivalents(doubled) - image_equivalents(config)
    assert added == TRAIN_IMAGE * config.train_size * config.epochs + EVAL_IMAGE * config.test_size * config.epochs


LESSON_07_PASSES = 14  # over its test set: evaluation, excitations trained and untrained, 8 switch-offs; figures


def lesson_07_own_run() -> TrainConfig:
    """The run lesson 07 trains for itself, as its cell builds it."""
    cells = nbformat.read(NOTEBOOK.parent / "07_inside_se.ipynb", as_version=4).cells
    [cell] = [c for c in cells if "own_run = TrainConfig(" in c.source]
    [parameters] = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    values = {"TrainConfig": TrainConfig}
    exec(compile(ast.parse(parameters.source), "<parameters>", "exec"), {}, values)  # its defaults: device, out_dir
    [assignment] = [node for node in ast.parse(cell.source).body
                    if isinstance(node, ast.Assign) and node.targets[0].id == "own_run"]
    return eval(compile(ast.Expression(assignment.value), "<own_run>", "eval"), values)


def test_lesson_07_trains_lesson_05s_default_run_with_the_usual_initialization():
    own, lesson_05 = lesson_07_own_run().as_dict(), default_parameters().as_dict()
    changed = {name for name in own if own[name] != lesson_05[name]}
    assert changed == {"zero_init_residual", "out_dir"} and not own["zero_init_residual"]


def test_lesson_07_fits_its_budget():
    """Lesson 07 (budget 10,000) trains its own run, then measures it: about a dozen passes over its test set.
    It measured 50.3-50.9 s at R = 178-181 (9,000-9,200 image-equivalents) with its run to train, 18.6 s without."""
    config = lesson_07_own_run()
    training = TRAIN_IMAGE * config.train_size * config.epochs + EVAL_IMAGE * config.test_size * config.epochs
    assert training + EVAL_IMAGE * config.test_size * LESSON_07_PASSES + OVERHEAD <= LESSON_BUDGET


def test_lesson_06_defaults_stay_as_measured():
    """Lesson 06 (budget 17,000) trains 5 settings x its seeds inline; at these sizes it measured 56 s at
    R = 176-195, 9,900-10,900 image-equivalents. Larger defaults need measuring again."""
    [cell] = [c for c in nbformat.read(NOTEBOOK.parent / "06_experiments.ipynb", as_version=4).cells
              if "parameters" in c.metadata.get("tags", [])]
    values = {}
    exec(compile(ast.parse(cell.source), "<parameters>", "exec"), {}, values)
    assert values["dataset"] == "synthetic" and values["runner"] == "inline"
    assert values["train_size"] * values["epochs"] * len(values["seeds"]) <= 160 * 2 * 3
    assert values["test_size"] * values["epochs"] * len(values["seeds"]) <= 128 * 2 * 3
