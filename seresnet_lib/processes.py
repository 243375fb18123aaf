"""Processes that do not outlive the work they were started for (Linux; elsewhere a no-op).

A sweep's workers die with the sweep (``die_with_parent``). A kernel that ran a student's
notebook is ended with every process it started in its session (``end_session``), and a
process that left the session is adopted when its parent dies and ended too (``adopting_orphans``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER, _PR_GET_CHILD_SUBREAPER = 36, 37


def die_with_parent() -> None:
    """Have the kernel send this process SIGKILL when the process that started it dies.

    Called first thing in a worker; if the parent is already gone, the worker ends now.
    """
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(1)


def end_session(session: int) -> None:
    """SIGKILL every process left in ``session``: its leader and whatever it started, even in other
    process groups. A process that started a session of its own is not found."""
    _kill(pid for pid, (_, its_session) in _processes().items() if its_session == session)


def running(pid: int) -> bool:
    """Whether process ``pid`` exists (anyone's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's
        return True
    return True


@contextmanager
def adopting_orphans() -> Iterator[Callable[[Collection[int]], None]]:
    """While the block runs, a process orphaned anywhere below this one becomes its child (Linux's
    child subreaper) instead of init's, where it could live on unseen.

    Yields ``end_strays(keep)``: SIGKILL this process's children that were not there when the
    block began, except ``keep``, with every process below them, and reap them. On leaving the
    block, all of them are ended.
    """
    if not sys.platform.startswith("linux"):
        yield lambda keep: None
        return
    libc = ctypes.CDLL(None, use_errno=True)
    was = ctypes.c_int(0)
    libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(was), 0, 0, 0)
    before = set(_children_of(os.getpid()))
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

    def end_strays(keep: Collection[int] = ()) -> None:
        for _ in range(100):  # each round adopts the children of those it killed
            strays = [pid for pid in _children_of(os.getpid()) if pid not in before and pid not in keep]
            if not strays:
                return
            parents = _parents()
            _kill(member for pid in strays for member in [pid, *_descendants(pid, parents)])
            for pid in strays:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:  # reaped by whoever started it
                    pass

    try:
        yield end_strays
    finally:
        end_strays()
        libc.prctl(_PR_SET_CHILD_SUBREAPER, was.value, 0, 0, 0)


def _processes() -> dict[int, tuple[int, int]]:
    """Each running process's parent and session, from /proc (Linux; elsewhere none)."""
    found = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # it ended while we looked
                continue
            fields = stat[stat.rindex(")") + 2:].split()  # after "pid (command) ": state, ppid, pgrp, session
            found[int(entry.name)] = (int(fields[1]), int(fields[3]))
    return found


def _parents() -> dict[int, int]:
    return {pid: parent for pid, (parent, _) in _processes().items()}


def _kill(pids: Iterable[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):  # gone already, or not ours to end
            pass


def _children_of(pid: int) -> list[int]:
    return [child for child, parent in _parents().items() if parent == pid]


def _descendants(pid: int, parents: dict[int, int]) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        found += frontier
    return found
