"""Run folders: where each training run keeps its checkpoint and metrics, and how to see and prune them.

    seresnet runs list runs/05_train_cifar10
    seresnet runs prune runs/05_train_cifar10 --keep 2    # asks first; --yes does not

Every run gets its own ``out_dir/run-NNN`` folder, created atomically, so runs started at the
same moment never share one. While a run trains, its process holds an operating-system lock on
the file ``lock`` in its folder (which also names the process, for messages); another process is
refused that run until the lock is released. The system releases it when the process ends, even
when it is killed, so a crashed run never stays locked. A process killed while writing leaves its
temporary file (``.checkpoint.pt.*.tmp``); once no process holds the run, resuming or pruning it
deletes that file, and ``runs list`` counts it apart.

Each run's metrics.json records who made it: the user (``"owner"``) and the host (``"host"``) that
started it. A run's ``keep_checkpoints`` prunes only the runs that this user made on this host, so
a folder shared by two users, or by two machines (a network home), never loses another's
checkpoint, nor one that the other machine may be training (its lock does not reach across
machines). Runs whose metrics.json predates that record are left alone too; ``runs prune`` deletes
their checkpoints on request, and another user's or host's only with ``--any-owner``.
"""

from __future__ import annotations

import errno
import getpass
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..paths import display, resolve
from .config import TrainConfig

try:  # POSIX (Linux, macOS)
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt
try:  # POSIX: user names by number
    import pwd
except ImportError:  # Windows
    pwd = None

CHECKPOINT, METRICS, LOCK = "checkpoint.pt", "metrics.json", "lock"
RUN_NAME = re.compile(r"run-(\d{3,})")
_TEMPORARY_NAME = re.compile(r"\..+\.\w{8}\.tmp")  # atomic_write's: .checkpoint.pt.ab12cd34.tmp


class RunInUse(RuntimeError):
    """Another process is training this run."""


class DiskFull(OSError):
    """The disk has no room for a file a run writes; the files there are as they were."""


def run_folders(out_dir: Path) -> list[Path]:
    """The ``run-NNN`` folders in ``out_dir``, oldest (lowest number) first."""
    if not out_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in out_dir.iterdir() if p.is_dir() and (m := RUN_NAME.fullmatch(p.name))]
    return [path for _, path in sorted(found)]


def new_run(out_dir: Path) -> Path:
    """Create the next ``out_dir/run-NNN`` and return it; a number another process (or a file) took is skipped."""
    out_dir.mkdir(parents=True, exist_ok=True)
    taken = [int(m.group(1)) for name in os.listdir(out_dir) if (m := RUN_NAME.fullmatch(name))]
    number = max(taken, default=0) + 1
    while True:
        run_dir = out_dir / f"run-{number:03d}"
        try:
            run_dir.mkdir()  # atomic: exactly one process creates a given folder
        except FileExistsError:
            number += 1
            continue
        return run_dir


def find_run(out_dir: Path, resume: bool | str, fits: Callable[[dict], bool] | None = None,
             parameter: str = "resume", missing: type[Exception] = ValueError) -> Path | None:
    """The run to continue (or load), or None if ``resume=True`` finds none.

    ``resume=True``: the newest run with a checkpoint, preferring one whose recorded parameters
    ``fits`` accepts (a folder shared by a sweep holds runs of other parameters). A name
    (``"run-001"``) or a path: that run, which must have a checkpoint, else ``missing`` is raised,
    its message naming the value as ``parameter`` (resume='run-009'). A run that another process
    is training is returned all the same: locking it then says so.
    """
    if resume is True:
        candidates = [run for run in reversed(run_folders(out_dir)) if (run / CHECKPOINT).is_file()]
        matching = [run for run in candidates if fits is None or fits(read_metrics(run) or {})]
        return (matching or candidates or [None])[0]
    name = resume.rstrip("/" + os.sep)
    run_dir = resolve(name) if ("/" in name or os.sep in name) else out_dir / name
    if not (run_dir / CHECKPOINT).is_file():
        what = "has no checkpoint" if run_dir.is_dir() else "does not exist"
        raise missing(f"{parameter}={resume!r}: {display(run_dir)} {what}. {found_runs(out_dir)}")
    return run_dir


def found_runs(out_dir: Path) -> str:
    """What ``out_dir`` holds, for messages: each run and how far it got."""
    runs = run_folders(out_dir)
    if not runs:
        return f"{display(out_dir)} holds no runs."
    return f"In {display(out_dir)}: {', '.join(f'{run.name} ({_progress(run)})' for run in runs)}."


def _good_epochs(metrics: dict | None) -> list[dict]:
    """The epochs of a run whose losses were finite (a diverged epoch's are not)."""
    rows = (metrics or {}).get("epochs", [])
    return [row for row in rows if row.get("train_loss") is not None and row.get("test_loss") is not None]


def _progress(run_dir: Path) -> str:
    metrics = read_metrics(run_dir)
    done = len(_good_epochs(metrics))
    if (run_dir / CHECKPOINT).is_file():
        text = f"checkpoint after epoch {done}" if metrics else "a checkpoint"
    else:
        text = f"{done} epochs, checkpoint pruned" if done else "no checkpoint"
    if metrics and metrics.get("status") == "diverged":
        text += f", diverged in epoch {metrics.get('diverged_epoch')}"
    return text


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


def _try_lock(descriptor: int) -> bool:
    """Take the system's lock on an open file without waiting; False if another process holds it."""
    try:
        if fcntl is not None:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def _unlock(descriptor: int) -> None:
    if fcntl is not None:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
    else:
        os.lseek(descriptor, 0, os.SEEK_SET)
        msvcrt.locking(descriptor, msvcrt.LK_UNLCK, 1)


def _named_holder(lock_file: Path) -> str:
    """Who the lock file says holds it, for messages."""
    try:
        pid, host = lock_file.read_text().split()
        return f"process {int(pid)} on {host}"
    except (OSError, ValueError):
        return "another process"


def holder(run_dir: Path) -> str | None:
    """Who is training ``run_dir`` ("process 1234 on host"), or None if no process holds its lock."""
    lock_file = run_dir / LOCK
    try:
        descriptor = os.open(lock_file, os.O_RDWR)
    except FileNotFoundError:
        return None
    except OSError:  # a lock file this user cannot open: its owner decides
        return _named_holder(lock_file)
    try:
        if not _try_lock(descriptor):
            return _named_holder(lock_file)
        _unlock(descriptor)
        return None
    finally:
        os.close(descriptor)


def check_free(run_dir: Path) -> None:
    """Raise RunInUse if another process is training ``run_dir``."""
    training = holder(run_dir)
    if training is not None:
        raise RunInUse(f"{display(run_dir)} is being trained by {training}; wait for it to end, or continue "
                       f"another run (resume='run-NNN')")


@contextmanager
def hold(run_dir: Path) -> Iterator[None]:
    """Lock ``run_dir`` for this process while the block runs; RunInUse if another process holds it."""
    lock_file = run_dir / LOCK
    patience = time.monotonic() + 0.2  # `runs list` or `prune` may hold it for an instant to look
    while True:
        descriptor = os.open(lock_file, os.O_CREAT | os.O_RDWR)
        if not _try_lock(descriptor):
            os.close(descriptor)
            if time.monotonic() < patience:
                time.sleep(0.02)
            else:
                check_free(run_dir)  # raises, naming the holder, unless it was released meanwhile
            continue
        try:  # the file we locked must still be the one in the folder (its last holder deletes it)
            same = os.path.samestat(os.fstat(descriptor), os.stat(lock_file))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(descriptor)
    try:
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()} {socket.gethostname()}\n".encode())
        yield
    finally:
        try:
            lock_file.unlink()  # before unlocking: a process that opened it retries on the new file
        except OSError:
            pass  # Windows cannot delete an open file; the next holder truncates it
        _unlock(descriptor)
        os.close(descriptor)


_UMASK = os.umask(0o022)  # read once, on import, and put back at once: os.umask can only be read by setting it
os.umask(_UMASK)


def atomic_write(path: Path, write) -> None:
    """Write through a temporary file of this process, flushed to disk, then renamed over ``path``.

    A crash at any moment leaves either the old file or the new one, never half of one, and two
    processes writing the same file never share a temporary one (a process killed while writing
    leaves its own: see ``stale_temporary_files``). DiskFull if the disk fills up meanwhile.
    """
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):  # mkstemp's files are private (0600); the result gets the usual mode
            os.fchmod(descriptor, 0o666 & ~_UMASK)
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except Exception as error:
        if not _out_of_space(error):
            raise
        written = _size(Path(temporary))
        Path(temporary).unlink(missing_ok=True)  # before measuring what is free
        raise DiskFull(_disk_full(path, f"more than {size_text(written)}")) from None
    finally:
        Path(temporary).unlink(missing_ok=True)


def check_space(path: Path, needed: int) -> None:
    """DiskFull, before anything is written, if the disk has less than ``needed`` bytes free for a new
    ``path`` (written beside the old one, which stays until the new one is complete)."""
    if shutil.disk_usage(path.parent).free < needed:
        raise DiskFull(_disk_full(path, size_text(needed)))


def _disk_full(path: Path, needed: str) -> str:
    free = shutil.disk_usage(path.parent).free
    return (f"the disk is full: {needed} needed for {path.name}, {size_text(free)} free in {display(path.parent)}. "
            f"Free some space there, or write elsewhere; the files there are as they were")


def _out_of_space(error: BaseException | None) -> bool:
    """Whether ``error``, or one it arose from (torch.save's "unexpected pos" comes from one), is a full disk."""
    while error is not None:
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        error = error.__cause__ or error.__context__
    return False


def _temporary_files(run_dir: Path) -> list[Path]:
    """The temporary files ``atomic_write`` made in ``run_dir``: of a write under way, or left by a killed one."""
    try:
        return sorted(path for path in run_dir.iterdir() if _TEMPORARY_NAME.fullmatch(path.name))
    except OSError:
        return []


def stale_temporary_files(run_dir: Path) -> list[Path]:
    """The temporary files whose writer is gone (killed while writing): those of a run no process holds."""
    return _temporary_files(run_dir) if holder(run_dir) is None else []


def delete_temporary_files(run_dir: Path) -> str | None:
    """Delete the temporary files of ``run_dir``, whose lock this process holds (so no write of theirs goes
    on): what was deleted, as a sentence, or None."""
    freed = [_delete_file(path) for path in _temporary_files(run_dir)]
    if not freed:
        return None
    return (f"deleted {_count(len(freed), 'temporary file')} ({size_text(sum(freed))}) that a write killed "
            f"midway left in {display(run_dir)}")


def read_metrics(run_dir: Path) -> dict | None:
    """The run's ``metrics.json``, or None if it has none or one that is not fit()'s."""
    return _metrics_and_problem(run_dir)[0]


def _metrics_and_problem(run_dir: Path) -> tuple[dict | None, str | None]:
    """The run's ``metrics.json`` (None if it has none, or one unlike fit()'s), and what is wrong with one unlike
    fit()'s, in words (None if nothing)."""
    try:
        metrics = json.loads((run_dir / METRICS).read_text())
    except FileNotFoundError:
        return None, None
    except OSError as error:
        return None, f"it cannot be read ({error.strerror or error})"
    except ValueError:
        return None, "it is not JSON"
    problem = _metrics_problem(metrics)
    return (None, problem) if problem else (metrics, None)


_TEXT, _MAPPING, _LIST = ((str,), "a text"), ((dict,), "a mapping"), ((list,), "a list")
_NUMBER, _WHOLE = ((int, float), "a number"), ((int,), "a whole number")
# What the fields of metrics.json that listing, resuming and sweeps read must be; all but the
# mappings and lists may be null (a run with no good epoch has no best one; a diverged epoch no loss).
_METRICS_FIELDS = {"status": _TEXT, "parameters": _MAPPING, "epochs": _LIST, "best_test_acc": _NUMBER,
                   "best_epoch": _WHOLE, "diverged_epoch": _WHOLE, "owner": _TEXT, "host": _TEXT}
_EPOCH_FIELDS = {"epoch": _WHOLE, "train_loss": _NUMBER, "train_acc": _NUMBER, "test_loss": _NUMBER,
                 "test_acc": _NUMBER, "lr": _NUMBER, "seconds": _NUMBER}


def _metrics_problem(metrics) -> str | None:
    """What makes parsed JSON unlike fit()'s metrics.json ('best_test_acc is a text ("abc"), not a number'), or None."""
    if not isinstance(metrics, dict):
        return f"it holds {_kind(metrics)}, not a mapping"
    if "epochs" not in metrics:
        return "it has no epochs"
    fields = [(name, metrics[name], kind) for name, kind in _METRICS_FIELDS.items() if name in metrics]
    if isinstance(metrics.get("parameters"), dict) and "epochs" in metrics["parameters"]:
        fields.append(("parameters.epochs", metrics["parameters"]["epochs"], _WHOLE))
    for index, row in enumerate(metrics["epochs"] if isinstance(metrics["epochs"], list) else []):
        fields.append((f"epochs[{index}]", row, _MAPPING))
        if isinstance(row, dict):
            fields += [(f"epochs[{index}].{name}", row[name], kind) for name, kind in _EPOCH_FIELDS.items()
                       if name in row]
    wrong = (f"{name} is {_kind(value)}, not {words}" for name, value, (kinds, words) in fields
             if not _is_kind(value, kinds))
    return next(wrong, None)


def _is_kind(value, kinds: tuple[type, ...]) -> bool:
    if value is None:
        return dict not in kinds and list not in kinds
    return isinstance(value, kinds) and not isinstance(value, bool)  # JSON's true is not the number 1


def _kind(value) -> str:
    """A JSON value's kind and how it starts, for messages: a text ("abc"), a list ([1, 2])."""
    if value is None:
        return "null"
    names = {bool: "a boolean", str: "a text", dict: "a mapping", list: "a list", int: "a number", float: "a number"}
    shown = json.dumps(value)
    return f"{names.get(type(value), type(value).__name__)} ({shown if len(shown) <= 24 else shown[:21] + '...'})"


def this_user() -> str:
    """The account this process runs as: its name, or its number where the system has no name for it."""
    if pwd is None:
        return getpass.getuser()
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a number without an entry in the user database (a container started as any user)
        return str(os.getuid())


@dataclass(frozen=True)
class Maker:
    """Who made a run: the user and the host that started it, as its metrics.json records them
    (``"owner"``, ``"host"``)."""

    owner: str
    host: str

    @classmethod
    def here(cls) -> Maker:
        """This process's user on this host: whoever starts a run now."""
        return cls(this_user(), socket.gethostname())

    @classmethod
    def of(cls, run_dir: Path) -> Maker | None:
        """Who made ``run_dir``; None if its metrics.json does not say (made before runs recorded it, or
        missing, or not fit()'s)."""
        metrics = read_metrics(run_dir) or {}
        owner, host = metrics.get("owner"), metrics.get("host")
        return cls(owner, host) if isinstance(owner, str) and isinstance(host, str) else None

    def record(self) -> dict[str, str]:
        """The fields of metrics.json that name the maker."""
        return {"owner": self.owner, "host": self.host}

    def __str__(self) -> str:
        return f"{self.owner} on {self.host}"


def made_by(run_dir: Path) -> str | None:
    """Who made ``run_dir``, in words, unless it was this user on this host (then None): "made by alice on
    lab-2", or "who made it is not recorded" for a run whose metrics.json predates that record."""
    return _in_words(Maker.of(run_dir))


def _in_words(maker: Maker | None) -> str | None:
    if maker is None:
        return "who made it is not recorded"
    return None if maker == Maker.here() else f"made by {maker}"


@dataclass
class RunSummary:
    """One run of ``runs list``: its line, and a note under it if killed writes left temporary files."""

    name: str
    status: str
    epochs: int | None
    best_test_acc: float | None
    changed: dict
    bytes: int
    checkpoint: bool
    problem: str | None = None  # what is wrong with an unreadable metrics.json
    stale_files: int = 0
    stale_bytes: int = 0
    made_by: str | None = None  # "made by alice on lab-2" for another user's or host's run

    def line(self) -> str:
        best = "-" if self.best_test_acc is None else f"{self.best_test_acc:.1%}"
        epochs = "-" if self.epochs is None else self.epochs
        changed = " ".join(f"{k}={v}" for k, v in self.changed.items()) or "(defaults)"
        if self.problem:
            changed = f"(its metrics.json is not fit()'s: {self.problem})"
        line = (f"{self.name:<9} {self.status:<10} {epochs:>6} {best:>6} {size_text(self.bytes):>9}  "
                f"{'yes' if self.checkpoint else 'no':<10}  {changed}")
        if self.stale_files:
            litter = f"{_count(self.stale_files, 'stale temporary file')}, {size_text(self.stale_bytes)}"
            line += f"\n{'':<10}and {litter}, left by a killed write (resuming the run or `runs prune` deletes them)"
        if self.made_by:
            line += f"\n{'':<10}{self.made_by}"
        return line


HEADER = f"{'run':<9} {'status':<10} {'epochs':>6} {'best':>6} {'on disk':>9}  {'checkpoint':<10}  parameters"


def describe_run(run_dir: Path) -> RunSummary:
    """Status (running, complete, diverged, stopped, empty, or unreadable: a metrics.json unlike fit()'s),
    progress, what differs from the defaults, and the temporary files that killed writes left (counted apart)."""
    metrics, problem = _metrics_and_problem(run_dir)
    stale = stale_temporary_files(run_dir)
    stale_bytes = sum(_size(path) for path in stale)
    on_disk, checkpoint = _folder_size(run_dir) - stale_bytes, (run_dir / CHECKPOINT).is_file()
    if problem:
        return RunSummary(run_dir.name, "unreadable", None, None, {}, on_disk, checkpoint, problem, len(stale),
                          stale_bytes)
    status = (metrics or {}).get("status") or _status_of_older_run(metrics)
    if status == "running" and holder(run_dir) is None:
        status = "stopped"  # its process ended before the last epoch (killed, say)
    defaults, ignore = json.loads(json.dumps(TrainConfig().as_dict())), {"out_dir", "resume"}  # as metrics.json
    parameters = (metrics or {}).get("parameters", {})
    changed = {k: v for k, v in parameters.items() if k not in ignore and defaults.get(k) != v}
    maker = Maker.of(run_dir)
    another = _in_words(maker) if maker is not None else None  # runs older than the record go unmarked
    return RunSummary(run_dir.name, status, len(_good_epochs(metrics)), (metrics or {}).get("best_test_acc"),
                      changed, on_disk, checkpoint, None, len(stale), stale_bytes, another)


def _status_of_older_run(metrics: dict | None) -> str:
    """Runs written before metrics.json carried a status: complete if all their epochs were done."""
    if not metrics:
        return "empty"
    planned = metrics.get("parameters", {}).get("epochs")
    return "complete" if planned is not None and len(_good_epochs(metrics)) >= planned else "stopped"


def _folder_size(folder: Path) -> int:
    return sum(_size(path) for path in folder.rglob("*"))


def _size(path: Path) -> int:
    """A file's size; 0 for a folder, or a file gone meanwhile (a temporary file renamed away)."""
    try:
        return path.stat().st_size if path.is_file() else 0
    except FileNotFoundError:
        return 0


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'' if number == 1 else 's'}"


def prunable(out_dir: Path, keep: int | None = None, older_than_days: float | None = None,
             unrecorded: bool = True, others: bool = False) -> list[Path]:
    """Checkpoints to delete: those not among the ``keep`` newest runs' and (if given) older than
    ``older_than_days``; never one of a run being trained.

    Only the runs this user made on this host take part (are deleted or counted among the newest);
    with ``unrecorded``, also those whose metrics.json does not say who made them (made before it
    did); with ``others``, every run, whoever made it.
    """
    runs = [run for run in run_folders(out_dir) if (run / CHECKPOINT).is_file() and holder(run) is None
            and (others or is_ours(run, unrecorded))]
    if keep is not None:
        runs = runs[:max(0, len(runs) - keep)]
    if older_than_days is not None:
        cutoff = time.time() - older_than_days * 86_400
        runs = [run for run in runs if (run / CHECKPOINT).stat().st_mtime < cutoff]
    return [run / CHECKPOINT for run in runs]


def is_ours(run_dir: Path, unrecorded: bool = True) -> bool:
    """Whether this user made ``run_dir`` on this host (for a run that does not say who made it: ``unrecorded``)."""
    maker = Maker.of(run_dir)
    return unrecorded if maker is None else maker == Maker.here()


def spared(out_dir: Path, unrecorded: bool = True) -> list[tuple[Path, str]]:
    """The runs of ``out_dir`` with a checkpoint that ``prunable(out_dir, unrecorded=unrecorded)`` leaves alone
    for who made them, each with why ("made by alice on lab-2", "who made it is not recorded")."""
    return [(run, made_by(run)) for run in run_folders(out_dir)
            if (run / CHECKPOINT).is_file() and not is_ours(run, unrecorded)]


def keep_newest_checkpoints(run_dir: Path, keep: int) -> str | None:
    """Delete the checkpoints of the runs beside ``run_dir`` but the ``keep - 1`` newest (``run_dir``
    keeps its own), of those this user made on this host; runs being trained keep theirs, and so do
    another user's or host's, and those made before runs recorded who made them. What was deleted, as
    a sentence, or None."""
    others = [path for path in prunable(run_dir.parent, keep=keep - 1, unrecorded=False) if path.parent != run_dir]
    freed = {path.parent.name: delete_unless_training(path) for path in others}
    deleted = [name for name, size in freed.items() if size]
    if not deleted:
        return None
    return (f"deleted the checkpoint(s) of {', '.join(deleted)} (their metrics.json stay), freeing "
            f"{size_text(sum(freed.values()))}: keep_checkpoints={keep}")


def checkpoints_kept_for_their_maker(run_dir: Path, keep: int) -> str | None:
    """What ``keep_newest_checkpoints`` will leave alone beside ``run_dir`` for who made it, as a note, or None."""
    kept = [(run, why) for run, why in spared(run_dir.parent, unrecorded=False) if run != run_dir]
    if not kept:
        return None
    shown = [f"{run.name} ({why})" for run, why in kept]
    runs = ", ".join(shown if len(shown) <= 4 else [*shown[:3], f"{len(shown) - 3} more"])
    return (f"note: keep_checkpoints={keep} leaves the checkpoints of {runs} alone: it prunes only the runs "
            f"{this_user()} made on {socket.gethostname()} (`seresnet runs prune {display(run_dir.parent)}` "
            f"deletes checkpoints by hand)")


def delete_unless_training(path: Path) -> int:
    """Delete a run's file (its checkpoint, a stale temporary file) unless its run started training meanwhile;
    the bytes freed."""
    try:
        with hold(path.parent):
            return _delete_file(path)
    except RunInUse:
        return 0


def _delete_file(path: Path) -> int:
    """Delete ``path`` if it is there; the bytes freed."""
    try:
        size = path.stat().st_size
        path.unlink()
        return size
    except FileNotFoundError:
        return 0


def size_text(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError
