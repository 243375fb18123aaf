"""Processes that do not outlive the work they were started for (Linux; elsewhere a no-op).

A sweep's workers die with the sweep (``die_with_parent``), and a kernel that ran a student's
notebook is ended with every process it started in its session (``end_session``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path

_PR_SET_PDEATHSIG = 1


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


def _session_members(session: int) -> list[int]:
    """The process ids in ``session`` (the session of a process started with ``start_new_session``)."""
    members = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # it ended while we looked
                continue
            fields = stat[stat.rindex(")") + 2:].split()  # after "pid (command) ": state, ppid, pgrp, session
            if int(fields[3]) == session:
                members.append(int(entry.name))
    return members


def end_session(session: int) -> None:
    """SIGKILL every process left in ``session``: its leader and whatever it started, even in other
    process groups. A process that started a session of its own is not found."""
    for pid in _session_members(session):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
