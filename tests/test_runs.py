"""Run folders: never shared by two runs, locked while a run trains, listed and pruned from the command line."""

import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import pytest
import torch

from seresnet_lib.cli import main
from seresnet_lib.training import folders as runs
from seresnet_lib.training.config import TrainConfig
from seresnet_lib.training.folders import LOCK, DiskFull, RunInUse, atomic_write, check_space, hold, new_run, size_text


def _start_runs_together(out_dir, barrier, results):
    barrier.wait()
    results.put(new_run(Path(out_dir)).name)


def test_runs_started_at_the_same_moment_get_distinct_folders(tmp_path):
    """The race of a parallel sweep: processes released by a barrier each create their run folder."""
    context = multiprocessing.get_context("fork")  # cheap starts; the children only create folders
    processes_per_round, rounds = 6, 5
    names = []
    for round_ in range(rounds):
        out_dir = tmp_path / f"round{round_}"
        barrier, results = context.Barrier(processes_per_round), context.Queue()
        workers = [context.Process(target=_start_runs_together, args=(out_dir, barrier, results))
                   for _ in range(processes_per_round)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
            assert worker.exitcode == 0
        chosen = sorted(results.get(timeout=5) for _ in workers)
        assert chosen == [f"run-{i:03d}" for i in range(1, processes_per_round + 1)]
        names += chosen
    assert len(names) == processes_per_round * rounds


def test_two_writers_of_one_file_never_share_a_temporary_file(tmp_path):
    target, errors = tmp_path / "checkpoint.pt", []

    def writer(tag):
        try:
            for _ in range(30):
                atomic_write(target, lambda file: file.write(tag * 1000))
        except OSError as error:  # one shared temporary name made one writer's rename fail
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in (b"a", b"b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert target.read_bytes() in (b"a" * 1000, b"b" * 1000)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary file left


def _hold_until_killed(run_dir, locked):
    with hold(Path(run_dir)):
        locked.set()
        time.sleep(60)


def hold_in_another_process(run_dir: Path) -> multiprocessing.Process:
    """Another live process that has locked ``run_dir`` with hold(), until killed."""
    context = multiprocessing.get_context("fork")
    locked = context.Event()
    process = context.Process(target=_hold_until_killed, args=(str(run_dir), locked), daemon=True)
    process.start()
    assert locked.wait(timeout=30)
    return process


def stop(process: multiprocessing.Process) -> None:
    process.kill()
    process.join()


def test_a_run_locked_by_a_live_process_is_refused_and_freed_when_it_dies(tmp_path):
    run_dir = new_run(tmp_path)
    owner = hold_in_another_process(run_dir)
    try:
        with pytest.raises(RunInUse, match=f"is being trained by process {owner.pid} on {socket.gethostname()}"):
            with hold(run_dir):
                pass
        assert runs.holder(run_dir) == f"process {owner.pid} on {socket.gethostname()}"
    finally:
        stop(owner)  # killed: it never released the lock itself
    assert (run_dir / LOCK).exists() and runs.holder(run_dir) is None  # the system released it
    with hold(run_dir):
        assert (run_dir / LOCK).read_text().split()[0] == str(os.getpid())
    assert not (run_dir / LOCK).exists()  # released on leaving


def _try_to_hold(run_dir, barrier, results):
    barrier.wait()
    try:
        with hold(Path(run_dir)):
            results.put("held")
            time.sleep(0.5)  # long enough for every other process to try
    except RunInUse:
        results.put("refused")


def test_of_processes_trying_to_lock_one_run_at_once_exactly_one_gets_it(tmp_path):
    run_dir = new_run(tmp_path)
    (run_dir / LOCK).write_text("")  # a lock file left empty by a crash: not held by anyone
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(5), context.Queue()
    workers = [context.Process(target=_try_to_hold, args=(str(run_dir), barrier, results)) for _ in range(5)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(results.get(timeout=5) for _ in workers) == ["held"] + ["refused"] * 4


def test_a_name_taken_by_a_file_is_skipped(tmp_path):
    new_run(tmp_path)
    (tmp_path / "run-002").write_text("not a run")
    assert new_run(tmp_path).name == "run-003"


def test_the_lock_is_released_when_training_fails(tmp_path):
    run_dir = new_run(tmp_path)
    with pytest.raises(ZeroDivisionError):
        with hold(run_dir):
            1 / 0
    assert not (run_dir / LOCK).exists()


def test_out_dir_must_be_a_folder_that_can_be_written(tmp_path):
    a_file = tmp_path / "runs.txt"
    a_file.write_text("not a folder")
    with pytest.raises(ValueError, match="out_dir .*runs.txt is a file, not a folder"):
        runs.check_writable_folder(a_file)
    with pytest.raises(ValueError, match="cannot write in out_dir .*runs.txt/deeper"):
        runs.check_writable_folder(a_file / "deeper")
    runs.check_writable_folder(tmp_path / "new" / "folder")  # created
    assert (tmp_path / "new" / "folder").is_dir()


def _check_as_nobody(folder, results):
    """In a forked child: drop root's right to write anywhere, then check the folder."""
    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)
    try:
        runs.check_writable_folder(Path(folder))
        results.put("accepted")
    except ValueError as error:
        results.put(str(error))


def check_unprivileged(folder: Path) -> str:
    """check_writable_folder's verdict in a process without root's privilege (root ignores permissions)."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_check_as_nobody, args=(str(folder), results))
    child.start()
    child.join(timeout=60)
    return results.get(timeout=5)


def test_a_read_only_out_dir_is_refused():
    base = Path(tempfile.mkdtemp(prefix="seresnet-read-only-"))  # in /tmp, which every user can reach
    try:
        base.chmod(0o755)
        read_only, writable = base / "read-only", base / "writable"
        read_only.mkdir(mode=0o555)
        writable.mkdir()
        writable.chmod(0o777)
        verdict = check_unprivileged(read_only)
        assert "cannot write in out_dir" in verdict and "Permission denied" in verdict
        assert check_unprivileged(writable) == "accepted"  # the same process can write elsewhere
    finally:
        shutil.rmtree(base)


def tiny_run(out_dir: Path, number: int, status: str, done: int, best: float | None, **parameters):
    """A run folder as fit() leaves it, without training: metrics.json and a small checkpoint."""
    run_dir = out_dir / f"run-{number:03d}"
    run_dir.mkdir(parents=True)
    metrics = {"status": status, "parameters": {**TrainConfig().as_dict(), **parameters},
               "epochs": [{"epoch": e + 1, "train_loss": 1.0, "test_loss": 1.0} for e in range(done)],
               "best_test_acc": best}
    if status == "diverged":
        metrics["epochs"].append({"epoch": done + 1, "train_loss": None, "test_loss": None})
        metrics["diverged_epoch"] = done + 1
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    torch.save({"weights": torch.zeros(2500)}, run_dir / "checkpoint.pt")  # about 10 kB
    return run_dir


def test_list_shows_each_run_with_status_progress_accuracy_changes_and_size(tmp_path, capsys):
    tiny_run(tmp_path, 1, "complete", 4, 0.44, lr=0.05)
    tiny_run(tmp_path, 2, "running", 1, 0.2, epochs=3)  # its process was killed: no live lock
    tiny_run(tmp_path, 3, "diverged", 0, None, lr=1000.0)
    (tmp_path / "run-004").mkdir()  # killed before its first epoch
    assert main(["runs", "list", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["run", "status", "epochs", "best"]
    first, second, third, fourth = (line.split() for line in lines[1:])
    assert first[:4] == ["run-001", "complete", "4", "44.0%"] and "lr=0.05" in first
    assert second[:3] == ["run-002", "stopped", "1"] and "epochs=3" in second
    assert third[:4] == ["run-003", "diverged", "0", "-"] and "lr=1000.0" in third
    assert fourth[:3] == ["run-004", "empty", "0"]
    assert " kB" in lines[1] and "yes" in lines[1]


def test_prune_keeps_the_newest_checkpoints_and_every_metrics_file(tmp_path, capsys):
    folders = [tiny_run(tmp_path, n, "complete", 1, 0.3) for n in (1, 2, 3)]
    assert main(["runs", "prune", str(tmp_path), "--keep", "1", "--yes"]) == 0
    assert [(f / "checkpoint.pt").exists() for f in folders] == [False, False, True]
    assert all((f / "metrics.json").exists() for f in folders)
    assert "deleted 2 checkpoints, freed" in capsys.readouterr().out


def test_prune_asks_first_and_skips_a_run_in_training(tmp_path, monkeypatch, capsys):
    old, training = tiny_run(tmp_path, 1, "complete", 1, 0.3), tiny_run(tmp_path, 2, "running", 1, 0.3)
    os.utime(old / "checkpoint.pt", (0, 0))  # 1970
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert main(["runs", "prune", str(tmp_path), "--older-than", "7"]) == 1
    assert (old / "checkpoint.pt").exists() and "nothing deleted" in capsys.readouterr().out
    owner = hold_in_another_process(training)
    try:
        os.utime(training / "checkpoint.pt", (0, 0))
        monkeypatch.setattr("builtins.input", lambda prompt: "y")
        assert main(["runs", "prune", str(tmp_path), "--keep", "0"]) == 0
        assert runs.describe_run(training).status == "running"  # its process holds the lock
    finally:
        stop(owner)
    assert not (old / "checkpoint.pt").exists() and (training / "checkpoint.pt").exists()


@pytest.mark.parametrize("arguments, message", [
    ([], "--keep N and/or --older-than DAYS"),
    (["--keep", "-1"], "--keep must be 0 or more, got -1"),
    (["--older-than", "0"], "--older-than must be a number of days > 0, got 0.0"),
])
def test_prune_needs_to_be_told_what(tmp_path, capsys, arguments, message):
    with pytest.raises(SystemExit):
        main(["runs", "prune", str(tmp_path), *arguments])
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("damage, named", [
    (lambda metrics: metrics.update(best_test_acc="abc"), 'best_test_acc is a text ("abc"), not a number'),
    (lambda metrics: metrics.update(best_test_acc=[0.5]), "best_test_acc is a list ([0.5]), not a number"),
    (lambda metrics: metrics.update(best_test_acc=True), "best_test_acc is a boolean (true), not a number"),
    (lambda metrics: metrics.update(parameters=[1, 2]), "parameters is a list ([1, 2]), not a mapping"),
    (lambda metrics: metrics.update(parameters=None), "parameters is null, not a mapping"),
    (lambda metrics: metrics.update(status=["complete"]), 'status is a list (["complete"]), not a text'),
    (lambda metrics: metrics.update(epochs={"1": {}}), 'epochs is a mapping ({"1": {}}), not a list'),
    (lambda metrics: metrics["epochs"].append(3), "epochs[2] is a number (3), not a mapping"),
    (lambda metrics: metrics["epochs"][0].update(train_loss="low"), 'epochs[0].train_loss is a text ("low")'),
    (lambda metrics: (metrics.pop("status"), metrics["parameters"].update(epochs="3")),  # as before statuses
     'parameters.epochs is a text ("3"), not a whole number'),
    (lambda metrics: metrics.pop("epochs"), "it has no epochs"),
    ("null", "it holds null, not a mapping"),
    ('{"status": "complete", ', "it is not JSON"),
], ids=["best text", "best list", "best boolean", "parameters list", "parameters null", "status list", "epochs mapping",
        "epoch number", "loss text", "planned epochs text", "no epochs", "null", "not JSON"])
def test_a_metrics_file_unlike_fits_makes_its_run_unreadable_and_the_others_are_listed(tmp_path, capsys, damage,
                                                                                        named):
    for number in (1, 2, 3):
        tiny_run(tmp_path, number, "complete", 2, 0.3)
    path = tmp_path / "run-002" / "metrics.json"
    if callable(damage):
        metrics = json.loads(path.read_text())
        damage(metrics)
        damage = json.dumps(metrics)
    path.write_text(damage)
    assert main(["runs", "list", str(tmp_path)]) == 0
    first, second, third = capsys.readouterr().out.splitlines()[1:]
    assert first.split()[:3] == ["run-001", "complete", "2"] and third.split()[:3] == ["run-003", "complete", "2"]
    assert second.split()[:4] == ["run-002", "unreadable", "-", "-"] and named in second
    assert runs.read_metrics(tmp_path / "run-002") is None
    assert "run-002 (a checkpoint)" in runs.found_runs(tmp_path)


def test_atomic_write_gives_the_file_the_usual_mode_not_a_private_one(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    atomic_write(tmp_path / "results.csv", lambda file: file.write(b"a,b\n"))
    assert (tmp_path / "results.csv").stat().st_mode & 0o777 == 0o666 & ~umask


def _write_until_killed(path, hold_run, writing):
    def write(file):
        file.write(b"\0" * 300_000)
        file.flush()
        writing.set()
        time.sleep(60)

    with hold(Path(path).parent) if hold_run else nullcontext():
        atomic_write(Path(path), write)


def writing_in_another_process(path: Path, hold_run: bool = False) -> multiprocessing.Process:
    """Another live process midway through ``atomic_write(path)`` (300 kB written), holding the run's lock if
    ``hold_run`` as a training run does, until killed: stop() it, and its temporary file stays behind."""
    context = multiprocessing.get_context("fork")
    writing = context.Event()
    process = context.Process(target=_write_until_killed, args=(str(path), hold_run, writing), daemon=True)
    process.start()
    assert writing.wait(timeout=30)
    return process


def test_temporary_files_of_killed_writes_are_listed_apart_and_pruned_but_not_those_of_a_live_one(tmp_path, capsys):
    killed, training = tiny_run(tmp_path, 1, "complete", 1, 0.3), tiny_run(tmp_path, 2, "running", 1, 0.3)
    run_files = size_text(sum(path.stat().st_size for path in killed.iterdir()))
    stop(writing_in_another_process(killed / "checkpoint.pt"))  # SIGKILL midway through each write
    stop(writing_in_another_process(killed / "metrics.json"))
    writer = writing_in_another_process(training / "checkpoint.pt", hold_run=True)
    try:
        assert main(["runs", "list", str(tmp_path)]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[1].split()[:2] == ["run-001", "complete"] and f" {run_files} " in lines[1]  # litter apart
        assert "and 2 stale temporary files, 600.0 kB, left by a killed write" in lines[2]
        assert lines[3].split()[:2] == ["run-002", "running"] and len(lines) == 4  # a write under way is no litter
        assert main(["runs", "prune", str(tmp_path), "--keep", "0", "--yes"]) == 0
        assert "deleted 1 checkpoints and 2 stale temporary file(s), freed 611.6 kB" in capsys.readouterr().out
        assert sorted(path.name for path in killed.iterdir()) == ["metrics.json"]
        assert len(list(training.glob(".checkpoint.pt.*.tmp"))) == 1 and (training / "checkpoint.pt").exists()
    finally:
        stop(writer)
    assert main(["runs", "list", str(tmp_path)]) == 0  # its writer gone, that file is litter too
    assert "and 1 stale temporary file, 300.0 kB" in capsys.readouterr().out


@contextmanager
def mounted_small_disk(folder: Path, size: str = "2m") -> Iterator[Path]:
    """``folder`` as a filesystem of its own, ``size`` large (a tmpfs), so that it really fills up."""
    if not sys.platform.startswith("linux"):
        pytest.skip("a small disk is a tmpfs, which is Linux's")
    folder.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                           capture_output=True, text=True)
    refusal = mount.stderr.lower()
    if mount.returncode != 0 and (os.geteuid() != 0 or "permission denied" in refusal or "not permitted" in refusal):
        pytest.skip(f"mounting a small disk (tmpfs) takes root's privilege: {mount.stderr.strip()}")
    assert mount.returncode == 0, mount.stderr
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A folder on a disk of 2 MB."""
    with mounted_small_disk(tmp_path / "disk") as folder:
        yield folder


def test_a_full_disk_is_named_with_the_space_needed_and_free_and_the_old_file_stays(small_disk):
    target = small_disk / "checkpoint.pt"
    atomic_write(target, lambda file: file.write(b"the last good checkpoint"))
    with pytest.raises(DiskFull, match=r"the disk is full: more than [\d.]+ [kM]B needed for checkpoint.pt, "
                                       r"2.1 MB free in .*disk\. Free some space there, or write elsewhere"):
        atomic_write(target, lambda file: torch.save({"weights": torch.zeros(1_000_000)}, file))  # 4 MB
    assert target.read_bytes() == b"the last good checkpoint"
    assert [path.name for path in small_disk.iterdir()] == ["checkpoint.pt"]  # no temporary file left
    with pytest.raises(DiskFull, match=r"the disk is full: 4.0 MB needed for checkpoint.pt, 2.1 MB free in"):
        check_space(target, 4_000_000)  # before writing anything
    check_space(target, 2_000_000)
