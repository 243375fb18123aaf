"""Run folders: where each training run keeps its checkpoint and metrics, and how to see and prune them.

    python -m seresnet_lib.runs list runs/05_train_cifar10
    python -m seresnet_lib.runs prune runs/05_train_cifar10 --keep 2    # asks first; --yes does not

Every run gets its own ``out_dir/run-NNN`` folder, created atomically, so runs started at the
same moment never share one. While a run trains, a lock file in its folder names the process
(PID and host); another process is refused that run until the lock is gone. A lock whose process
has ended (killed, say) is stale and taken over.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .config import TrainConfig
from .paths import display, resolve

CHECKPOINT, METRICS, LOCK = "checkpoint.pt", "metrics.json", "lock"
RUN_NAME = re.compile(r"run-(\d{3,})")


class RunInUse(RuntimeError):
    """Another process is training this run."""


def run_folders(out_dir: Path) -> list[Path]:
    """The ``run-NNN`` folders in ``out_dir``, oldest (lowest number) first."""
    if not out_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in out_dir.iterdir() if p.is_dir() and (m := RUN_NAME.fullmatch(p.name))]
    return [path for _, path in sorted(found)]


def new_run(out_dir: Path) -> Path:
    """Create the next ``out_dir/run-NNN`` and return it; a folder another process created first is skipped."""
    out_dir.mkdir(parents=True, exist_ok=True)
    while True:
        numbers = [int(RUN_NAME.fullmatch(p.name).group(1)) for p in run_folders(out_dir)]
        run_dir = out_dir / f"run-{max(numbers, default=0) + 1:03d}"
        try:
            run_dir.mkdir()  # atomic: exactly one process creates a given folder
        except FileExistsError:
            continue
        return run_dir


def find_run(out_dir: Path, resume: bool | str) -> Path | None:
    """The run to continue: ``resume=True`` the newest run with a checkpoint (None if none has one);
    a name (``"run-001"``) or a path, that run, which must have a checkpoint."""
    if resume is True:
        with_checkpoint = [run for run in run_folders(out_dir) if (run / CHECKPOINT).is_file()]
        return with_checkpoint[-1] if with_checkpoint else None
    run_dir = resolve(resume) if ("/" in resume or os.sep in resume) else out_dir / resume
    if not (run_dir / CHECKPOINT).is_file():
        what = "has no checkpoint" if run_dir.is_dir() else "does not exist"
        raise ValueError(f"resume={resume!r}: {display(run_dir)} {what}. {found_runs(out_dir)}")
    return run_dir


def found_runs(out_dir: Path) -> str:
    """What ``out_dir`` holds, for messages: each run and how far it got."""
    runs = run_folders(out_dir)
    if not runs:
        return f"{display(out_dir)} holds no runs."
    parts = [f"{run.name} ({_progress(run)})" for run in runs]
    return f"In {display(out_dir)}: {', '.join(parts)}."


def _progress(run_dir: Path) -> str:
    metrics = read_metrics(run_dir)
    done = len(metrics["epochs"]) if metrics else 0
    if not (run_dir / CHECKPOINT).is_file():
        return "no checkpoint" if done == 0 else f"{done} epochs, checkpoint pruned"
    return f"checkpoint after epoch {done}" if metrics else "a checkpoint"


def check_writable_folder(folder: Path, name: str = "out_dir") -> None:
    """Create ``folder`` if needed and prove a file can be written in it; else a ValueError saying why."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{name} {display(folder)} is a file, not a folder; choose a folder for the runs")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(f"cannot write in {name} {display(folder)} ({error.strerror or error}); "
                         f"choose a folder you can write to") from None


def _holder(lock_file: Path) -> tuple[int, str] | None:
    """(PID, host) written in a lock file, or None while its owner has not written them yet."""
    try:
        pid, host = lock_file.read_text().split()
        return int(pid), host
    except (OSError, ValueError):
        return None


def _alive(pid: int, host: str) -> bool:
    if host != socket.gethostname():
        return True  # a process on another machine cannot be checked: assume it runs
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder(run_dir: Path) -> tuple[int, str] | None:
    """The (PID, host) of the live process training ``run_dir``, or None if it is free."""
    lock_file = run_dir / LOCK
    if not lock_file.exists():
        return None
    owner = _holder(lock_file)
    if owner is None:
        return (0, "?")  # just being created
    return owner if _alive(*owner) else None


def check_free(run_dir: Path) -> None:
    """Raise RunInUse if a live process is training ``run_dir``."""
    owner = holder(run_dir)
    if owner is not None:
        pid, host = owner
        raise RunInUse(f"{display(run_dir)} is being trained by process {pid} on {host}; wait for it to end, "
                       f"or continue another run (resume='run-NNN'). If that process is surely gone, delete "
                       f"{display(run_dir / LOCK)}.")


@contextmanager
def hold(run_dir: Path) -> Iterator[None]:
    """Lock ``run_dir`` for this process while the block runs; RunInUse if another process holds it."""
    lock_file = run_dir / LOCK
    for _ in range(100):
        try:
            descriptor = os.open(lock_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            owner = _holder(lock_file)
            if owner is None:
                time.sleep(0.01)  # its owner is writing it
                continue
            check_free(run_dir)
            _take_stale(lock_file, owner)
    else:
        check_free(run_dir)
        raise RunInUse(f"could not lock {display(run_dir)}")
    mine = f"{os.getpid()} {socket.gethostname()}\n"
    with os.fdopen(descriptor, "w") as file:
        file.write(mine)
    try:
        yield
    finally:
        if lock_file.exists() and lock_file.read_text() == mine:
            lock_file.unlink(missing_ok=True)


def _take_stale(lock_file: Path, owner: tuple[int, str]) -> None:
    """Move a stale lock aside, unless another process replaced it meanwhile."""
    aside = lock_file.with_name(f"{LOCK}.stale.{os.getpid()}")
    try:
        os.rename(lock_file, aside)
    except FileNotFoundError:
        return  # another process took it first
    if _holder(aside) != owner:  # it was a fresh lock, not the stale one: put it back
        try:
            os.link(aside, lock_file)
        except FileExistsError:
            pass
    aside.unlink(missing_ok=True)


def atomic_write(path: Path, write) -> None:
    """Write through a temporary file of this process, flushed to disk, then renamed over ``path``.

    A crash at any moment leaves either the old file or the new one, never half of one, and two
    processes writing the same file never share a temporary one.
    """
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def read_metrics(run_dir: Path) -> dict | None:
    """The run's ``metrics.json``, or None if it has none (or an unreadable one)."""
    try:
        return json.loads((run_dir / METRICS).read_text())
    except (OSError, ValueError):
        return None


@dataclass
class RunSummary:
    """One line of ``runs list``."""

    name: str
    status: str
    epochs: int
    best_test_acc: float | None
    changed: dict
    bytes: int
    checkpoint: bool

    def line(self) -> str:
        best = "-" if self.best_test_acc is None else f"{self.best_test_acc:.1%}"
        changed = " ".join(f"{k}={v}" for k, v in self.changed.items()) or "(defaults)"
        return (f"{self.name:<9} {self.status:<9} {self.epochs:>6} {best:>6} {_size(self.bytes):>9}  "
                f"{'yes' if self.checkpoint else 'no':<10}  {changed}")


HEADER = f"{'run':<9} {'status':<9} {'epochs':>6} {'best':>6} {'on disk':>9}  {'checkpoint':<10}  parameters"


def summarize(run_dir: Path) -> RunSummary:
    """Status (running, complete, diverged, stopped, empty), progress, and what differs from the defaults."""
    metrics = read_metrics(run_dir) or {}
    status = metrics.get("status") or _status_of_older_run(metrics)
    if status == "running" and holder(run_dir) is None:
        status = "stopped"  # its process ended before the last epoch (killed, interrupted)
    defaults = TrainConfig().as_dict()
    ignore = {"out_dir", "resume"}
    changed = {k: v for k, v in metrics.get("parameters", {}).items() if k not in ignore and defaults.get(k) != v}
    size = sum(p.stat().st_size for p in run_dir.rglob("*") if p.is_file())
    return RunSummary(run_dir.name, status, len(metrics.get("epochs", [])), metrics.get("best_test_acc"),
                      changed, size, (run_dir / CHECKPOINT).is_file())


def _status_of_older_run(metrics: dict) -> str:
    """Runs written before metrics.json carried a status: complete if all their epochs were done."""
    if not metrics:
        return "empty"
    done, planned = len(metrics.get("epochs", [])), metrics.get("parameters", {}).get("epochs")
    return "complete" if planned is not None and done >= planned else "stopped"


def prunable(out_dir: Path, keep: int | None = None, older_than_days: float | None = None) -> list[Path]:
    """Checkpoints to delete: all but those of the ``keep`` newest runs, and/or those older than
    ``older_than_days``; never one of a run being trained."""
    runs = [run for run in run_folders(out_dir) if (run / CHECKPOINT).is_file() and holder(run) is None]
    if keep is not None:
        runs = runs[:max(0, len(runs) - keep)]
    if older_than_days is not None:
        cutoff = time.time() - older_than_days * 86_400
        runs = [run for run in runs if (run / CHECKPOINT).stat().st_mtime < cutoff]
    return [run / CHECKPOINT for run in runs]


def _size(count: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seresnet_lib.runs", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="one line per run: status, epochs, best accuracy, size")
    listing.add_argument("out_dir", type=Path)
    pruning = commands.add_parser("prune", help="delete checkpoints (metrics.json and notebooks stay)")
    pruning.add_argument("out_dir", type=Path)
    pruning.add_argument("--keep", type=int, metavar="N", help="keep the checkpoints of the N newest runs")
    pruning.add_argument("--older-than", type=float, metavar="DAYS", help="delete checkpoints older than this")
    pruning.add_argument("--yes", action="store_true", help="do not ask before deleting")
    args = parser.parse_args(argv)
    out_dir = resolve(args.out_dir)
    if not out_dir.is_dir():
        parser.error(f"no such folder: {args.out_dir}")
    if args.command == "list":
        print(HEADER)
        for run in run_folders(out_dir):
            print(summarize(run).line())
        return 0
    if args.keep is None and args.older_than is None:
        parser.error("say which checkpoints to delete: --keep N and/or --older-than DAYS")
    if args.keep is not None and args.keep < 0:
        parser.error(f"--keep must be 0 or more, got {args.keep}")
    doomed = prunable(out_dir, args.keep, args.older_than)
    if not doomed:
        print("no checkpoints to delete")
        return 0
    total = sum(path.stat().st_size for path in doomed)
    for path in doomed:
        print(f"  {display(path)}  {_size(path.stat().st_size)}")
    if not args.yes and input(f"delete these {len(doomed)} checkpoints ({_size(total)})? [y/N] ").strip().lower() \
            not in ("y", "yes"):
        print("nothing deleted")
        return 1
    for path in doomed:
        path.unlink(missing_ok=True)
    print(f"deleted {len(doomed)} checkpoints, freed {_size(total)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
