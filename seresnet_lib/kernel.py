"""The Jupyter kernel the library runs notebooks in (the series, sweeps; grading has its own, ``sandbox``).

It talks to its kernel over local sockets (IPC), not TCP ports: no port is opened, and
ipykernel has no unencrypted TCP connection to warn about at every start. Windows has no
IPC sockets, so there it uses TCP as Jupyter usually does.

A kernel asked to shut down once its notebook has run is given ``SHUTDOWN_SECONDS``, not
jupyter_client's 5: ipykernel 7 now and then hangs in its own shutdown (its control thread
waits on a flush of output that never comes), and jupyter_client sends SIGTERM only after half
the wait. A kernel that has run its notebook has nothing left to save.
"""

from __future__ import annotations

import os
import tempfile
import uuid

from jupyter_client.manager import KernelManager
from traitlets import default

SHUTDOWN_SECONDS = 1.0  # SIGTERM after half of it, SIGKILL after all of it; a kernel that is not stuck exits at once


class LocalKernelManager(KernelManager):
    """A KernelManager whose kernels listen on IPC sockets beside their connection file."""

    @default("transport")
    def _default_transport(self) -> str:
        return "tcp" if os.name == "nt" else "ipc"

    @default("shutdown_wait_time")
    def _default_shutdown_wait_time(self) -> float:
        return SHUTDOWN_SECONDS

    @default("connection_file")
    def _default_connection_file(self) -> str:
        """An absolute path of its own, made before the sockets' address is derived from it.

        Without it, the IPC sockets get the relative address "kernel-ipc", which the kernel and
        this process read from their own working folders (a student's folder, the project's),
        and which two kernels started in one folder (a sweep's jobs) would share.
        """
        return os.path.join(tempfile.gettempdir(), f"kernel-{uuid.uuid4().hex}.json")
