"""fit(): repeatable, resumable to the same numbers, checkpoints that fail loudly when damaged.

fit() trains any model; these tests give it a one-block-per-stage SE-ResNet, which runs the
same code as SE-ResNet-50 in a fraction of the time (lesson 05's tests train the real one).
"""

import io
import json
import multiprocessing
import random
import re
import shutil
import signal
import threading
import time

import pytest
import torch
from torch import nn

from seresnet_lib import ResNet, ResNetConfig, count_parameters
from seresnet_lib.cli import main
from seresnet_lib.model.layers import Bottleneck
from seresnet_lib.seeding import seed_everything
from seresnet_lib.training import (TrainingDiverged, build_model, check_run_folder, cli as training_cli,
                                   confusion_matrix, evaluate, fit, loop, make_optimizer, per_class_accuracy, predict,
                                   run as run_module, share_of_mistakes_within_groups, steps, train_one_epoch)
from seresnet_lib.training.config import TrainConfig
from seresnet_lib.training.data import CLASS_GROUPS, load_dataset
from seresnet_lib.training.folders import DiskFull, RunInUse, hold
from seresnet_lib.training.loader import BatchLoader

# Runs in one out_dir keep their checkpoints here, as a sweep's do; the lesson's default (keep one) is tested apart.
TINY = dict(train_size=96, test_size=64, batch_size=32, lr=0.02, lr_step=1, augment=True, normalize=True,
            keep_checkpoints=None)


def small_model(config: TrainConfig) -> ResNet:
    """SE-ResNet with one bottleneck per stage, 8 wide: SE-ResNet-50's code at toy cost."""
    seed_everything(config.seed)
    return ResNet(ResNetConfig(blocks=(1, 1, 1, 1), widths=(8, 8, 8, 8), num_classes=10, reduction=4,
                               stem=config.stem, zero_init_residual=config.zero_init_residual))


def loaders(config: TrainConfig):
    train_set, test_set = load_dataset(config.dataset, config.train_size, config.test_size, seed=config.seed)
    mean, std = train_set.channel_stats()
    train_loader = BatchLoader(train_set, config.batch_size, shuffle=True, augment=config.augment,
                               mean=mean, std=std, seed=config.seed)
    return train_loader, BatchLoader(test_set, 64, mean=mean, std=std)


def run(out_dir, **overrides):
    """What the training notebook does, at toy size; returns (history, model)."""
    config = TrainConfig(out_dir=str(out_dir), **{**TINY, **overrides})
    model = small_model(config)
    train_loader, test_loader = loaders(config)
    return fit(model, train_loader, test_loader, config, progress="lines"), model


def numbers(history):
    """Everything but the wall-clock seconds."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history.epochs]


def test_same_seed_same_metrics(tmp_path):
    first, _ = run(tmp_path / "a", epochs=2)
    second, _ = run(tmp_path / "b", epochs=2)
    assert numbers(first) == numbers(second)
    third, _ = run(tmp_path / "c", epochs=2, seed=1)
    assert numbers(third) != numbers(first)


def assert_same_run(history, model, reference_history, reference_model):
    assert numbers(history) == numbers(reference_history)
    reference = reference_model.state_dict()
    for name, value in model.state_dict().items():
        assert torch.equal(value, reference[name]), name


@pytest.mark.parametrize("schedule", ["step", "cosine"])
def test_interrupted_and_resumed_run_ends_exactly_like_an_uninterrupted_one(tmp_path, monkeypatch, capsys, schedule):
    whole, whole_model = run(tmp_path / "whole", epochs=3, schedule=schedule)
    evaluate, calls = steps.evaluate, []

    def interrupted_in_epoch_2(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the kernel were stopped during epoch 2
        return evaluate(*args)

    monkeypatch.setattr(steps, "evaluate", interrupted_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "split", epochs=3, schedule=schedule)
    monkeypatch.undo()
    resumed, resumed_model = run(tmp_path / "split", epochs=3, schedule=schedule, resume=True)
    assert "resumed split/run-001 after epoch 1" in capsys.readouterr().out.replace(str(tmp_path) + "/", "")
    assert resumed.run_dir.name == "run-001"
    assert_same_run(resumed, resumed_model, whole, whole_model)


def test_a_finished_step_run_can_be_extended(tmp_path):
    whole, whole_model = run(tmp_path / "whole", epochs=3)
    run(tmp_path / "short", epochs=1)
    extended, extended_model = run(tmp_path / "short", epochs=3, resume=True)
    assert_same_run(extended, extended_model, whole, whole_model)


def test_a_cosine_run_cannot_change_its_length(tmp_path):
    run(tmp_path, epochs=1, schedule="cosine")
    with pytest.raises(ValueError, match=r"epochs=3 \(the run used 1\)"):
        run(tmp_path, epochs=3, schedule="cosine", resume=True)


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    history, _ = run(tmp_path, epochs=1)
    checkpoint = history.run_dir / "checkpoint.pt"
    before = checkpoint.read_bytes()

    def crash_halfway(state, file):
        file.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_halfway)
    with pytest.raises(OSError, match="disk full"):
        run(tmp_path, epochs=2, resume=True)
    assert checkpoint.read_bytes() == before
    assert sorted(p.name for p in history.run_dir.iterdir()) == ["checkpoint.pt", "metrics.json"]
    assert [row["epoch"] for row in metrics_of(history.run_dir)["epochs"]] == [1]  # what the checkpoint holds


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a disk of 2 MB (a tmpfs)."""
    from test_runs import mounted_small_disk

    with mounted_small_disk(tmp_path / "disk") as folder:
        yield folder


def test_a_disk_that_fills_up_stops_the_run_at_its_last_checkpoint_and_says_so(small_disk, monkeypatch):
    calls = []

    def filling_the_disk_in_epoch_2(*args):
        calls.append(1)
        if len(calls) == 2:  # another program takes all but 100 kB; a checkpoint takes 250
            (small_disk / "filler").write_bytes(bytes(shutil.disk_usage(small_disk).free - 100_000))
        return train_one_epoch(*args)

    monkeypatch.setattr(steps, "train_one_epoch", filling_the_disk_in_epoch_2)
    with pytest.raises(DiskFull, match=r"the disk is full: [\d.]+ kB needed for checkpoint.pt, [\d.]+ kB free in "
                                       r".*disk/runs/run-001\. Free some space there, or write elsewhere"):
        run(small_disk / "runs", epochs=3)
    assert len(calls) == 2  # epoch 3 never ran
    run_dir = small_disk / "runs" / "run-001"
    assert sorted(path.name for path in run_dir.iterdir()) == ["checkpoint.pt", "metrics.json"]
    metrics, kept = metrics_of(run_dir), torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert metrics["status"] == "stopped" and [row["epoch"] for row in metrics["epochs"]] == [1]
    assert kept["history"] == metrics["epochs"]
    with pytest.raises(DiskFull, match=r"the disk is full: .* free in .*run-002"):
        run(small_disk / "runs", epochs=1)  # a new run on the full disk: refused before its first epoch
    assert len(calls) == 2


def test_each_epoch_writes_checkpoint_and_metrics(tmp_path, capsys):
    history, model = run(tmp_path, epochs=2)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines if line.startswith("epoch")] == [["epoch", "1/2"], ["epoch", "2/2"]]
    files = sorted(p.name for p in history.run_dir.iterdir())
    assert files == ["checkpoint.pt", "metrics.json"]  # no temporary files left behind
    metrics = json.loads((history.run_dir / "metrics.json").read_text())
    assert [row["epoch"] for row in metrics["epochs"]] == [1, 2]
    assert metrics["best_test_acc"] == max(row["test_acc"] for row in metrics["epochs"])
    assert metrics["parameters"]["batch_size"] == 32 and metrics["parameters"]["lr"] == 0.02
    assert metrics["model_parameters"] == count_parameters(model)
    assert set(metrics["epochs"][0]) == {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds"}
    assert [row["lr"] for row in metrics["epochs"]] == pytest.approx([0.02, 0.002])  # StepLR(1, 0.1)
    checkpoint = torch.load(history.run_dir / "checkpoint.pt", weights_only=True)
    assert checkpoint["history"] == history.epochs


def test_a_new_run_never_overwrites_an_old_one(tmp_path):
    first, _ = run(tmp_path, epochs=1)
    second, _ = run(tmp_path, epochs=1)
    assert (first.run_dir.name, second.run_dir.name) == ("run-001", "run-002")
    assert (first.run_dir / "checkpoint.pt").exists()


def test_resume_with_nothing_to_resume_starts_fresh(tmp_path, capsys):
    history, _ = run(tmp_path, epochs=1, resume=True)
    assert history.run_dir.name == "run-001"
    assert "nothing to resume" in capsys.readouterr().out


def test_resume_with_other_parameters_is_refused_before_any_work(tmp_path):
    run(tmp_path, epochs=1)
    config = TrainConfig(out_dir=str(tmp_path), **{**TINY, "lr": 0.05, "resume": True})
    with pytest.raises(ValueError, match=r"cannot resume .* lr=0.05 \(the run used 0.02\)"):
        check_run_folder(config)
    with pytest.raises(ValueError, match=r"cannot resume .* lr=0.05 \(the run used 0.02\)"):
        run(tmp_path, epochs=2, lr=0.05, resume=True)
    check_run_folder(TrainConfig(out_dir=str(tmp_path), **{**TINY, "epochs": 4, "resume": True}))


def truncated_checkpoint() -> bytes:
    saved = io.BytesIO()
    torch.save({"format": run_module._CHECKPOINT_FORMAT, "model": {"weight": torch.zeros(1000)}}, saved)
    return saved.getvalue()[:2000]


@pytest.mark.parametrize("contents", [random.Random(0).randbytes(5000), truncated_checkpoint(), b"", b"hello\n"],
                         ids=["random bytes", "truncated", "empty", "text"])
def test_a_file_that_is_no_checkpoint_at_all_is_called_so_before_any_work(tmp_path, contents):
    folder = tmp_path / "run-001"
    folder.mkdir()
    (folder / "checkpoint.pt").write_bytes(contents)
    with pytest.raises(ValueError, match=r"run-001/checkpoint.pt is not a PyTorch checkpoint \(damaged, truncated, "
                                         r"or never one\): its [\d.]+ k?B are not the zip archive torch.save writes"):
        check_run_folder(TrainConfig(out_dir=str(tmp_path), **{**TINY, "resume": True}))


def test_a_foreign_checkpoint_is_reported(tmp_path):
    folder = tmp_path / "run-001"
    folder.mkdir()
    torch.save({"state_dict": {}}, folder / "checkpoint.pt")
    with pytest.raises(ValueError, match="is not a checkpoint written by fit"):
        run(tmp_path, epochs=1, resume=True)


def test_a_pickled_object_is_not_loaded_and_the_unsafe_way_is_not_suggested(tmp_path):
    folder = tmp_path / "run-001"
    folder.mkdir()
    torch.save({"format": object()}, folder / "checkpoint.pt")  # weights_only=True refuses arbitrary objects
    with pytest.raises(ValueError) as error:
        run(tmp_path, epochs=1, resume=True)
    message = str(error.value)
    assert "holds Python objects other than tensors" in message and "loading them can run any code" in message
    assert "weights_only" not in message


@pytest.mark.parametrize("damage, named", [
    (lambda state: state.pop("config"), "its config is missing"),
    (lambda state: state.update(history="all of it"), "its history is missing"),
    (lambda state: state["rng"].pop("loader"), "its rng.loader is missing"),
])
def test_a_tagged_checkpoint_with_odd_contents_is_called_damaged(tmp_path, damage, named):
    history, _ = run(tmp_path, epochs=1)
    path = history.run_dir / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    damage(state)
    torch.save(state, path)
    with pytest.raises(ValueError) as error:
        run(tmp_path, epochs=2, resume=True)
    message = str(error.value)
    assert "has the format of fit()'s checkpoints" in message and named in message and "it is damaged" in message


def test_unknown_progress_style_is_refused(tmp_path):
    with pytest.raises(ValueError, match="progress='fancy' is not allowed"):
        fit(None, None, None, TrainConfig(out_dir=str(tmp_path)), progress="fancy")


def test_evaluation_helpers_agree_with_each_other():
    model = small_model(TrainConfig(stem="cifar"))
    _, test = load_dataset("synthetic", 10, 50, seed=0)
    loader = BatchLoader(test, 20)
    probabilities, labels = predict(model, loader)
    assert probabilities.shape == (50, 10)
    assert torch.allclose(probabilities.sum(1), torch.ones(50))
    assert torch.equal(labels, test.labels)
    predicted = probabilities.argmax(1)
    matrix = confusion_matrix(predicted, labels, 10)
    assert matrix.sum() == 50 and matrix.diag().sum() == (predicted == labels).sum()
    _, accuracy = evaluate(model, loader)
    assert accuracy == pytest.approx((predicted == labels).float().mean().item())
    per_class = per_class_accuracy(predicted, labels, 10)
    for c in range(10):
        assert per_class[c] == pytest.approx((predicted[labels == c] == c).float().mean().item())


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    matrix = confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 0, 1, 2]), 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_importing_the_library_flushes_denormal_floats():
    import seresnet_lib  # noqa: F401 (the import is what is tested)

    tiny = torch.tensor([1e-39])  # below float32's smallest normal number, 1.2e-38
    assert (tiny * 1.0).item() == 0.0


def test_relative_out_dirs_are_taken_from_the_workdir(tmp_path, monkeypatch):
    monkeypatch.setenv("SERESNET_WORKDIR", str(tmp_path))
    history, _ = run("runs/relative", epochs=1)
    assert history.run_dir == tmp_path / "runs" / "relative" / "run-001"


def test_progress_bar_only_where_someone_watches(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert not loop._interactive()
    monkeypatch.delenv("CI")
    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    assert loop._interactive()


def test_fit_runs_train_one_epoch_once_per_epoch(tmp_path, monkeypatch):
    calls = []

    def counted(model, batches, optimizer, *options):
        calls.append(len(batches))
        return train_one_epoch(model, batches, optimizer, *options)

    monkeypatch.setattr(steps, "train_one_epoch", counted)
    history, _ = run(tmp_path, epochs=3)
    assert calls == [3, 3, 3]  # 96 images in batches of 32, each epoch
    assert len(history.epochs) == 3


def test_train_one_epoch_returns_the_mean_loss_and_accuracy_of_its_batches():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    batches = [(torch.randn(4, 3, 2, 2), torch.tensor([0, 1, 2, 0])), (torch.randn(2, 3, 2, 2), torch.tensor([1, 1]))]
    with torch.no_grad():
        logits = [model(images) for images, _ in batches]
    losses = [nn.functional.cross_entropy(x, y, reduction="sum") for x, (_, y) in zip(logits, batches)]
    right = sum((x.argmax(1) == y).sum().item() for x, (_, y) in zip(logits, batches))
    weights = [p.clone() for p in model.parameters()]
    loss, accuracy = train_one_epoch(model, batches, torch.optim.SGD(model.parameters(), lr=0.0))
    assert loss == pytest.approx(sum(losses).item() / 6) and accuracy == right / 6
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))  # lr 0: weights unchanged
    train_one_epoch(model, batches, torch.optim.SGD(model.parameters(), lr=0.1))
    assert not all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))
    assert model.training


def test_fit_takes_the_callers_optimizer_and_scheduler(tmp_path):
    config = TrainConfig(out_dir=str(tmp_path), **{**TINY, "epochs": 3})
    model = small_model(config)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = fit(model, *loaders(config), config, optimizer=optimizer, scheduler=scheduler, progress="lines")
    assert [row["lr"] for row in history.epochs] == pytest.approx([0.05, 0.025, 0.0125])
    only_optimizer = torch.optim.SGD(model.parameters(), lr=0.05)  # the schedule comes from the config
    history = fit(model, *loaders(config), config, optimizer=only_optimizer, progress="lines")
    assert [row["lr"] for row in history.epochs] == pytest.approx([0.05, 0.005, 0.0005])


def test_a_scheduler_must_come_with_its_own_optimizer(tmp_path):
    config = TrainConfig(out_dir=str(tmp_path), **TINY)
    model = small_model(config)
    optimizer, scheduler = make_optimizer(model, config)
    other, _ = make_optimizer(model, config)
    with pytest.raises(ValueError, match="a scheduler was given without its optimizer"):
        fit(model, None, None, config, scheduler=scheduler)
    with pytest.raises(ValueError, match="the scheduler drives another optimizer than the one given"):
        fit(model, None, None, config, optimizer=other, scheduler=scheduler)
    with pytest.raises(ValueError, match="optimizer must be a torch.optim.Optimizer, got str"):
        fit(model, None, None, config, optimizer="sgd")
    for_a_copy, _ = make_optimizer(small_model(config), config)
    with pytest.raises(ValueError, match="the optimizer updates parameters that are not this model's"):
        fit(model, None, None, config, optimizer=for_a_copy)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    with pytest.raises(ValueError, match="ReduceLROnPlateau needs one"):
        fit(model, None, None, config, optimizer=optimizer, scheduler=plateau)
    assert not any(tmp_path.iterdir())  # refused before a run folder was made


def test_a_run_resumes_only_with_the_kind_of_optimizer_and_scheduler_it_used(tmp_path):
    run(tmp_path, epochs=1)
    config = TrainConfig(out_dir=str(tmp_path), **{**TINY, "epochs": 2, "resume": True})
    model = small_model(config)
    adam = torch.optim.Adam(model.parameters())
    with pytest.raises(ValueError, match="it was trained with SGD as its optimizer, not Adam"):
        fit(model, *loaders(config), config, optimizer=adam, progress="lines")
    sgd = torch.optim.SGD(model.parameters(), lr=0.02)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(sgd, T_max=2)
    with pytest.raises(ValueError, match="it was trained with StepLR as its scheduler, not CosineAnnealingLR"):
        fit(model, *loaders(config), config, optimizer=sgd, scheduler=cosine, progress="lines")


def test_a_new_run_starts_the_loader_from_its_seed(tmp_path):
    config = TrainConfig(out_dir=str(tmp_path), **{**TINY, "epochs": 2})
    train_loader, test_loader = loaders(config)
    list(train_loader)  # an epoch drawn before fit (a preview, say) must not change the run
    used = fit(small_model(config), train_loader, test_loader, config, progress="lines")
    fresh, _ = run(tmp_path, epochs=2)
    assert numbers(used) == numbers(fresh)


def test_build_model_follows_the_config():
    plain = build_model(TrainConfig(model="resnet50", channels_last=False), num_classes=10)
    assert count_parameters(plain) == 23_528_522  # ResNet-50 with a 10-way classifier
    assert plain.stem.conv.weight.is_contiguous()
    assert all(block.bn3.weight.abs().sum() > 0 for block in plain.modules() if isinstance(block, Bottleneck))
    fast = build_model(TrainConfig(zero_init_residual=True, reduction=8), num_classes=10)
    assert fast.stem.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert fast.config.reduction == 8
    assert all((block.bn3.weight == 0).all() for block in fast.modules() if isinstance(block, Bottleneck))


def test_share_of_mistakes_within_groups():
    classes, groups = ("a", "b", "c"), {"ab": ("a", "b"), "c": ("c",)}
    matrix = torch.tensor([[5, 3, 1],   # a: 3 taken for b (same group), 1 for c
                           [0, 4, 0],
                           [2, 0, 7]])  # c: 2 taken for a
    assert share_of_mistakes_within_groups(matrix, classes, groups) == 3 / 6
    assert share_of_mistakes_within_groups(torch.eye(3, dtype=torch.long), classes, groups) == 1.0  # none
    with pytest.raises(ValueError, match=r"classes \['c'\] are in none of the groups \['ab'\]"):
        share_of_mistakes_within_groups(matrix, classes, {"ab": ("a", "b")})
    with pytest.raises(ValueError, match="a class is in more than one of the groups"):
        share_of_mistakes_within_groups(matrix, classes, {"ab": ("a", "b"), "bc": ("b", "c")})


def test_class_groups_cover_each_datasets_classes_once():
    _, test = load_dataset("synthetic", 10, 10)
    cifar10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    for name, classes in (("synthetic", test.classes), ("cifar10", cifar10)):
        members = [member for group in CLASS_GROUPS[name].values() for member in group]
        assert sorted(members) == sorted(classes)


def metrics_of(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


def test_metrics_carry_the_status_running_then_complete(tmp_path, monkeypatch):
    seen = []

    def watched(model, batches, optimizer, *options):
        run_dir = sorted(tmp_path.iterdir())[-1]
        seen.append((metrics_of(run_dir)["status"], (run_dir / "lock").exists()))
        return train_one_epoch(model, batches, optimizer)

    monkeypatch.setattr(steps, "train_one_epoch", watched)
    history, _ = run(tmp_path, epochs=2)
    assert seen == [("running", True), ("running", True)]  # the run is locked while it trains
    assert metrics_of(history.run_dir)["status"] == "complete"
    assert not (history.run_dir / "lock").exists()


def test_a_diverged_run_stops_keeps_its_last_good_checkpoint_and_says_why(tmp_path, monkeypatch):
    def diverging(model, batches, optimizer, *options):
        loss, accuracy = train_one_epoch(model, batches, optimizer)
        return (float("nan"), accuracy) if len(calls) == 2 else (loss, accuracy)

    calls = []
    monkeypatch.setattr(steps, "train_one_epoch", lambda *args: calls.append(1) or diverging(*args))
    with pytest.raises(TrainingDiverged) as error:
        run(tmp_path, epochs=4)
    assert len(calls) == 2  # epochs 3 and 4 never ran
    message = str(error.value)
    assert "training diverged in epoch 2: the training loss is nan" in message
    assert "learning rate too high" in message and "(lr=0.02); try lr=0.002" in message  # the run's, not epoch 2's
    assert "keeps the checkpoint after epoch 1" in message
    run_dir = tmp_path / "run-001"
    metrics = metrics_of(run_dir)
    assert metrics["status"] == "diverged" and metrics["diverged_epoch"] == 2
    assert [row["epoch"] for row in metrics["epochs"]] == [1, 2] and metrics["epochs"][1]["train_loss"] is None
    assert [row["epoch"] for row in torch.load(run_dir / "checkpoint.pt", weights_only=True)["history"]] == [1]


def test_a_learning_rate_far_too_high_diverges_in_the_first_epoch(tmp_path):
    with pytest.raises(TrainingDiverged, match="training diverged in epoch 1: the .*loss is (nan|inf)"):
        run(tmp_path, epochs=3, lr=1e6, augment=False)
    metrics = metrics_of(tmp_path / "run-001")
    assert metrics["status"] == "diverged" and metrics["best_test_acc"] is None  # no epoch was good
    assert not (tmp_path / "run-001" / "checkpoint.pt").exists()  # no epoch was good


def test_resume_skips_an_empty_newest_folder_and_says_which_run(tmp_path, capsys):
    whole, _ = run(tmp_path / "whole", epochs=2)
    run(tmp_path / "shared", epochs=1)
    (tmp_path / "shared" / "run-002").mkdir()  # a run killed before its first save
    resumed, _ = run(tmp_path / "shared", epochs=2, resume=True)
    assert resumed.run_dir.name == "run-001"
    assert "resumed shared/run-001 after epoch 1" in capsys.readouterr().out.replace(str(tmp_path) + "/", "")
    assert numbers(resumed) == numbers(whole)


def test_resume_by_name_continues_that_run_in_a_folder_shared_by_a_sweep(tmp_path, capsys):
    run(tmp_path, epochs=1)  # run-001, lr 0.02
    run(tmp_path, epochs=1, lr=0.05)  # run-002
    with pytest.raises(ValueError) as error:  # named, with other parameters than it was made with
        run(tmp_path, epochs=2, resume="run-002")
    assert "lr=0.02 (the run used 0.05)" in str(error.value) and "name it: resume='run-NNN'" in str(error.value)
    assert "run-001 (checkpoint after epoch 1), run-002 (checkpoint after epoch 1)" in str(error.value)
    resumed, _ = run(tmp_path, epochs=2, resume="run-001")
    assert resumed.run_dir.name == "run-001" and len(resumed.epochs) == 2
    by_path, _ = run(tmp_path, epochs=2, lr=0.05, resume=str(tmp_path / "run-002") + "/")
    assert by_path.run_dir.name == "run-002"


def test_resume_true_prefers_the_newest_run_made_with_these_parameters(tmp_path, capsys):
    run(tmp_path, epochs=1)  # run-001, lr 0.02
    run(tmp_path, epochs=1, lr=0.05)  # run-002, newer
    resumed, _ = run(tmp_path, epochs=2, resume=True)  # lr 0.02: run-001 is the one to go on with
    assert resumed.run_dir.name == "run-001"
    assert "resumed run-001 after epoch 1" in capsys.readouterr().out.replace(str(tmp_path) + "/", "")


def test_a_parameter_the_options_ignore_may_change_on_resume(tmp_path):
    run(tmp_path, epochs=1, schedule="cosine")
    resumed, _ = run(tmp_path, epochs=1, schedule="cosine", lr_step=3, resume=True)  # lr_step is unused
    assert resumed.run_dir.name == "run-001"


def test_a_run_interrupted_says_stopped_in_its_metrics(tmp_path, monkeypatch):
    calls = []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return train_one_epoch(*args)

    def owners_handler(number, frame):
        pass

    monkeypatch.setattr(steps, "train_one_epoch", interrupted)
    before = signal.signal(signal.SIGTERM, owners_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            run(tmp_path, epochs=3)
        assert signal.getsignal(signal.SIGTERM) is owners_handler  # fit gave SIGTERM back, interrupted too
    finally:
        signal.signal(signal.SIGTERM, before)
    metrics = metrics_of(tmp_path / "run-001")
    assert metrics["status"] == "stopped" and [row["epoch"] for row in metrics["epochs"]] == [1]


def test_outside_the_main_thread_fit_leaves_sigterm_alone():
    seen = []

    def in_a_thread():
        with loop._terminate_as_interrupt():  # signal.signal would raise there: only the main thread may set one
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert seen == [signal.getsignal(signal.SIGTERM)]


def test_a_checkpoint_deleted_before_training_starts_is_an_error_not_a_new_run(tmp_path, monkeypatch):
    history, _ = run(tmp_path, epochs=1)
    before = (history.run_dir / "metrics.json").read_text()
    find_run = run_module.find_run

    def pruned_meanwhile(*args, **kwargs):
        found = find_run(*args, **kwargs)
        (found / "checkpoint.pt").unlink()  # another process pruned it after it was chosen
        return found

    monkeypatch.setattr(run_module, "find_run", pruned_meanwhile)
    with pytest.raises(ValueError, match="the checkpoint of .*run-001 disappeared before training could resume it"):
        run(tmp_path, epochs=2, resume=True)
    assert (history.run_dir / "metrics.json").read_text() == before  # the run's record is untouched


def test_resuming_a_run_that_is_not_there_names_what_was_found(tmp_path, capsys):
    run(tmp_path, epochs=1)
    (tmp_path / "run-002").mkdir()
    config = TrainConfig(out_dir=str(tmp_path), **{**TINY, "resume": "run-007"})
    with pytest.raises(ValueError, match=r"resume='run-007': .*run-007 does not exist\. In .*: run-001 "
                                         r"\(checkpoint after epoch 1\), run-002 \(no checkpoint\)"):
        check_run_folder(config)
    empty = TrainConfig(out_dir=str(tmp_path / "fresh"), **{**TINY, "resume": True, "epochs": 1})
    fit(small_model(empty), *loaders(empty), empty, progress="lines")
    assert "nothing to resume: " in capsys.readouterr().out


def test_out_dir_is_checked_before_any_work(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ValueError, match="out_dir .*a-file is a file, not a folder"):
        check_run_folder(TrainConfig(out_dir=str(tmp_path / "a-file")))


def test_a_second_process_cannot_resume_a_run_that_is_training(tmp_path):
    from test_runs import hold_in_another_process, stop

    history, _ = run(tmp_path, epochs=1)
    owner = hold_in_another_process(history.run_dir)
    try:
        config = TrainConfig(out_dir=str(tmp_path), **{**TINY, "epochs": 2, "resume": True})
        with pytest.raises(RunInUse, match=f"run-001 is being trained by process {owner.pid}"):
            check_run_folder(config)
        with pytest.raises(RunInUse):
            run(tmp_path, epochs=2, resume="run-001")
    finally:
        stop(owner)
    resumed, _ = run(tmp_path, epochs=2, resume=True)  # the lock went with its process
    assert len(resumed.epochs) == 2


def test_by_default_only_the_newest_runs_checkpoint_stays_and_it_resumes_exactly(tmp_path, capsys):
    whole, _ = run(tmp_path / "whole", epochs=2)
    for lr in (0.05, 0.02):
        run(tmp_path / "lesson", epochs=1, lr=lr, keep_checkpoints=1)
    runs = sorted((tmp_path / "lesson").iterdir())
    assert [(r.name, (r / "checkpoint.pt").exists(), (r / "metrics.json").exists()) for r in runs] == \
           [("run-001", False, True), ("run-002", True, True)]
    out = capsys.readouterr().out.replace(str(tmp_path) + "/", "")
    assert re.search(r"deleted the checkpoint\(s\) of run-001 \(their metrics.json stay\), freeing [\d.]+ kB: "
                     r"keep_checkpoints=1", out)
    resumed, _ = run(tmp_path / "lesson", epochs=2, resume=True, keep_checkpoints=1)
    assert resumed.run_dir.name == "run-002" and numbers(resumed) == numbers(whole)


def test_keep_checkpoints_0_writes_none_and_prunes_the_others(tmp_path):
    run(tmp_path, epochs=1)
    history, _ = run(tmp_path, epochs=1, keep_checkpoints=0)
    assert [(r.name, (r / "checkpoint.pt").exists()) for r in sorted(tmp_path.iterdir())] == \
           [("run-001", False), ("run-002", False)]
    assert json.loads((history.run_dir / "metrics.json").read_text())["status"] == "complete"


def test_keep_checkpoints_counts_this_run_and_spares_a_run_in_training(tmp_path):
    for _ in range(3):
        run(tmp_path, epochs=1)
    with hold(tmp_path / "run-001"):  # another process may be training it
        run(tmp_path, epochs=1, keep_checkpoints=2)
    assert [r.name for r in sorted(tmp_path.iterdir()) if (r / "checkpoint.pt").exists()] == \
           ["run-001", "run-003", "run-004"]


def test_the_command_line_trains_a_preset_with_parameters_over_it(tmp_path, capsys):
    preset = tmp_path / "preset.yaml"
    preset.write_text("epochs: 5\nbatch_size: 16\ntrain_size: 32\ntest_size: 16\n")
    assert main(["train", str(preset), "-p", "epochs", "1", "-p", "out_dir", str(tmp_path / "runs")]) == 0
    metrics = json.loads((tmp_path / "runs" / "run-001" / "metrics.json").read_text())
    assert metrics["status"] == "complete" and len(metrics["epochs"]) == 1  # -p wins over the preset
    assert metrics["parameters"]["batch_size"] == 16
    assert "best test accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("arguments, message", [
    (["-p", "epoch", "3"], "unknown parameter(s): epoch; the parameters are: dataset"),
    (["-p", "precision", "fp16"], "precision"),
    (["missing.yaml"], "missing.yaml"),
])
def test_the_command_line_refuses_bad_parameters_before_training(tmp_path, capsys, arguments, message):
    assert main(["train", *arguments, "-p", "out_dir", str(tmp_path / "runs")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_resuming_deletes_the_temporary_file_a_killed_checkpoint_write_left(tmp_path, capsys):
    from test_runs import stop, writing_in_another_process

    history, _ = run(tmp_path, epochs=1)
    stop(writing_in_another_process(history.run_dir / "checkpoint.pt"))  # SIGKILL midway through the write
    assert len(list(history.run_dir.glob(".checkpoint.pt.*.tmp"))) == 1
    run(tmp_path, epochs=1, resume=True)  # nothing left to train: the run is only opened
    assert sorted(path.name for path in history.run_dir.iterdir()) == ["checkpoint.pt", "metrics.json"]
    assert re.search(r"deleted 1 temporary file \(300.0 kB\) that a write killed midway left in .*run-001",
                     capsys.readouterr().out)


def _train_until_terminated(out_dir):
    torch.set_num_threads(1)  # a forked process: no thread pool of its parent's
    run(out_dir, epochs=100)


def test_a_run_sent_sigterm_stops_and_its_metrics_say_so(tmp_path):
    trainer = multiprocessing.get_context("fork").Process(target=_train_until_terminated, args=(tmp_path,))
    trainer.start()
    run_dir, deadline = tmp_path / "run-001", time.monotonic() + 60
    while not ((run_dir / "metrics.json").exists() and metrics_of(run_dir)["epochs"]) and time.monotonic() < deadline:
        time.sleep(0.01)
    trainer.terminate()  # SIGTERM, as torchrun or a batch system's time limit sends
    trainer.join(timeout=60)
    assert trainer.exitcode == 1  # it raised KeyboardInterrupt, instead of dying at once of the signal
    metrics = metrics_of(run_dir)
    assert metrics["status"] == "stopped" and len(metrics["epochs"]) >= 1
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["history"] == metrics["epochs"]
    assert not (run_dir / "lock").exists()


@pytest.mark.parametrize("stop, code, where, message", [
    (KeyboardInterrupt("stopped by SIGTERM"), 130, "out",
     "stopped (stopped by SIGTERM); -p resume True goes on from its last checkpoint"),
    (DiskFull("the disk is full: 208.9 MB needed for checkpoint.pt, 3.1 MB free in runs/run-001"), 1, "err",
     "error: the disk is full: 208.9 MB needed"),
])
def test_the_command_line_ends_a_stopped_run_with_a_line_not_a_traceback(monkeypatch, capsys, stop, code, where,
                                                                        message):
    def train_run(config):
        raise stop

    monkeypatch.setattr(training_cli, "train_run", train_run)
    assert main(["train", "-p", "epochs", "1"]) == code
    assert message in getattr(capsys.readouterr(), where)
