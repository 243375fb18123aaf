"""The reference run's committed results agree with each other, with its preset and with its sweep.

notebooks/results/reference/ was written by `python -m seresnet_lib.reference record` from SE-ResNet-50's
seed-0 run of notebooks/params/sweep_reference.yaml, whose results.csv is notebooks/results/reference_sweep.csv.
Recording itself is tested on a tiny run in test_rerun.py, where lesson 05 has trained one.
"""

import json
import shutil

import pytest
import torch
import yaml
from test_budget import default_parameters

from seresnet_lib import seresnet50
from seresnet_lib.lab import load_grid_file, load_results
from seresnet_lib.lab.reference import load_reference
from seresnet_lib.model.excitations import PAPER_BLOCKS, class_spread, se_modules
from seresnet_lib.paths import NOTEBOOKS, RESULTS
from seresnet_lib.training.config import TrainConfig
from seresnet_lib.training.data import SYNTHETIC_CLASSES

PRESET = yaml.safe_load((NOTEBOOKS / "params" / "reference.yaml").read_text())


@pytest.fixture(scope="module")
def reference():
    return load_reference()


def test_the_preset_is_lesson_05s_default_run_longer_and_with_the_usual_start():
    preset, lesson_05 = TrainConfig(**PRESET).as_dict(), default_parameters().as_dict()
    assert {name for name in preset if preset[name] != lesson_05[name]} == {
        "train_size", "test_size", "epochs", "batch_size", "lr_step", "zero_init_residual", "out_dir",
        "keep_checkpoints"}  # as lesson 05 says: the size and length of the run, and its start
    assert (PRESET["epochs"], PRESET["batch_size"], PRESET["lr_step"]) == (12, 128, 5)  # the article's
    assert PRESET["zero_init_residual"] is False and PRESET["test_size"] is None


def test_the_run_is_the_presets(reference):
    used = reference.parameters
    differ = {k for k in PRESET if used[k] != PRESET[k]}
    assert differ <= {"out_dir", "se_stages"}  # the sweep's folder; a tuple written as a list
    assert list(used["se_stages"]) == PRESET["se_stages"] and reference.metrics["status"] == "complete"
    assert [row["epoch"] for row in reference.epochs] == list(range(1, PRESET["epochs"] + 1))
    assert [row["lr"] for row in reference.epochs] == pytest.approx([0.01] * 5 + [0.001] * 5 + [0.0001] * 2)
    assert reference.summary["train_images"] == PRESET["train_size"] and reference.summary["test_images"] == 2000


def test_the_measurements_agree_with_the_run_and_each_other(reference):
    summary = reference.summary
    assert reference.classes == SYNTHETIC_CLASSES and tuple(summary["blocks"]) == PAPER_BLOCKS
    assert abs(summary["accuracy"] - reference.epochs[-1]["test_acc"]) <= 1 / summary["test_images"]
    per_class = list(summary["per_class_accuracy"].values())  # 200 test images of each class
    assert list(summary["per_class_accuracy"]) == list(SYNTHETIC_CLASSES)
    assert sum(per_class) / len(per_class) == pytest.approx(summary["accuracy"], abs=1e-6)
    with torch.device("meta"):
        channels = {name: module.fc2.out_channels for name, module in se_modules(seresnet50(10)).items()}
    for name in PAPER_BLOCKS:
        means = reference.class_means[name]
        assert means.shape == (10, channels[name]) and ((means > 0) & (means < 1)).all()
        assert class_spread(means) == pytest.approx(summary["class_spread"][name], rel=1e-5)
    assert [row["stage"] for row in reference.switch_off] == [1, 2, 3, 4]
    assert all(0 <= row[key] <= 1 for row in reference.switch_off for key in ("scale_one", "mean_scale"))
    recorded = summary["recorded"]
    assert recorded["made_with"].startswith("python -m seresnet_lib.experiments notebooks/params/sweep_reference")
    assert recorded["source"].endswith("model=seresnet50-seed=0/run-001") and recorded["step_rate"]
    assert recorded["seconds"] == pytest.approx(sum(row["seconds"] for row in reference.epochs), abs=0.1)
    assert reference.label == f"reference: 8,000 images, 12 epochs, recorded on {recorded['date']}"


def test_what_the_lessons_say_of_the_reference_holds(reference):
    """Lessons 03 and 07 quote these ranges; a record made anew must be read again before they change."""
    spread, summary = reference.summary["class_spread"], reference.summary
    over_shuffled = [spread[name] / summary["shuffled_class_spread"][name] for name in PAPER_BLOCKS]
    over_untrained = [spread[name] / summary["untrained_class_spread"][name] for name in PAPER_BLOCKS]
    assert 5 <= min(over_shuffled) and max(over_shuffled) < 12
    assert 7 <= min(over_untrained) and max(over_untrained) < 49
    assert not spread["stage1.3"] < spread["stage2.4"] < spread["stage3.6"]  # the paper's two patterns: absent
    assert not spread["stage4.3"] < spread["stage4.1"]
    table = {row["stage"]: row for row in reference.switch_off}
    assert reference.accuracy - table[4]["scale_one"] < 0.01 and reference.accuracy - table[1]["scale_one"] > 0.4
    assert all(reference.accuracy - row["mean_scale"] < 0.03 for row in reference.switch_off)


def test_a_damaged_reference_is_named_with_what_to_do(tmp_path):
    for name in ("metrics.json", "excitations.npz", "switch_off.csv", "summary.json"):
        shutil.copy(RESULTS / "reference" / name, tmp_path / name)
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(ValueError, match="is damaged .KeyError: 'blocks'.; record it again with seresnet reference record"):
        load_reference(tmp_path)
    (tmp_path / "switch_off.csv").unlink()
    with pytest.raises(FileNotFoundError, match="lacks switch_off.csv: record it again"):
        load_reference(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist: .* come with the lessons.* SERESNET_NOTEBOOKS"):
        load_reference(tmp_path / "reference")  # lesson 07 opened alone, away from notebooks/results/


def test_the_sweep_holds_the_reference_run_and_three_seeds_of_each_model(reference):
    spec = load_grid_file(NOTEBOOKS / "params" / "sweep_reference.yaml")
    assert spec["preset"] == "reference.yaml" and spec["grid"] == [
        {"model": ["seresnet50", "resnet50"]}, {"model": ["resnet50"], "zero_init_residual": [True]}]
    rows = load_results(RESULTS / "reference_sweep.csv")
    runs = sorted((row.varied["model"], row.varied["zero_init_residual"], row.seed) for row in rows)
    assert runs == sorted([(model, False, seed) for model in ("resnet50", "seresnet50") for seed in spec["seeds"]]
                          + [("resnet50", True, 0)])  # the zero-initialized ResNet-50 with seed 0 only
    assert all(row.status == "complete" and len(row.curve) == PRESET["epochs"] for row in rows)
    assert len(spec["seeds"]) >= 3
    [own] = [row for row in rows if row.varied["model"] == "seresnet50" and row.seed == 0]
    assert own.curve == [row["test_acc"] for row in reference.epochs]
    assert own.final_test_acc == pytest.approx(reference.epochs[-1]["test_acc"])
    assert own.model_parameters == json.loads((RESULTS / "reference" / "metrics.json").read_text())[
        "model_parameters"] == 26_059_514
