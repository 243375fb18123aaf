"""Run folders: never shared by two runs, locked while a run trains, listed and pruned from the command line."""

import json
import multiprocessing
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest
import torch

from seresnet_lib.cli import main
from seresnet_lib.training import folders as runs
from seresnet_lib.training.config import TrainConfig
from seresnet_lib.training.folders import LOCK, RunInUse, atomic_write, hold, new_run


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


def test_a_corrupt_metrics_file_does_not_break_listing(tmp_path, capsys):
    tiny_run(tmp_path, 1, "complete", 2, 0.3)
    (tmp_path / "run-001" / "metrics.json").write_text('{"status": "running"}')
    assert runs.read_metrics(tmp_path / "run-001") is None
    assert main(["runs", "list", str(tmp_path)]) == 0
    assert "run-001   empty" in capsys.readouterr().out
    assert runs.found_runs(tmp_path).endswith("run-001 (a checkpoint).")


def test_atomic_write_gives_the_file_the_usual_mode_not_a_private_one(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    atomic_write(tmp_path / "results.csv", lambda file: file.write(b"a,b\n"))
    assert (tmp_path / "results.csv").stat().st_mode & 0o777 == 0o666 & ~umask
