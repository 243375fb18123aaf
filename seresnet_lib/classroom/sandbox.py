"""Where and as whom a student's notebook runs when it is graded.

Each submission runs in a fresh scratch folder holding a copy of that notebook alone, its
kernel in a session of its own, its output per cell capped. When grading runs as root, the
kernel runs as an unprivileged user (``nobody`` by default), who may write only in its own
scratch folder: a student's code can then neither signal the grader nor change the
submissions, the project, the datasets or another scratch folder.

    with Scratch(path, user) as scratch:               # scratch.folder: the kernel's home
        stop = await run_in_scratch(notebook, scratch, limits)
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbformat.v4 import new_output

from ..kernel import SHUTDOWN_SECONDS
from ..paths import workdir as project_workdir
from ..processes import end_session, running

OUTPUT_CUT = "output_cut"  # a cell's metadata key: how many characters of output were left out
_PREFIX = "seresnet-check-"  # and the grader's process id: seresnet-check-<pid>-<random>
_RUNNING: set[_ScratchKernelManager] = set()  # the kernels of the notebooks being graded now
_FLOOD = 10  # a cell whose output goes over this many times --max-output is stopped


@dataclass(frozen=True)
class KernelUser:
    """The account a kernel runs as."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class Limits:
    """What a submission may use: seconds per cell, characters of output per cell."""

    timeout: int = 600
    max_output: int = 5_000_000


def kernel_users(names: list[str] | None) -> list[KernelUser | None]:
    """The accounts kernels run as, one per kernel running at once (reused in turn if fewer).

    As root, the default is ``nobody``, and ``root`` itself means the grader's own account (None).
    As anyone else, kernels run as the grader; naming a user is an error.
    """
    if os.name != "posix" or os.geteuid() != 0:
        if names:
            raise ValueError(f"--user {','.join(names)}: running kernels as another user needs root; without "
                             f"--user they run as you")
        return [None]
    users = []
    for name in names or ["nobody"]:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise ValueError(f"--user {name}: no such user on this machine") from None
        users.append(None if entry.pw_uid == 0 else KernelUser(name, entry.pw_uid, entry.pw_gid))
    return users


def check_can_start_kernel(user: KernelUser | None) -> None:
    """ValueError, before any notebook runs, if ``user`` cannot start Python and find the library."""
    if user is None:
        return
    try:
        probe = subprocess.run([sys.executable, "-c", "import ipykernel, importlib.util as u; "
                                                      "assert u.find_spec('seresnet_lib')"],
                               cwd="/", env=_kernel_environment(Path("/"), user), capture_output=True, text=True,
                               **_as_user(user))
        failure = (probe.stderr.strip().splitlines() or ["no error shown"])[-1] if probe.returncode else None
    except OSError as error:
        failure = str(error)
    if failure:
        closed = [folder for path in (Path(sys.executable), Path(__file__)) for folder in _closed_folders(path, user)]
        why = f"{closed[0]} is closed to it (chmod o+x {closed[0]} opens it, as classroom containers have it)" \
            if closed else failure
        raise ValueError(f"--user {user.name} cannot start a kernel with {sys.executable}: {why}; or pass --user "
                         f"with an account that can")


def check_can_read(folder: Path, user: KernelUser | None, option: str) -> None:
    """ValueError, before any notebook runs, if ``user``'s kernels could not reach ``folder`` (given as
    ``option``): a folder on the way to it, or it, is closed to them."""
    existing = next(path for path in [folder, *folder.absolute().parents] if path.exists())
    closed = [] if user is None else _closed_folders(existing / "-", user)
    if closed:
        raise ValueError(f"{option} {folder}: {closed[0]} is closed to --user {user.name} (chmod o+x {closed[0]} "
                         f"opens it); or choose a folder that user can reach")


def _closed_folders(path: Path, user: KernelUser) -> list[Path]:
    """The folders on the way to ``path`` (its links followed) that ``user`` may not enter."""
    closed = []
    for folder in [*reversed(path.resolve().parents)]:
        mode = folder.stat()
        allowed = stat.S_IXUSR if mode.st_uid == user.uid else stat.S_IXGRP if mode.st_gid == user.gid else stat.S_IXOTH
        if not mode.st_mode & allowed:
            closed.append(folder)
    return closed


class Scratch:
    """A fresh folder for one submission: its copy of the notebook, ``data/`` linking the project's
    datasets, copies of the ``preload`` folders ({relative path: folder}), and the kernel's connection
    file; owned by the kernel's user, deleted on exit."""

    def __init__(self, notebook: Path, user: KernelUser | None, preload: dict[str, Path] | None = None):
        self.user, self.name, self.preload = user, Path(notebook).name, preload or {}

    def __enter__(self) -> Scratch:
        self.base = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-"))
        os.chmod(self.base, 0o711)  # others may pass through, not look around
        self.folder = self.base / os.urandom(8).hex()
        self.notebook = self.folder / self.name
        self.folder.mkdir(mode=0o700)
        (self.folder / ".kernel").mkdir()
        (self.folder / "data").mkdir()
        data = project_workdir() / "data"
        for dataset in (data.iterdir() if data.is_dir() else []):
            if dataset.is_dir():  # downloaded datasets are shared, read-only to another user; nothing else is
                (self.folder / "data" / dataset.name).symlink_to(dataset, target_is_directory=True)
        for relative, source in self.preload.items():  # copies: the kernel may change them, not the originals
            if Path(source).is_dir():
                copy = shutil.copytree(source, self.folder / relative, symlinks=True)
                for path in [copy, *copy.rglob("*")]:  # the originals are read-only; the copies are the kernel's
                    if not path.is_symlink():
                        path.chmod(path.stat().st_mode | stat.S_IWUSR)
        self.give_to_user(self.folder)
        return self

    def give_to_user(self, path: Path) -> None:
        """Make ``path`` (and what is in it) the kernel user's."""
        if self.user is not None:
            for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
                os.chown(item, self.user.uid, self.user.gid, follow_symlinks=False)

    def environment(self) -> dict[str, str]:
        return _kernel_environment(self.folder, self.user)

    def popen_options(self) -> dict:
        return _as_user(self.user)

    def __exit__(self, *failure) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def remove_stale_scratch() -> None:
    """Delete the scratch folders of graders that died (killed, say) before they could."""
    for base in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*-*"):
        pid = base.name[len(_PREFIX):].split("-")[0]
        if pid.isdigit() and not running(int(pid)):
            shutil.rmtree(base, ignore_errors=True)


def _kernel_environment(folder: Path, user: KernelUser | None) -> dict[str, str]:
    """The grader's environment, with home, temporary files and the library's working folder in ``folder``."""
    env = {**os.environ, "SERESNET_WORKDIR": str(folder), "HOME": str(folder), "TMPDIR": str(folder)}
    if user is not None:
        env.update(USER=user.name, LOGNAME=user.name)
    return env


def _as_user(user: KernelUser | None) -> dict:
    return {} if user is None else {"user": user.uid, "group": user.gid, "extra_groups": []}


class _ScratchKernelManager(AsyncKernelManager):
    """A kernel on IPC sockets in the scratch folder, its connection file readable by the kernel's user."""

    def __init__(self, scratch: Scratch, **kwargs):
        super().__init__(transport="tcp" if os.name == "nt" else "ipc", shutdown_wait_time=SHUTDOWN_SECONDS,
                         connection_file=str(scratch.folder / ".kernel" / "kernel.json"), **kwargs)
        self.scratch = scratch
        self.kernel_session: int | None = None  # the kernel's process id, which is its session's

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kwargs) -> None:
        await super()._async_launch_kernel(kernel_cmd, **kwargs)
        self.kernel_session = self.provisioner.process.pid  # started with start_new_session

    def write_connection_file(self, **kwargs) -> None:
        super().write_connection_file(**kwargs)
        self.scratch.give_to_user(Path(self.connection_file))


class _CappedClient(NotebookClient):
    """A NotebookClient that keeps at most ``max_output`` characters of each cell's output: what
    comes after is counted, left out, and marked in the cell. A cell that goes on printing (past
    ``_FLOOD`` times as much) is interrupted, since the grader must still receive what it leaves out."""

    def __init__(self, notebook: NotebookNode, max_output: int, **kwargs):
        super().__init__(notebook, **kwargs)
        self.max_output = max_output
        self.kept: dict[int, int] = {}
        self.cut: dict[int, int] = {}
        self.flooded: set[int] = set()
        self.running = 0

    def output(self, outs, msg, display_id, cell_index):
        content = msg["content"]
        size = _size(content)
        room = self.max_output - self.kept.get(cell_index, 0)
        if size > room:
            self.cut[cell_index] = self.cut.get(cell_index, 0) + size - max(room, 0)
            if self.cut[cell_index] > _FLOOD * self.max_output and cell_index not in self.flooded:
                self.flooded.add(cell_index)  # the cell is stopped, as the grader can take only so much
                asyncio.ensure_future(self.km.interrupt_kernel())
            if msg["msg_type"] != "stream" or room <= 0:
                return None
            content["text"] = content["text"][:room]
            size = room
        self.kept[cell_index] = self.kept.get(cell_index, 0) + size
        return super().output(outs, msg, display_id, cell_index)

    async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
        self.running = cell_index  # where a timeout or a dead kernel stops the notebook
        try:
            return await super().async_execute_cell(cell, cell_index, *args, **kwargs)
        finally:
            if self.cut.get(cell_index):
                cut = self.cut[cell_index]
                stopped = "; the cell was stopped" if cell_index in self.flooded else ""
                cell.metadata[OUTPUT_CUT] = cut
                cell.outputs.append(new_output("stream", name="stderr", text=(
                    f"[grading: {cut:,} more characters of output were left out{stopped}; a cell may keep "
                    f"{self.max_output:,} (--max-output)]\n")))


def _size(content: dict) -> int:
    """Characters in an output message: its text, its data, or its traceback."""
    if "text" in content:
        return len(content["text"])
    if "traceback" in content:
        return sum(map(len, content["traceback"]))
    return sum(len(value) if isinstance(value, str) else len(str(value)) for value in content.get("data", {}).values())


async def run_in_scratch(notebook: NotebookNode, scratch: Scratch, limits: Limits,
                         end_strays: Callable[[set[int]], None] | None = None) -> tuple[int, str] | None:
    """Run every cell of ``notebook`` in place, in ``scratch``, going on past errors.

    Saved outputs are cleared first and no cell is skipped, so every output read later comes from
    this run. Returns where and why the run stopped early (a cell over the time limit, a dead
    kernel) as (cell index, reason), or None. Whatever the kernel started is ended with it: the
    processes in its session, and with ``end_strays`` (``processes.adopting_orphans``) those that
    left it, keeping the kernels of other notebooks still running.
    """
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    manager = _ScratchKernelManager(scratch, kernel_name="python3")
    client = _CappedClient(notebook, limits.max_output, km=manager, timeout=limits.timeout, allow_errors=True,
                           skip_cells_with_tag="", resources={"metadata": {"path": str(scratch.folder)}})
    _RUNNING.add(manager)
    try:
        await client.async_execute(env=scratch.environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   **scratch.popen_options())
    except CellTimeoutError:
        reason = f"it ran longer than {limits.timeout} s (--timeout)"
    except DeadKernelError:
        reason = "the kernel died (out of memory, or the code ended its process)"
    else:
        return None
    finally:
        _RUNNING.discard(manager)
        if manager.kernel_session is not None:  # its processes, once nbclient has shut it down
            end_session(manager.kernel_session)
        if end_strays is not None:
            end_strays({kernel.provisioner.process.pid for kernel in _RUNNING
                        if kernel.provisioner is not None and kernel.provisioner.process is not None})
    return client.running, reason

